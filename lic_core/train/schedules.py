"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (default 10 % of the peak).

The usual LIC recipe (CompressAI examples, ELIC) decays the learning rate late in training; a
cosine to 10 % is a smooth version that needs no milestone tuning for short budgets.
"""
from __future__ import annotations

import math


def lr_factor(step: int, total: int, warmup: int = 0, final: float = 0.1,
              decay: str = "cosine") -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    * ``step < warmup``: linear ramp ``(step + 1) / warmup``.
    * then ``decay == "cosine"``: ``final + (1 − final)·½(1 + cos(π·p))`` with ``p`` the fraction
      of the post-warm-up steps done (clamped to [0, 1]); ``"constant"``: 1.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay == "constant":
        return 1.0
    if decay != "cosine":
        raise ValueError(f"unknown decay schedule {decay!r}")
    span = max(1, total - warmup)
    p = min(1.0, max(0.0, (step - warmup) / span))
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * p))
