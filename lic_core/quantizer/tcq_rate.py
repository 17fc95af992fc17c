"""Rate tables of TCQ indices (docs/methods.md §4.4 "Rate model"): the Gaussian midpoint-cell pmfs
of each (scale index, quantizer) and their code lengths, built from single IEEE operations so every
machine codes with the same rows. :mod:`.tcq` searches and codes with them; :mod:`.tcq_designed`
builds designed tables on top of them. See :mod:`.tcq` for the cells and the support.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..entropy_model.gaussian import scale_table
from ..exact import dmath

DEFAULT_DELTA_U = 0.561
#: pmf floor before renormalization (CompressAI likelihood bound, §4.4)
PMF_FLOOR = 1e-9
#: smallest probability constriction gives an in-range symbol (24-bit precision, §6.2)
MIN_CODED_PROB = 2.0 ** -24
#: support multiplier −Φ⁻¹(tail/2) for tail mass 1e-9 (§6.1), frozen: Python's inverse normal CDF
#: calls the platform's libm (``-statistics.NormalDist().inv_cdf(0.5e-9)`` on the reference machine)
TAIL_MULTIPLIER = 6.1094102048693975
_BITS_OUTSIDE = 64.0  # never used by the search (candidates are clamped into the support)


# ---- pmf tables ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TcqTables:
    """Per (scale index i, quantizer j) pmfs over k ∈ [−K_max, K_max] (zero outside ±K_i)."""

    delta_u: float
    support: np.ndarray  # (64,) int64, K_i
    k_max: int
    pmf: np.ndarray  # (64, 2, 2·K_max+1) float64, rows sum to 1 over their support
    bits_np: np.ndarray  # same shape: −log2 max(pmf, 2⁻²⁴), _BITS_OUTSIDE outside the support
    bits_flat: np.ndarray  # bits_np flattened to (64·2·W,) for gathers
    support_t: torch.Tensor  # (64,) int64

    @property
    def width(self) -> int:
        return 2 * self.k_max + 1


def tcq_support(delta_u: float) -> np.ndarray:
    """K_i = ⌈(6.11·σ_i/Δ_u + 2)/2⌉ for every scale-table entry (docs/methods.md §4.4)."""
    sig = scale_table()
    return np.ceil((TAIL_MULTIPLIER * sig / delta_u + 2.0) / 2.0).astype(np.int64)


def _erfc(x: torch.Tensor) -> torch.Tensor:
    """erfc on all of ℝ from the deterministic erfc of t ≥ 0 (erfc(−t) = 2 − erfc(t))."""
    e = dmath.erfc_nonneg(x.abs())
    return torch.where(x < 0, 2.0 - e, e)


def _row_sums(x: torch.Tensor) -> torch.Tensor:
    """Σ over the last axis, left to right (a fixed order: the pmf rows are coded)."""
    total = torch.zeros(x.shape[:-1], dtype=x.dtype)
    for c in range(x.shape[-1]):
        total = total + x[..., c]
    return total


def _cell_masses(sigma_n: torch.Tensor, k_hi: int, quantizer: int, K: torch.Tensor) -> torch.Tensor:
    """Gaussian cell masses for k = 0..k_hi (64 × (k_hi+1)), edge cell |k| = K_i open to ∞."""
    k = torch.arange(k_hi + 1, dtype=torch.float64)
    if quantizer == 0:
        lo, hi = 2 * k - 1, 2 * k + 1
    else:
        lo = torch.where(k <= 1, k - 0.5, 2 * k - 2)
        hi = torch.where(k == 0, torch.full_like(k, 0.5), 2 * k)
    s = sigma_n[:, None] * math.sqrt(2.0)
    tail_lo = 0.5 * _erfc(dmath.div(lo[None, :].expand_as(s.expand(-1, lo.numel())), s))
    tail_hi = 0.5 * _erfc(dmath.div(hi[None, :].expand_as(s.expand(-1, hi.numel())), s))
    is_edge = k[None, :].to(torch.int64) == K[:, None]
    tail_hi = torch.where(is_edge, torch.zeros_like(tail_hi), tail_hi)
    mass = tail_lo - tail_hi
    # k = 0 is the symmetric centre cell [−hi, hi]
    mass[:, 0] = 1.0 - 2.0 * tail_hi[:, 0]
    return mass


def gaussian_half_pmf(delta_u: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, half): the Gaussian midpoint-cell pmfs of §4.4 for k = 0..K_max (64×2×(K_max+1)
    float64; zero beyond K_i), floored at 1e-9 and normalized over the symmetric support."""
    K = torch.from_numpy(tcq_support(delta_u))
    k_max = int(K.max())
    sigma_n = torch.from_numpy(scale_table()) / delta_u
    out = torch.zeros(64, 2, k_max + 1, dtype=torch.float64)
    inside = torch.arange(k_max + 1)[None, :] <= K[:, None]  # (64, k_max+1)
    for j in (0, 1):
        half = _cell_masses(sigma_n, k_max, j, K).clamp_min(PMF_FLOOR)
        half = torch.where(inside, half, torch.zeros_like(half))
        out[:, j] = normalize_half(half)
    return K, out


def normalize_half(half: torch.Tensor) -> torch.Tensor:
    """Divide half-pmfs (…×(K_max+1), k ≥ 0) by their symmetric total ``2·Σ_k − p_0``, summed
    left to right (coded rows: a fixed order of single IEEE operations)."""
    total = 2.0 * _row_sums(half) - half[..., 0]
    return half / total[..., None]


def tables_from_half(delta_u: float, K: torch.Tensor, half: torch.Tensor) -> TcqTables:
    """Symmetric pmf tables and code lengths from half-pmfs (64×2×(K_max+1), k ≥ 0)."""
    k_max = half.shape[-1] - 1
    pmf = torch.zeros(64, 2, 2 * k_max + 1, dtype=torch.float64)
    pmf[:, :, k_max:] = half
    pmf[:, :, :k_max] = half[:, :, 1:].flip(2)  # symmetric in k
    bits = torch.where(pmf > 0, -torch.log2(pmf.clamp_min(MIN_CODED_PROB)),
                       torch.full_like(pmf, _BITS_OUTSIDE))
    pmf_np = pmf.numpy()
    bits_np = bits.numpy()
    pmf_np.setflags(write=False)
    bits_np.setflags(write=False)
    return TcqTables(delta_u=float(delta_u), support=K.numpy(), k_max=k_max, pmf=pmf_np,
                     bits_np=bits_np, bits_flat=bits_np.reshape(-1), support_t=K)


@functools.lru_cache(maxsize=8)
def tcq_tables(delta_u: float = DEFAULT_DELTA_U) -> TcqTables:
    """Build (once per Δ_u) the 64×2 float64 pmf tables of §4.4 and their code lengths."""
    K, half = gaussian_half_pmf(delta_u)
    return tables_from_half(delta_u, K, half)
