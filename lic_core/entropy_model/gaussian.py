"""Gaussian conditional likelihoods and the scale table (METHODS §1.1, §6.1, §6.4).

The likelihood of an integer-quantized residual ``v = y − μ`` under N(0, σ²) is the mass of the
unit bin around it, computed on ``|v|`` with ``erfc`` for precision (CompressAI's formulation).
σ is bounded below by ``SCALE_BOUND`` and probabilities by ``LIKELIHOOD_BOUND``, both with a
gradient that still flows when it pushes back into the valid range (``LowerBound``).

For *coding*, σ is never used directly: it is rounded **up** to the nearest entry of a fixed,
log-spaced scale table, and the table value is what the range coder sees (§6.4: float outputs of
a network are not bit-stable across machines; a table index flips far more rarely).
"""
from __future__ import annotations

import math

import numpy as np
import torch

SCALE_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9
SCALE_TABLE_MIN = 0.11
SCALE_TABLE_MAX = 256.0
SCALE_TABLE_LEVELS = 64


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient passes where it would increase x (CompressAI LowerBound)."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp_min(x, bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Differentiable lower bound (see :class:`_LowerBound`)."""
    return _LowerBound.apply(x, bound)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * (2 ** -0.5))


def gaussian_likelihood(values: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None,
                        step: float = 1.0) -> torch.Tensor:
    """Mass of the bin of width ``step`` centred at ``values`` under N(means, scales²).

    ``p = Φ((½Δ − |v−μ|)/σ) − Φ((−½Δ − |v−μ|)/σ)``, bounded below at 1e-9 (METHODS §1.1).
    """
    v = values - means if means is not None else values
    v = v.abs()
    s = lower_bound(scales, SCALE_BOUND)
    upper = _std_normal_cdf((0.5 * step - v) / s)
    lower = _std_normal_cdf((-0.5 * step - v) / s)
    return lower_bound(upper - lower, LIKELIHOOD_BOUND)


def scale_table() -> np.ndarray:
    """The 64 log-spaced coding scales in [0.11, 256] (float64, CompressAI's default table)."""
    return np.exp(np.linspace(math.log(SCALE_TABLE_MIN), math.log(SCALE_TABLE_MAX),
                              SCALE_TABLE_LEVELS))


_TABLE_T = torch.from_numpy(scale_table()).to(torch.float32)


def scale_index(scales: torch.Tensor) -> torch.Tensor:
    """Index of the smallest table entry ≥ σ (clamped to the last), as int64.

    Rounding σ *up* gives a slightly wider distribution, which is always safe to code with.
    """
    s = scales.detach().to(torch.float32).clamp_min(SCALE_BOUND)
    table = _TABLE_T.to(s.device)
    idx = torch.searchsorted(table, s.contiguous(), right=False)
    return idx.clamp_max(SCALE_TABLE_LEVELS - 1).to(torch.int64)


def table_scales(index: torch.Tensor) -> torch.Tensor:
    """The coding σ of each table index (float64 values as float32 tensor on index's device)."""
    return _TABLE_T.to(index.device)[index]
