"""Attributions (Captum) for every classifier the template trains, and two checks that they mean
something.

Methods, by input kind (``METHODS``):

- images and signals: ``saliency`` (|d logit / d input|, max over channels; Simonyan et al.
  2014), ``integrated_gradients`` (from a black image / a zero signal; Sundararajan et al.
  2017), ``occlusion`` (logit drop when a patch is set to that baseline; Zeiler & Fergus 2014),
  ``gradcam`` (the last convolutional block, upsampled to the input; Selvaraju et al. 2017);
- tokens: ``integrated_gradients`` on the embedding layer (``LayerIntegratedGradients``, from
  the ``<pad>`` embedding, which is zero) and, for the Transformer, ``attention_rollout``
  (Abnar & Zuidema 2020: the head-averaged attention of every layer, plus the residual identity,
  multiplied through the layers).

Every method returns one score per part of the input: per pixel (B, H, W), per step (B, L), per
token (B, L); positive scores push towards the explained class.

Sanity checks:

- ``deletion_curves``: the probability of the predicted class as the most-attributed parts are
  removed (pixels/steps set to the baseline, tokens deleted from the text), against random
  orders; a smaller area under the curve means the attribution found what the model uses.
- ``randomisation_correlation``: Adebayo et al. 2018, "Sanity checks for saliency maps": the
  Spearman rank correlation between the attributions of the trained network and of the same
  network with re-initialised weights. A method that explains the model (not the input) gives
  a low correlation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import (
    IntegratedGradients,
    LayerGradCam,
    LayerIntegratedGradients,
    Occlusion,
    Saliency,
)
from scipy.stats import spearmanr
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pad_sequence

from dlbasics.errors import UserError

METHODS: dict[str, tuple[str, ...]] = {
    "image": ("integrated_gradients", "saliency", "occlusion", "gradcam"),
    "signal": ("integrated_gradients", "saliency", "occlusion", "gradcam"),
    "tokens": ("integrated_gradients", "attention_rollout"),
}
UNK_INDEX = 1  # every Vocab's <unk> (dlbasics.data.vocab)


@dataclass
class Inputs:
    """A batch to explain: ``x`` as the network reads it and ``baseline`` (same shape), the
    input that carries no evidence: a black image, a zero signal, ``<pad>`` tokens."""

    kind: str  # image | signal | tokens
    x: Tensor
    baseline: Tensor
    pad_index: int | None = None

    def lengths(self) -> list[int]:
        """The real (non-pad) length of each token sequence."""
        return (self.x != self.pad_index).sum(1).clamp(min=1).tolist()


def image_baseline(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """A black image in the normalised space the network reads."""
    black = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=x.dtype)
    return black.view(1, -1, 1, 1).expand_as(x).clone()


def check_method(method: str, kind: str, net: nn.Module) -> None:
    """A UserError naming the methods that apply when ``method`` does not."""
    allowed = METHODS.get(kind, ())
    if method not in allowed:
        raise UserError(f"method={method} does not apply to {kind} inputs: use one of "
                        f"{', '.join(allowed)}")
    if method == "gradcam" and gradcam_layer(net) is None:
        raise UserError(f"method=gradcam needs a convolutional network, and "
                        f"{type(net).__name__} has no convolution: use another method "
                        f"({', '.join(m for m in allowed if m != 'gradcam')})")
    if method == "attention_rollout" and not hasattr(net, "blocks"):
        raise UserError(f"method=attention_rollout needs a Transformer; {type(net).__name__} has "
                        f"no attention: use method=integrated_gradients")


# ---- the methods -------------------------------------------------------------------------------
def attribute(net: nn.Module, inputs: Inputs, target: Tensor, method: str,
              steps: int = 32) -> Tensor:
    """Scores per pixel (B, H, W), per step or per token (B, L) for class ``target`` (B,)."""
    check_method(method, inputs.kind, net)
    net.eval()
    x, baseline = inputs.x, inputs.baseline
    if method == "attention_rollout":
        return attention_rollout(net, x, inputs.pad_index)
    with torch.enable_grad():
        if method == "integrated_gradients":  # of the embeddings of token ids (ids have no gradient)
            tokens = inputs.kind == "tokens"
            ig = LayerIntegratedGradients(net, net.inputs.embedding) if tokens else IntegratedGradients(net)
            scores = ig.attribute(x, baselines=baseline, target=target, n_steps=steps,
                                  internal_batch_size=max(len(x), 64))
            if tokens:  # summed over the embedding; pads score 0
                return scores.sum(-1).detach() * (x != inputs.pad_index)
            return scores.sum(1).detach()  # summed over the channels
        if method == "saliency":
            scores = Saliency(net).attribute(x.clone().requires_grad_(), target=target, abs=True)
            return scores.amax(1).detach()
        if method == "occlusion":
            channels, *size = x.shape[1:]
            window = (channels, *[max(2, s // 7) for s in size])
            stride = (channels, *[max(1, w // 2) for w in window[1:]])
            scores = Occlusion(net).attribute(x, sliding_window_shapes=window, strides=stride,
                                              baselines=baseline, target=target)
            return scores.sum(1).detach()
        cam = LayerGradCam(net, gradcam_layer(net)).attribute(x, target=target,
                                                               relu_attributions=True)
        mode = "bilinear" if x.dim() == 4 else "linear"
        return F.interpolate(cam, size=x.shape[2:], mode=mode, align_corners=False)[:, 0].detach()


def gradcam_layer(net: nn.Module) -> nn.Module | None:
    """The last convolutional block's output: a ResNet's last stage block, or the activation
    that follows a CNN's last convolution (the convolution itself when nothing follows)."""
    if hasattr(net, "stages"):
        return net.stages[-1]
    modules = list(net.modules())
    convs = [i for i, m in enumerate(modules) if "Conv" in type(m).__name__
             and not list(m.children())]
    if not convs or not hasattr(net, "features"):
        return None
    for m in modules[convs[-1] + 1:]:
        if "Pool" in type(m).__name__ or isinstance(m, nn.Flatten):
            break
        if not list(m.children()) and "Norm" not in type(m).__name__:
            return m
    return modules[convs[-1]]


