"""Pmf tables over integer symbols with an escape entry (the CompressAI table convention).

CompressAI codes every latent symbol under one of a fixed set of tables (Ballé et al. 2018, §3;
CompressAI's ``EntropyModel``): the factorized prior has one table per channel, the Gaussian
conditional one per entry of its scale table.  Table ``t`` covers the integer values
``offsets[t] … offsets[t] + lengths[t] − 1``; a value outside that range is coded as the table's
*escape* entry (its tail mass) followed by the value itself in a bypass code, so every integer
decodes exactly (CompressAI does the same with its overflow bin).

These tables are plain data: models build them (:mod:`lic_core.models.compressai_compat`), the
entropy coder (:mod:`lic_core.entropy_coder.tables`) codes with them, analysis views read ideal
bits from them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

#: bits of the bypass code of one escaped value: a 3-bit nibble count and 4 bits per nibble
#: (:mod:`lic_core.entropy_coder.tables`); the estimate below charges the exact amount
ESCAPE_COUNT_BITS = 3
ESCAPE_NIBBLE_BITS = 4
#: the least probability of a coded entry: CompressAI's 16-bit CDFs give every symbol at least
#: one count in 2¹⁶, so a symbol the model thinks impossible costs ≤ 16 bits there; without the
#: floor it would cost up to the range coder's 24 bits here (mis-fitted or briefly trained models)
PMF_FLOOR = 2.0 ** -16


@dataclass(frozen=True, eq=False)
class PmfTables:
    """``pmfs[t, :lengths[t]]`` are the probabilities of ``offsets[t] + k``; ``pmfs[t, lengths[t]]``
    is the escape (tail) probability.  float64; rows need not be normalized."""

    pmfs: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    #: coder objects built from the rows, keyed by table id (filled by the entropy coder)
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    #: normalize rows with correctly rounded sums (``math.fsum``) instead of numpy's summation
    #: order: with bit-identical pmfs, the coded rows are then bit-identical on every machine
    #: (the exact path of added models, issue 25; docs/bitstream.md)
    exact: bool = False

    def __post_init__(self) -> None:
        pmfs = np.ascontiguousarray(self.pmfs, dtype=np.float64)
        offsets = np.asarray(self.offsets, dtype=np.int64).reshape(-1)
        lengths = np.asarray(self.lengths, dtype=np.int64).reshape(-1)
        if pmfs.ndim != 2 or offsets.shape[0] != pmfs.shape[0] or lengths.shape[0] != pmfs.shape[0]:
            raise ValueError("PmfTables needs T×L pmfs and T offsets and lengths")
        if (lengths < 1).any() or (lengths + 1 > pmfs.shape[1]).any():
            raise ValueError("every table length must leave room for its escape entry")
        object.__setattr__(self, "pmfs", pmfs)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "lengths", lengths)

    def __len__(self) -> int:
        return int(self.pmfs.shape[0])

    def row(self, t: int) -> np.ndarray:
        """Table ``t``'s coded row, normalized: its support and the escape entry, every entry at
        least ``PMF_FLOOR`` (float64)."""
        r = self.pmfs[t, : int(self.lengths[t]) + 1]
        total = math.fsum if self.exact else np.sum  # fsum: one correctly rounded sum
        r = np.maximum(r / total(r), PMF_FLOOR)
        return r / total(r)

    def bits(self, index: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        """Ideal bits −log2 p of every symbol under its table (float64, shape of ``symbols``),
        escapes charged their tail probability plus the bypass bits."""
        idx = index.detach().cpu().numpy().astype(np.int64)
        sym = symbols.detach().cpu().numpy().astype(np.int64)
        out = np.empty(sym.shape, dtype=np.float64)
        for t in np.unique(idx):
            m = idx == t
            p = self.row(int(t))
            k = sym[m] - self.offsets[t]
            esc = (k < 0) | (k >= self.lengths[t])
            kk = np.where(esc, self.lengths[t], k)
            b = -np.log2(np.maximum(p[kk], 2.0 ** -24))
            if esc.any():
                b[esc] += np.array([escape_bits(int(v)) for v in
                                    escape_values(sym[m][esc], int(self.offsets[t]),
                                                  int(self.lengths[t]))])
            out[m] = b
        return torch.from_numpy(out)


def escape_values(values: np.ndarray, offset: int, length: int) -> np.ndarray:
    """Non-negative codes of values outside ``[offset, offset + length)``: ``2d`` above the
    support, ``2d + 1`` below it, d the distance past the edge minus one."""
    v = np.asarray(values, dtype=np.int64)
    above = v >= offset + length
    d = np.where(above, v - (offset + length), offset - 1 - v)
    return np.where(above, 2 * d, 2 * d + 1)


def unescape_values(codes: np.ndarray, offset: int, length: int) -> np.ndarray:
    """Inverse of :func:`escape_values`."""
    e = np.asarray(codes, dtype=np.int64)
    d = e >> 1
    return np.where(e & 1, offset - 1 - d, offset + length + d)


def escape_nibbles(code: int) -> int:
    """How many 4-bit nibbles the bypass code of ``code`` needs (1…8)."""
    n = 1
    while code >> (4 * n):
        n += 1
    if n > 8:
        raise ValueError("escaped symbol too large (over 32 bits)")
    return n


def escape_bits(code: int) -> int:
    return ESCAPE_COUNT_BITS + ESCAPE_NIBBLE_BITS * escape_nibbles(code)


def gaussian_tables(scale_table: np.ndarray, tail_mass: float = 1e-9) -> PmfTables:
    """Zero-mean discretized Gaussians, one table per scale (CompressAI's
    ``GaussianConditional.update``): support ``±ceil(s·q)`` with q the standard normal's
    ``1 − tail_mass/2`` quantile, p(k) = Φ((k + ½)/s) − Φ((k − ½)/s), escape = both tails.

    Computed in float64 from the float32 scale values with scipy's ``erfc`` (the float path;
    the exact path builds its tables from IEEE basic operations:
    :func:`lic_core.models.compressai_compat.exact_entropy.exact_gaussian_tables`)."""
    scales = np.asarray(scale_table, dtype=np.float32).astype(np.float64).reshape(-1)
    q = -_std_normal_quantile(tail_mass / 2)
    centers = np.ceil(scales * q).astype(np.int64)
    lengths = 2 * centers + 1
    L = int(lengths.max()) + 1
    pmfs = np.zeros((scales.size, L), dtype=np.float64)
    for t, (s, c) in enumerate(zip(scales, centers)):
        k = np.abs(np.arange(-c, c + 1, dtype=np.float64))
        upper = _phi((0.5 - k) / s)
        lower = _phi((-0.5 - k) / s)
        pmfs[t, : 2 * c + 1] = upper - lower
        pmfs[t, 2 * c + 1] = 2.0 * _phi((-0.5 - c) / s)
    return PmfTables(pmfs, -centers, lengths)


def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF via erfc (accurate in the tails)."""
    from scipy.special import erfc

    return 0.5 * erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0))


def _std_normal_quantile(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))
