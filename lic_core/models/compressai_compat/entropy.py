"""CompressAI's two entropy models, state-dict compatible, coding through our table coder.

* :class:`EntropyBottleneck` — the factorized density of Ballé et al. 2018 (appendix 6.1): per
  channel, a cumulative c(x) = σ(f_K ∘ … ∘ f_1(x)) with f_k(x) = softplus(H_k)·x + b_k and
  x + tanh(a_k)·tanh(x) between layers; p(v) = c(v + ½) − c(v − ½).  Symbols are
  ``round(x − median_c)`` (the median is ``quantiles[c, 0, 1]``), decoded as symbol + median.
* :class:`GaussianConditional` — the scale table of 64 log-spaced scales (0.11…256 unless the
  checkpoint stores its own), the index of a scale = how many table entries below it
  (CompressAI's ``build_indexes``), symbols ``round(y − μ)``.

Parameter and buffer names are CompressAI's (v1.2.8), so a user's checkpoint loads as it is; the
old names ``_matrix0``/``_bias0``/``_factor0`` are accepted too (:func:`remap_keys`).  The coding
tables are computed here in float64 from the stored parameters (CompressAI's ``update()``
recipe; its 16-bit quantized CDF buffers are not used), so an ``update()``-less checkpoint from
``examples/train.py`` codes like an updated one.
"""
from __future__ import annotations

import math
import re
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...entropy_model.tables import PmfTables, gaussian_tables

#: CompressAI's default scale table (``get_scale_table``): 64 log-spaced scales from 0.11 to 256
SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256.0, 64

#: buffers that CompressAI fills on ``update()``; their sizes vary per checkpoint and our tables
#: do not use them, so they are dropped before loading
CODER_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length")


#: CompressAI's ``get_scale_table()`` — ``exp(linspace(ln 0.11, ln 256, 64))`` in float32 — as
#: torch's vectorized (AVX2/AVX-512) kernels compute it, frozen: torch's scalar kernels give
#: other last bits for 10 of the 64 values (and ``linspace`` itself differs), so computing it at
#: load would change the scale indices, and the weights hash of an ``update()``-less checkpoint,
#: from machine to machine (issue 25)
COMPRESSAI_SCALE_TABLE = (
    0.10999999940395355, 0.12440409511327744, 0.14069437980651855, 0.15911780297756195,
    0.1799536943435669, 0.20351797342300415, 0.2301679253578186, 0.2603076100349426,
    0.294393926858902, 0.33294373750686646, 0.3765415549278259, 0.4258483052253723,
    0.48161160945892334, 0.5446768999099731, 0.6160004138946533, 0.6966634392738342,
    0.7878890037536621, 0.8910602331161499, 1.0077413320541382, 1.13970148563385,
    1.2889412641525269, 1.4577234983444214, 1.6486071348190308, 1.8644862174987793,
    2.1086339950561523, 2.384752035140991, 2.6970267295837402, 3.0501928329467773,
    3.4496042728424072, 3.9013173580169678, 4.412181377410889, 4.989940643310547,
    5.6433539390563965, 6.382330894470215, 7.218074798583984, 8.163254737854004,
    9.232203483581543, 10.441128730773926, 11.808356285095215, 13.35461711883545,
    15.103355407714844, 17.081085205078125, 19.317794799804688, 21.847389221191406,
    24.708223342895508, 27.943681716918945, 31.60280418395996, 35.7410774230957,
    40.42123794555664, 45.71425247192383, 51.70037841796875, 58.4703369140625,
    66.1268310546875, 74.7859115600586, 84.5788345336914, 95.65414428710938,
    108.17973327636719, 122.34544372558594, 138.3661651611328, 156.4847412109375,
    176.97579956054688, 200.15017700195312, 226.3590545654297, 256.0,
)


def default_scale_table() -> torch.Tensor:
    """CompressAI's default scale table (float32), the frozen values above."""
    return torch.tensor(COMPRESSAI_SCALE_TABLE, dtype=torch.float32)


class LowerBound(nn.Module):
    """``max(x, bound)`` with the buffer name CompressAI stores (``<name>.bound``)."""

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.max(x, self.bound)


_OLD = re.compile(r"^(.*\.)?_(matrix|bias|factor|matrices|biases|factors)\.?(\d+)$")
_NEW_NAMES = {"matrix": "matrices", "bias": "biases", "factor": "factors",
              "matrices": "matrices", "biases": "biases", "factors": "factors"}


def remap_keys(state_dict: dict) -> dict:
    """Old EntropyBottleneck names (``_matrix0``, and ``_matrices.0`` as some zoo files store
    them) → the ParameterList names (``matrices.0``)."""
    out = {}
    for k, v in state_dict.items():
        m = _OLD.match(k)
        out[f"{m.group(1) or ''}{_NEW_NAMES[m.group(2)]}.{m.group(3)}" if m else k] = v
    return out


