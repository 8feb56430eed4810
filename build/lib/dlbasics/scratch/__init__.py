"""Core deep-learning algorithms written from scratch, each checked against PyTorch.

Modules and the tests that check them (``tests/test_scratch_*.py``):

* ``gradient_descent``: batch, mini-batch and stochastic GD for linear, logistic and softmax
  regression with hand-derived gradients -- ``test_scratch_gd.py``
* ``backprop``: an MLP with a hand-written backward pass -- ``test_scratch_backprop.py``
* ``conv``, ``pool``: conv1d/conv2d (stride, padding, dilation, groups) and max/avg pooling
  1d/2d as autograd Functions, a loop reference and a vectorised version of each --
  ``test_scratch_conv_pool.py``
* ``recurrent``: RNN / LSTM / GRU cells and multi-layer, bidirectional layers with
  packed-sequence ``lengths`` -- ``test_scratch_recurrent.py``
* ``attention``: scaled dot-product and multi-head attention -- ``test_scratch_attention.py``
* ``optim``: SGD (momentum, Nesterov), RMSprop, Adam, AdamW -- ``test_scratch_optim.py``
* ``losses``: MSE, cross-entropy via a stable log-softmax, L1/L2 penalties, inverted dropout --
  ``test_scratch_losses.py``
* ``linear``, ``layers``: drop-in ``torch.nn`` modules with the same state dicts --
  ``test_scratch_layers.py``

``scripts/bench_scratch.py`` times the vectorised versions against PyTorch.
"""
