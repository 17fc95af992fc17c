"""CompressAI's two entropy models on the exact path (issue 25; docs/bitstream.md, "Reproducible
decoding"): every number a decoder needs to follow the range coder is the same bits on every
machine.

* :class:`ExactBottleneck` — z's factorized density (Ballé et al. 2018, "Variational image
  compression with a scale hyperprior", appendix 6.1).  The medians are the stored float32
  ``quantiles`` (data); the pmf tables are the density's differences of the cumulative
  ``c(x) = σ(f_K ∘ … ∘ f_1(x))`` evaluated with :mod:`lic_core.exact.dmath` (softplus, tanh,
  sigmoid from IEEE basic operations) and every matrix product of the tiny per-channel layers
  written out as single multiplications and additions in a fixed order — no BLAS, no libm.
* :class:`ExactGaussian` — y's Gaussian conditional: CompressAI's scale table (the checkpoint's
  stored values, else the frozen :data:`~.entropy.COMPRESSAI_SCALE_TABLE`), the index of a scale
  by comparisons (``build_indexes``), and zero-mean discretized Gaussian tables
  (:func:`exact_gaussian_tables`) built with ``dmath.normal_cdf`` instead of scipy's ``erfc``.

Both produce :class:`~lic_core.entropy_model.tables.PmfTables` with ``exact=True`` (rows
normalized by correctly rounded sums), which :mod:`lic_core.entropy_coder.tables` codes with
``constriction``'s ``Categorical`` — deterministic given bit-identical rows (docs/bitstream.md,
"What it covers").  The symbols are CompressAI's: ``round(z − median)`` and ``round(y − μ)``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ...entropy_model.tables import PmfTables
from ...exact import dmath
from .entropy import COMPRESSAI_SCALE_TABLE, EntropyBottleneck, GaussianConditional

#: −Φ⁻¹(tail_mass/2) for CompressAI's tail mass 1e-9 (scipy's ``ndtri``, frozen: the support of
#: every Gaussian table is ±ceil(σ·q); checked against scipy by the tests)
TAIL_QUANTILE = {1e-9: 6.1094102048693975}


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float64)


def exact_logits_cumulative(eb: EntropyBottleneck, x: torch.Tensor) -> torch.Tensor:
    """The cumulative's logits of C×1×n float64 inputs: ``f_k(x) = softplus(H_k)·x + b_k`` and
    ``x + tanh(a_k)·tanh(x)`` between layers, with each product of the tiny matrices summed as
    single IEEE operations in a fixed order (a GEMM's blocking and FMA use vary by machine)."""
    logits = x
    n_layers = len(eb.matrices)
    for i in range(n_layers):
        h = dmath.softplus(_f64(eb.matrices[i]))  # C×out×in
        b = _f64(eb.biases[i])  # C×out×1
        acc = h[:, :, 0:1] * logits[:, 0:1, :]
        for k in range(1, h.shape[2]):
            acc = acc + h[:, :, k:k + 1] * logits[:, k:k + 1, :]
        logits = acc + b
        if i < len(eb.factors):
            a = dmath.tanh(_f64(eb.factors[i]))
            logits = logits + a * dmath.tanh(logits)
    return logits


class ExactBottleneck:
    """z's factorized prior with tables from IEEE basic operations (see the module docstring)."""

    def __init__(self, eb: EntropyBottleneck) -> None:
        self.channels = eb.channels
        q = _f64(eb.quantiles)
        self.medians = q[:, 0, 1].clone()  # float32 values, exactly
        self.tables = self._tables(eb, q)

    def _tables(self, eb: EntropyBottleneck, q: torch.Tensor) -> PmfTables:
        """CompressAI's ``update()`` support ``[median − minima, median + maxima]`` per channel;
        p(v) = σ(u) − σ(l) computed on the side where it does not cancel (``update()``'s sign
        trick); the escape entry is both tails."""
        med = self.medians
        minima = torch.clamp(torch.ceil(med - q[:, 0, 0]), min=0).to(torch.int64)
        maxima = torch.clamp(torch.ceil(q[:, 0, 2] - med), min=0).to(torch.int64)
        lengths = minima + maxima + 1
        L = int(lengths.max())
        samples = torch.arange(L, dtype=torch.float64)[None, None, :] + \
            (med - minima.to(torch.float64))[:, None, None]
        lower = exact_logits_cumulative(eb, samples - 0.5)[:, 0, :]
        upper = exact_logits_cumulative(eb, samples + 0.5)[:, 0, :]
        # where l + u > 0 both sigmoids are near 1: σ(−l) − σ(−u) keeps the precision
        flip = (lower + upper) > 0
        hi = dmath.sigmoid(torch.where(flip, -lower, upper))
        lo = dmath.sigmoid(torch.where(flip, -upper, lower))
        pmf = (hi - lo).abs().numpy()
        n = lengths.numpy()
        rows = np.arange(self.channels)
        tail = (dmath.sigmoid(lower[:, 0]) +
                dmath.sigmoid(-upper[torch.arange(self.channels), lengths - 1])).numpy()
        pmfs = np.zeros((self.channels, L + 1), dtype=np.float64)
        inside = np.arange(L)[None, :] < n[:, None]
        pmfs[:, :L] = np.where(inside, pmf, 0.0)
        pmfs[rows, n] = tail
        return PmfTables(pmfs, -minima.numpy(), n, exact=True)

    def code(self, coder, label: str, z: Optional[torch.Tensor],
             shape: Sequence[int]) -> torch.Tensor:
        """Code ``z`` (encoding; the encoder's float values) or decode (z None); returns
        ẑ = symbol + median in float64 (one exact or correctly rounded addition)."""
        med = self.medians.reshape(1, -1, 1, 1)
        index = torch.arange(self.channels).reshape(1, -1, 1, 1).expand(*shape)
        sym = None if z is None else torch.round(z.detach().to(torch.float64) - med).long()
        sym = coder.code(label, self.tables, index, sym)
        return sym.to(torch.float64) + med


def exact_gaussian_tables(scales: torch.Tensor, tail_mass: float = 1e-9) -> PmfTables:
    """Zero-mean discretized Gaussians, one per scale s (float64 holding the table's float32
    values): support ``±ceil(s·q)``, p(k) = Φ((½ − |k|)/s) − Φ((−½ − |k|)/s), escape = both
    tails 2·Φ((−½ − c)/s) — CompressAI's ``GaussianConditional.update`` with ``dmath``'s Φ
    (each quotient one correctly rounded division)."""
    if tail_mass not in TAIL_QUANTILE:
        raise ValueError(f"the exact path has the tail quantile of tail mass 1e-9 only, not "
                         f"{tail_mass:g}")
    s = _f64(scales).reshape(-1)
    centers = torch.ceil(s * TAIL_QUANTILE[tail_mass]).to(torch.int64)
    lengths = 2 * centers + 1
    L = int(lengths.max()) + 1
    # v_j = Φ((½ − j)/s) for j = 0 … c + 1 of every table, in one call (only the support:
    # the tables of small scales are short); Φ((−½ − k)/s) is v_{k+1} (½ − (k + 1) = −½ − k
    # exactly), so p(k) = v_k − v_{k+1} and the tails are 2·v_{c+1}
    counts = centers + 2
    j = torch.cat([torch.arange(int(n), dtype=torch.float64) for n in counts])
    v = dmath.normal_cdf(dmath.div(0.5 - j, torch.repeat_interleave(s, counts)))
    pmfs = torch.zeros((s.numel(), L), dtype=torch.float64)
    start = 0
    for t, c in enumerate(centers.tolist()):
        vt = v[start:start + c + 2]
        start += c + 2
        p = vt[:-1] - vt[1:]  # p(k), k = 0 … c
        k = (torch.arange(2 * c + 1) - c).abs()  # |symbol| of entry i = symbol + c
        pmfs[t, :2 * c + 1] = p[k]
        pmfs[t, 2 * c + 1] = vt[c + 1] * 2.0
    return PmfTables(pmfs.numpy(), (-centers).numpy(), lengths.numpy(), exact=True)


class ExactGaussian:
    """y's Gaussian conditional on the exact path: table, bound, index, tables, coding."""

    def __init__(self, gc: GaussianConditional) -> None:
        stored = gc.scale_table
        # the checkpoint's own table is data (the same everywhere); without one, CompressAI's
        # default as frozen literals
        self.table = _f64(stored) if stored.numel() else \
            torch.tensor(COMPRESSAI_SCALE_TABLE, dtype=torch.float64)
        self.bound = float(_f64(gc.scale_bound).reshape(-1)[0])  # float32 0.11, exactly
        self.tables = exact_gaussian_tables(self.table, gc.tail_mass)
        self._below_last = self.table[:-1].contiguous()

    def index(self, sigma: torch.Tensor) -> torch.Tensor:
        """CompressAI's ``build_indexes``: (T − 1) − #{table[:−1] ≥ max(σ, bound)}, i.e. the
        number of entries of table[:−1] below the bounded σ — comparisons only."""
        s = torch.clamp_min(sigma.to(torch.float64), self.bound).contiguous()
        return torch.searchsorted(self._below_last, s, right=False)

    def code(self, coder, label: str, y: Optional[torch.Tensor], sigma: torch.Tensor,
             mu: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Code ``y`` (encoding) or decode (y None) with symbols ``round(y − μ)`` (CompressAI's;
        μ = 0 without means) under the tables of σ; returns ŷ = symbol + μ (float64; exact when
        μ is a grid value)."""
        index = self.index(sigma)
        sym = None
        if y is not None:
            y64 = y.detach().to(torch.float64)
            sym = torch.round(y64 - mu if mu is not None else y64).long()
        sym = coder.code(label, self.tables, index, sym)
        out = sym.to(torch.float64)
        return out + mu if mu is not None else out
