"""Gaussian conditional likelihoods and the scale table (docs/methods.md §3.1, §6.1, §6.4).

The likelihood of an integer-quantized residual ``v = y − μ`` under N(0, σ²) is the mass of the
unit bin around it, computed on ``|v|`` with ``erfc`` for precision (CompressAI's formulation).
σ is bounded below by ``SCALE_BOUND`` and probabilities by ``LIKELIHOOD_BOUND``, both with a
gradient that still flows when it pushes back into the valid range (``LowerBound``).

For *coding*, σ is never used directly: it is rounded **up** to the nearest entry of a fixed,
log-spaced scale table, and the table value is what the range coder sees (§6.4: float outputs of
a network are not bit-stable across machines; a table index flips far more rarely).
"""
from __future__ import annotations

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

    ``p = Φ((½Δ − |v−μ|)/σ) − Φ((−½Δ − |v−μ|)/σ)``, bounded below at 1e-9 (docs/methods.md §3.1).
    """
    v = values - means if means is not None else values
    v = v.abs()
    s = lower_bound(scales, SCALE_BOUND)
    upper = _std_normal_cdf((0.5 * step - v) / s)
    lower = _std_normal_cdf((-0.5 * step - v) / s)
    return lower_bound(upper - lower, LIKELIHOOD_BOUND)


#: The 64 coding scales, frozen as exact float64 literals (format v2, docs/bitstream.md).  They are
#: ``exp(linspace(ln 0.11, ln 256, 64))`` as numpy computed it on the reference machine; the last
#: bits of that expression depend on the machine's exp (SIMD/SVML vs scalar libm), and the
#: coder's standard deviations and the σ → index boundaries must be the same bits everywhere, so
#: the *values* are the definition and nothing recomputes them at run time.
SCALE_TABLE_64: tuple[float, ...] = (
    0.11000000000000001, 0.12440410337871262, 0.14069437215874012, 0.1591177928985361,
    0.17995369415583692, 0.20351798155585427, 0.23016792742637654, 0.26030758761831785,
    0.2943939276393863, 0.33294375098286777, 0.37654153469608204, 0.4258482909882771,
    0.48161158923412467, 0.5446768903224373, 0.6160003651969836, 0.6966633919390023,
    0.787888951190402, 0.891060168498511, 1.0077412847140166, 1.1397013723869016,
    1.2889411577389158, 1.4577233548766322, 1.64860697216033, 1.8644861108681825,
    2.108633844405629, 2.384751843339001, 2.697026498648367, 3.0501923941179885,
    3.449604090207429, 3.901317307761771, 4.412180742435963, 4.989939901886986,
    5.6433545400719245, 6.382331469143953, 7.218074762587224, 8.163255626910708,
    9.232204517427787, 10.441128410904577, 11.808356529278063, 13.354618240009122,
    15.103357346484879, 17.081087533615843, 19.317794357752575, 21.847389875732397,
    24.708226805960464, 27.943680017030772, 31.602804160185094, 35.74107741637158,
    40.42124263429875, 45.71425861248477, 51.70037594826147, 58.47035376532569,
    66.12683576737696, 74.78590648101743, 84.57885128304754, 95.65414689699084,
    108.17971253796196, 122.3454558368367, 138.36615214401417, 156.48470086762356,
    176.9758082174797, 200.15015219107795, 226.3590929494899, 255.99999999999994,
)


def scale_table() -> np.ndarray:
    """The 64 log-spaced coding scales in [0.11, 256] (float64): the frozen literals above."""
    return np.array(SCALE_TABLE_64, dtype=np.float64)


_TABLE_T = torch.from_numpy(scale_table()).to(torch.float32)


def scale_index(scales: torch.Tensor) -> torch.Tensor:
    """The **float path's** index: smallest table entry ≥ σ (clamped to the last), as int64.

    Rounding σ *up* gives a slightly wider distribution, which is always safe to code with.
    This is the training/analysis variant (float engines, tests, benchmarks; never files): it
    takes σ of any float dtype, casts it to float32 and compares against the table rounded to
    float32, so at table boundaries it can differ from the exact path's
    :func:`lic_core.exact.tables.scale_index` (float64 σ·G only, float64 table) — what every
    file is coded with.  The two are deliberately separate; do not merge them.
    """
    s = scales.detach().to(torch.float32).clamp_min(SCALE_BOUND)
    table = _TABLE_T.to(s.device)
    idx = torch.searchsorted(table, s.contiguous(), right=False)
    return idx.clamp_max(SCALE_TABLE_LEVELS - 1).to(torch.int64)
