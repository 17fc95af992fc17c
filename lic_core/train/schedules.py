"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (default 10 % of the peak).

The usual LIC recipe (CompressAI examples, ELIC) decays the learning rate late in training; a
cosine to 10 % is a smooth version that needs no milestone tuning for short budgets.

``decay_from`` makes the cosine a *window* at the end of a run: constant peak up to that step,
then the cosine over the remaining steps. The campaign trains at a constant rate for as long as it
lives and, at the end of a phase, forks a short decay branch from its newest checkpoint for the
export ("warmup–stable–decay", Hu et al., MiniCPM 2024, §4; Hägele et al., "Scaling Laws and
Compute-Optimal Training Beyond Fixed Training Durations", 2024): the constant-rate main line
continues untouched next phase, and each export still gets the gain a decay gives.
"""
from __future__ import annotations

import math
from typing import Optional


def lr_factor(step: int, total: int, warmup: int = 0, final: float = 0.1,
              decay: str = "cosine", decay_from: Optional[int] = None) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    * ``step < warmup``: linear ramp ``(step + 1) / warmup``.
    * then ``decay == "cosine"``: ``final + (1 − final)·½(1 + cos(π·p))`` with ``p`` the fraction
      of the post-warm-up steps done (clamped to [0, 1]); ``"constant"``: 1.
    * ``decay_from`` (cosine only): 1 before that step, then the cosine with ``p`` the fraction
      of the steps from ``decay_from`` to ``total`` done.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay == "constant":
        return 1.0
    if decay != "cosine":
        raise ValueError(f"unknown decay schedule {decay!r}")
    start = warmup if decay_from is None else max(warmup, int(decay_from))
    span = max(1, total - start)
    p = min(1.0, max(0.0, (step - start) / span))
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * p))