def attention_rollout(net: nn.Module, x: Tensor, pad_index: int | None) -> Tensor:
    """Abnar & Zuidema's rollout of a ``TransformerClassifier``: per token (B, L), how much the
    pooled output (the CLS row, or the mean of the real rows) draws on each input token."""
    weights: list[Tensor] = []

    def ask_for_weights(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": True}

    def keep(module: nn.Module, args: tuple, output: tuple) -> None:
        weights.append(output[1].detach())

    handles = []
    for block in net.blocks:
        handles.append(block.self_attn.register_forward_pre_hook(ask_for_weights, with_kwargs=True))
        handles.append(block.self_attn.register_forward_hook(keep))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    size = weights[0].shape[-1]
    rollout = torch.eye(size).expand(len(x), size, size)
    for a in weights:  # (B, L', L'), rows: queries
        a = 0.5 * a + 0.5 * torch.eye(size)
        rollout = (a / a.sum(-1, keepdim=True)) @ rollout
    real = x != pad_index if pad_index is not None else torch.ones_like(x, dtype=torch.bool)
    offset = size - x.shape[1]  # 1 with a CLS token
    if getattr(net, "cls", None) is not None:
        scores = rollout[:, 0, offset:]
    else:
        rows = real.unsqueeze(-1).float()
        scores = (rollout[:, offset:, offset:] * rows).sum(1) / rows.sum(1).clamp(min=1)
    return scores * real


# ---- sanity check 1: deletion ------------------------------------------------------------------------
def removal_order(scores: Tensor, lengths: Sequence[int] | None = None) -> list[Tensor]:
    """Per example, the parts from the highest score down (only the real tokens of texts)."""
    ends = lengths if lengths is not None else [None] * len(scores)  # None: every part
    return [torch.argsort(s.flatten()[:end], descending=True, stable=True) for s, end in zip(scores, ends)]


def _remove(inputs: Inputs, i: int, parts: Tensor) -> Tensor:
    """Example ``i`` without ``parts``: pixels/steps set to the baseline, tokens deleted."""
    x = inputs.x[i]
    if inputs.kind == "tokens":
        length = inputs.lengths()[i]
        keep = torch.ones(length, dtype=torch.bool)
        keep[parts] = False
        kept = x[:length][keep]
        return kept if len(kept) else x.new_full((1,), UNK_INDEX)  # an empty text: one <unk>
    flat = x.clone().flatten(1)  # (C, parts): the pixels (H * W) or steps (L) of each channel
    flat[..., parts] = inputs.baseline[i].flatten(1)[..., parts]
    return flat.view_as(x)


def deletion_curve(net: nn.Module, inputs: Inputs, target: Tensor, orders: list[Tensor],
                   fractions: Sequence[float]) -> Tensor:
    """(B, F): probability of ``target`` with the first ``fraction`` of each order removed."""
    curves = torch.zeros(len(orders), len(fractions))
    with torch.no_grad():
        for j, f in enumerate(fractions):
            batch = [_remove(inputs, i, order[: round(f * len(order))])
                     for i, order in enumerate(orders)]
            if inputs.kind == "tokens":
                x = pad_sequence(batch, batch_first=True, padding_value=inputs.pad_index or 0)
            else:
                x = torch.stack(batch)
            probs = net(x).softmax(-1)
            curves[:, j] = probs.gather(1, target.view(-1, 1))[:, 0]
    return curves


@dataclass
class DeletionResult:
    fractions: list[float]
    method_curve: list[float]  # mean over examples
    random_curve: list[float]
    method_auc: float
    random_auc: float
    method_auc_per_example: list[float]
    random_auc_per_example: list[float]


def _auc(curves: Tensor, fractions: Sequence[float]) -> Tensor:
    return torch.from_numpy(np.trapezoid(curves.numpy(), np.asarray(fractions), axis=-1))


def deletion_check(net: nn.Module, inputs: Inputs, target: Tensor, scores: Tensor,
                   fractions: Sequence[float] | None = None, random_orders: int = 5,
                   seed: int = 0) -> DeletionResult:
    """Deletion curve of the attribution's order against the mean of ``random_orders`` random
    orders of the same parts, on the same examples."""
    fractions = list(fractions or np.linspace(0, 1, 21).round(3).tolist())
    lengths = inputs.lengths() if inputs.kind == "tokens" else None
    orders = removal_order(scores, lengths)
    method = deletion_curve(net, inputs, target, orders, fractions)
    generator = torch.Generator().manual_seed(seed)
    random = torch.stack([
        deletion_curve(net, inputs, target,
                       [torch.randperm(len(o), generator=generator) for o in orders], fractions)
        for _ in range(random_orders)]).mean(0)
    m_auc, r_auc = _auc(method, fractions), _auc(random, fractions)
    return DeletionResult(fractions, method.mean(0).tolist(), random.mean(0).tolist(),
                          float(m_auc.mean()), float(r_auc.mean()), m_auc.tolist(), r_auc.tolist())


# ---- sanity check 2: model randomisation -------------------------------------------------------------
def randomised_copy(net: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture with every weight re-initialised (Adebayo et al.'s "full
    randomisation"): each layer's own ``reset_parameters``, and N(0, 0.02) for parameters held
    directly (a CLS token, learned positions)."""
    clone = copy.deepcopy(net)
    with torch.random.fork_rng(devices=[]):  # the caller's random numbers are left as they were
        torch.manual_seed(seed)
        for module in clone.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
        reset = {id(p) for m in clone.modules() if hasattr(m, "reset_parameters")
                 for p in m.parameters(recurse=False)}
        with torch.no_grad():
            for p in clone.parameters():
                if id(p) not in reset:
                    p.normal_(0.0, 0.02)
    return clone.eval()


def rank_correlations(a: Tensor, b: Tensor, lengths: Sequence[int] | None = None
                      ) -> tuple[list[float], list[float]]:
    """Per example, Spearman's rho between two attributions: (signed, absolute values);
    examples whose scores are constant (rho undefined) are left out."""
    signed, absolute = [], []
    for a_i, b_i, end in zip(a, b, lengths if lengths is not None else [None] * len(a)):
        x, y = a_i.flatten().numpy()[:end], b_i.flatten().numpy()[:end]
        for out, (u, v) in ((signed, (x, y)), (absolute, (np.abs(x), np.abs(y)))):
            if len(u) > 1 and u.std() > 0 and v.std() > 0:
                out.append(float(spearmanr(u, v).statistic))
    return signed, absolute


@dataclass
class RandomisationResult:
    spearman: float  # mean over examples, signed scores
    spearman_abs: float  # mean over examples, absolute scores
    examples: int


def randomisation_check(net: nn.Module, inputs: Inputs, target: Tensor, scores: Tensor,
                        method: str, seed: int = 0, steps: int = 32,
                        attribute_fn: Callable[..., Tensor] | None = None) -> RandomisationResult:
    """Attributions of the trained ``net`` (``scores``) against those of a re-initialised copy,
    for the same inputs and classes."""
    random_net = randomised_copy(net, seed)
    random_scores = (attribute_fn or attribute)(random_net, inputs, target, method, steps)
    lengths = inputs.lengths() if inputs.kind == "tokens" else None
    signed, absolute = rank_correlations(scores, random_scores, lengths)
    return RandomisationResult(float(np.mean(signed)) if signed else math.nan,
                               float(np.mean(absolute)) if absolute else math.nan, len(signed))
