"""Exponential moving average of the model weights (Polyak averaging).

Compression models gain a little from EMA weights at export (smoother RD curve); the decay is a
per-step factor (0.999 ≈ a 1000-step window). Only parameters are averaged; buffers (coding
tables, whose shape changes when the factorized prior's tables are rebuilt) are copied.
"""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn


class EMA:
    """Shadow copy of a module's state_dict, updated with ``shadow ← d·shadow + (1−d)·param``."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = float(decay)
        self.shadow: Dict[str, torch.Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = {k for k, p in model.named_parameters() if p.is_floating_point()}
        dst, src = [], []
        for k, v in model.state_dict().items():
            if k in params and self.shadow[k].shape == v.shape:
                dst.append(self.shadow[k])
                src.append(v.detach())
            elif self.shadow[k].shape == v.shape:
                self.shadow[k].copy_(v)
            else:
                self.shadow[k] = v.detach().clone()
        if dst:
            torch._foreach_lerp_(dst, src, 1.0 - self.decay)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        for k, v in state["shadow"].items():
            ref = self.shadow.get(k)
            self.shadow[k] = v.detach().clone().to(ref.device if ref is not None else v.device)

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (for validation or export)."""
        model.load_state_dict(self.shadow)
