"""Factorized ("entropy bottleneck") prior for the hyper-latent z (Ballé et al. 2018, App. 6.1;
docs/methods.md §2.2, §6.1).

Each channel has a learned monotone CDF ``c(x)`` built from a small per-channel MLP with
filters (3, 3, 3, 3) and softplus-positive matrices; the likelihood of a unit bin is
``c(x+½) − c(x−½)``, computed with the sign trick for precision.  Learned quantiles (tail mass
1e-9) are trained by :meth:`FactorizedPrior.loss` (the auxiliary loss) and define the coding
range; symbols are rounded around the learned medians.

For coding, :meth:`update_tables` samples the pmf at the integers of each channel's range in
float64 and stores it (plus the tail mass as an escape-free clamp range) as buffers, so the
decoder uses exactly the stored numbers (docs/methods.md §6.4).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .gaussian import LIKELIHOOD_BOUND, lower_bound

TAIL_MASS = 1e-9
MAX_PMF_LENGTH = 1023


class FactorizedPrior(nn.Module):
    """Per-channel non-parametric density for z (CompressAI ``EntropyBottleneck`` design)."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3),
                 init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        q = torch.tensor([-init_scale, 0.0, init_scale])
        self.quantiles = nn.Parameter(q.repeat(channels, 1, 1))  # C×1×3: lower, median, upper
        target = math.log(2 / TAIL_MASS - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]), persistent=False)
        # coding tables (filled by update_tables; float64 so they survive fp16 weight export)
        self.register_buffer("pmf", torch.zeros(channels, 1, dtype=torch.float64))
        self.register_buffer("pmf_offset", torch.zeros(channels, dtype=torch.int64))
        self.register_buffer("pmf_length", torch.zeros(channels, dtype=torch.int64))

    # -- density -------------------------------------------------------------------------
    def _logits_cumulative(self, x: torch.Tensor, stop_gradient: bool) -> torch.Tensor:
        """x: C×1×L → logits of the CDF, C×1×L."""
        logits = x
        for i in range(len(self.matrices)):
            m = self.matrices[i]
            b = self.biases[i]
            if stop_gradient:
                m, b = m.detach(), b.detach()
            logits = torch.matmul(F.softplus(m), logits) + b
            if i < len(self.factors):
                f = self.factors[i]
                if stop_gradient:
                    f = f.detach()
                logits = logits + torch.tanh(f) * torch.tanh(logits)
        return logits

    def _likelihood(self, v: torch.Tensor, stop_gradient: bool = False) -> torch.Tensor:
        """Likelihood of unit bins centred at v (B×C×h×w)."""
        B, C, H, W = v.shape
        x = v.permute(1, 0, 2, 3).reshape(C, 1, -1)
        lower = self._logits_cumulative(x - 0.5, stop_gradient)
        upper = self._logits_cumulative(x + 0.5, stop_gradient)
        sign = -torch.sign(lower + upper).detach()
        lik = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        lik = lik.reshape(C, B, H, W).permute(1, 0, 2, 3)
        return lower_bound(lik, LIKELIHOOD_BOUND)

    def medians(self) -> torch.Tensor:
        return self.quantiles[:, 0, 1].detach()

    def forward(self, z: torch.Tensor, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(ẑ, likelihoods): noise while training, rounding around the medians otherwise."""
        med = self.medians()[None, :, None, None]
        if training:
            z_hat = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        else:
            z_hat = torch.round(z - med) + med
        return z_hat, self._likelihood(z_hat)

    def loss(self) -> torch.Tensor:
        """Auxiliary loss pulling the quantiles to the 1e-9 tails and the median."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return (logits - self.target).abs().sum()

    # -- coding tables ---------------------------------------------------------------------
    @torch.no_grad()
    def update_tables(self) -> None:
        """Sample each channel's pmf at the integers of its quantile range (float64)."""
        med = self.medians()
        lo = torch.floor(self.quantiles[:, 0, 0] - med).long()
        hi = torch.ceil(self.quantiles[:, 0, 2] - med).long()
        lo = torch.minimum(lo, torch.zeros_like(lo))
        hi = torch.maximum(hi, torch.zeros_like(hi))
        length = (hi - lo + 1).clamp(1, MAX_PMF_LENGTH)
        hi = lo + length - 1
        L = int(length.max())
        x = lo[:, None] + torch.arange(L)[None, :]  # C×L symbol values (relative to median)
        vals = (x.to(torch.float32) + med[:, None]).reshape(self.channels, 1, L)
        lower = self._logits_cumulative(vals - 0.5, True).double()
        upper = self._logits_cumulative(vals + 0.5, True).double()
        sign = -torch.sign(lower + upper)
        pmf = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs().reshape(
            self.channels, L)
        valid = torch.arange(L)[None, :] < length[:, None]
        pmf = torch.where(valid, pmf.clamp_min(1e-12), torch.zeros_like(pmf))
        pmf = pmf / pmf.sum(dim=1, keepdim=True)
        self.pmf = pmf
        self.pmf_offset = lo
        self.pmf_length = length

    def has_tables(self) -> bool:
        """True when coding tables are stored (filled by :meth:`update_tables` before export)."""
        return int(self.pmf_length.min()) > 0 and self.pmf.dtype == torch.float64

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pmf C×L float64, offset C int64, length C int64): the *stored* coding tables.

        Never computed here: float32 logits of the CDF network differ in their last bits
        between machines, so a decoder must use the exporter's float64 numbers (format v2,
        docs/bitstream.md).  A model without them raises :class:`ModelNotFoundError`."""
        if not self.has_tables():
            from ..errors import ModelNotFoundError

            raise ModelNotFoundError(
                "these weights carry no stored z coding tables (the factorized prior's float64 "
                "pmf); coding refuses to recompute them — export the weights again with "
                "`lic export` (it stores them)")
        return (self.pmf.cpu().numpy(), self.pmf_offset.cpu().numpy(),
                self.pmf_length.cpu().numpy())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The pmf buffer's width depends on the trained quantiles: resize before loading.
        key = prefix + "pmf"
        if key in state_dict:
            self.pmf = torch.zeros_like(state_dict[key], dtype=torch.float64)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
