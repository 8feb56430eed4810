"""Muon for the hidden weight matrices and AdamW for the rest, as one optimizer
(``optimizer=muon``; modded-nanoGPT's speedrun optimizer).

Muon (Jordan et al. 2024) replaces each hidden matrix's momentum update by its nearest
orthogonal matrix (a few Newton-Schulz iterations): every direction of the update moves by the
same amount. It does not suit embeddings, the output head, biases or norms, which keep AdamW.
Both halves read the same learning rate and weight decay: ``torch.optim.Muon`` with Moonshot's
``adjust_lr_fn="match_rms_adamw"`` scales its update to AdamW's size ("Muon is Scalable for LLM
Training", 2025), so one scheduler drives both and AdamW's tuned values carry over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class MuonAdamW(torch.optim.Optimizer):
    """Parameter groups marked ``"muon": True`` (2-D matrices of hidden layers: the LitModule
    marks them, see ``LitModule.build_optimizer``) step with Muon, the others with AdamW.

    The two inner optimizers share this optimizer's group dicts, so a scheduler that sets
    ``group["lr"]`` drives both; ``state_dict`` holds both states (checkpoints resume).
    """

    splits_hidden_matrices = True  # read by LitModule.build_optimizer

    def __init__(self, params: Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, momentum: float = 0.95, ns_steps: int = 5) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "ns_steps": ns_steps, "muon": False})
        muon = [g for g in self.param_groups if g["muon"]]
        adamw = [g for g in self.param_groups if not g["muon"]]
        self._groups = {"muon": muon, "adamw": adamw}
        self.muon = (torch.optim.Muon(muon, lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      ns_steps=ns_steps, adjust_lr_fn="match_rms_adamw")
                     if muon else None)
        self.adamw = torch.optim.AdamW(adamw, lr=lr, betas=tuple(betas), eps=eps,
                                       weight_decay=weight_decay) if adamw else None

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in (self.muon, self.adamw):
            if optimizer is not None:
                optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict() if self.muon else None,
                "adamw": self.adamw.state_dict() if self.adamw else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name in ("muon", "adamw"):
            inner = getattr(self, name)
            if inner is not None and state_dict.get(name) is not None:
                inner.load_state_dict(state_dict[name])
                # loading made new group dicts: share this optimizer's again (the scheduler's)
                for mine, loaded in zip(self._groups[name], inner.param_groups):
                    mine.update({k: v for k, v in loaded.items() if k != "params"})
                inner.param_groups = self._groups[name]