class EntropyBottleneck(nn.Module):
    """The factorized prior (one density per channel)."""

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10.0,
                 filters: Sequence[int] = (3, 3, 3, 3), likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.tail_mass = float(tail_mass)
        dims = (1,) + self.filters + (1,)
        self.matrices = nn.ParameterList(
            nn.Parameter(torch.zeros(channels, dims[i + 1], dims[i])) for i in range(len(dims) - 1))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(channels, dims[i + 1], 1)) for i in range(len(dims) - 1))
        self.factors = nn.ParameterList(
            nn.Parameter(torch.zeros(channels, dims[i + 1], 1)) for i in range(len(dims) - 2))
        self.quantiles = nn.Parameter(
            torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.Tensor([-target, 0, target]))
        self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self._tables: Optional[PmfTables] = None

    # ------------------------------------------------------------------ density
    def _logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        """C×1×n inputs → C×1×n logits of the cumulative (in the inputs' dtype)."""
        logits = x
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            logits = torch.matmul(F.softplus(m.to(x.dtype)), logits) + b.to(x.dtype)
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i].to(x.dtype)) * torch.tanh(logits)
        return logits

    def medians(self) -> torch.Tensor:
        """The per-channel medians (C,), float32 as stored."""
        return self.quantiles[:, 0, 1].detach()

    def likelihood(self, values: torch.Tensor) -> torch.Tensor:
        """p(v) of B×C×h×w decoded values (float32, bounded below like CompressAI's)."""
        B, C, h, w = values.shape
        v = values.detach().permute(1, 0, 2, 3).reshape(C, 1, -1)
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        p = self.likelihood_lower_bound(torch.sigmoid(upper) - torch.sigmoid(lower))
        return p.reshape(C, B, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def tables(self) -> PmfTables:
        """One table per channel over ``[−minima, maxima]`` around the median (CompressAI's
        ``update()`` support), evaluated in float64; escape = both tails.  Cached."""
        if self._tables is None:
            q = self.quantiles.detach().double()
            med = q[:, 0, 1]
            minima = torch.clamp(torch.ceil(med - q[:, 0, 0]), min=0).long()
            maxima = torch.clamp(torch.ceil(q[:, 0, 2] - med), min=0).long()
            lengths = (minima + maxima + 1).numpy()
            L = int(lengths.max())
            samples = torch.arange(L, dtype=torch.float64)[None, None, :] + \
                (med - minima.double())[:, None, None]
            lower = self._logits_cumulative(samples - 0.5)[:, 0, :]
            upper = self._logits_cumulative(samples + 0.5)[:, 0, :]
            pmf = (torch.sigmoid(upper) - torch.sigmoid(lower)).numpy()
            pmfs = np.zeros((self.channels, L + 1), dtype=np.float64)
            for c in range(self.channels):
                n = int(lengths[c])
                pmfs[c, :n] = pmf[c, :n]
                pmfs[c, n] = float(torch.sigmoid(lower[c, 0]) + torch.sigmoid(-upper[c, n - 1]))
            self._tables = PmfTables(pmfs, -minima.numpy(), lengths)
        return self._tables

    def invalidate(self) -> None:
        """Forget the cached tables (after the parameters changed)."""
        self._tables = None

    # ------------------------------------------------------------------ coding
    def code(self, coder, label: str, x: Optional[torch.Tensor],
             shape: Sequence[int]) -> torch.Tensor:
        """Code ``x`` (B×C×h×w, encoding) or decode one of ``shape`` (x None); returns x̂ =
        round(x − median) + median as CompressAI decodes it."""
        med = self.medians().reshape(1, -1, 1, 1)
        index = torch.arange(self.channels).reshape(1, -1, 1, 1).expand(*shape)
        sym = None if x is None else torch.round(x.detach() - med).long()
        sym = coder.code(label, self.tables(), index, sym)
        return sym.to(med.dtype) + med


class GaussianConditional(nn.Module):
    """Gaussian conditional with CompressAI's scale table and indexing."""

    def __init__(self, scale_table: Optional[Sequence[float]] = None, scale_bound: float = 0.11,
                 tail_mass: float = 1e-9, likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        self.tail_mass = float(tail_mass)
        self.register_buffer("scale_table", torch.Tensor(tuple(scale_table)) if scale_table
                             else torch.Tensor())
        self.register_buffer("scale_bound", torch.Tensor([float(scale_bound)]))
        self.lower_bound_scale = LowerBound(scale_bound)
        self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self._tables: Optional[PmfTables] = None

    def table(self) -> torch.Tensor:
        """The scale table in use: the checkpoint's, or the default when it stores none (an
        ``update()``-less checkpoint)."""
        return self.scale_table if self.scale_table.numel() else default_scale_table()

    def index(self, scales: torch.Tensor) -> torch.Tensor:
        """Table index of every scale: (T − 1) − #{table[:-1] ≥ scale} (``build_indexes``)."""
        scales = self.lower_bound_scale(scales)
        table = self.table()
        idx = torch.full(scales.shape, len(table) - 1, dtype=torch.int64)
        for s in table[:-1]:
            idx -= (scales <= s).long()
        return idx

    def tables(self) -> PmfTables:
        if self._tables is None:
            self._tables = gaussian_tables(self.table().numpy(), self.tail_mass)
        return self._tables

    def invalidate(self) -> None:
        self._tables = None

    def likelihood(self, values: torch.Tensor, scales: torch.Tensor,
                   means: Optional[torch.Tensor] = None) -> torch.Tensor:
        """p(ŷ) under N(μ, σ) integrated over the unit bin (CompressAI's ``_likelihood``)."""
        v = torch.abs(values - means if means is not None else values)
        s = self.lower_bound_scale(scales)
        c = -(2 ** -0.5)
        # divide before scaling by c, as CompressAI does: the other order rounds differently
        # and the likelihoods would not be bit-identical to CompressAI's
        upper = 0.5 * torch.erfc(c * ((0.5 - v) / s))
        lower = 0.5 * torch.erfc(c * ((-0.5 - v) / s))
        return self.likelihood_lower_bound(upper - lower)

    def code(self, coder, label: str, y: Optional[torch.Tensor], scales: torch.Tensor,
             means: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Code ``y`` (encoding) or decode (y None) under N(μ, σ); returns ŷ = round(y − μ) + μ
        (μ = 0 without means), in the dtype of ``scales``."""
        index = self.index(scales)
        sym = None
        if y is not None:
            sym = torch.round(y.detach() - means if means is not None else y.detach()).long()
        sym = coder.code(label, self.tables(), index, sym)
        out = sym.to(scales.dtype)
        return out + means if means is not None else out
