"""Exponential moving average of the model weights (Polyak averaging).

Compression models gain a little from EMA weights at export (smoother RD curve); the decay is a
per-step factor (0.999 ≈ a 1000-step window). Integer buffers are copied, not averaged.
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
        float_dst, float_src = [], []
        for k, v in model.state_dict().items():
            dst = self.shadow[k]
            if dst.is_floating_point():
                float_dst.append(dst)
                float_src.append(v.detach())
            else:
                dst.copy_(v)
        if float_dst:
            torch._foreach_lerp_(float_dst, float_src, 1.0 - self.decay)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (for validation or export)."""
        model.load_state_dict(self.shadow)
