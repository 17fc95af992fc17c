"""Exact mirrors of the layers of CompressAI's Ballé/Minnen networks (issue 25; docs/bitstream.md,
"Reproducible decoding").

Built once from a loaded float model (the weights are quantized here, nothing is retrained) and
evaluated with the three kinds of operation of the exact path: exact integer sums held in
float64 (:class:`~lic_core.exact.fixed.ExactLinear`), single IEEE-754 operations elementwise,
and lookups of frozen values.

* :class:`ExactGDN` — GDN and its inverse IGDN (Ballé, Laparra & Simoncelli 2016, "Density
  modeling of images using a generalized normalization transformation"):
  ``y_i = x_i · (β_i + Σ_j γ_ij x_j²)^(±½)``.  The squares have a far larger dynamic range than
  the activation grid can hold exactly under a 2^53 bound, so they are put in **block floating
  point per position**: ``s_j = round(x_j² · 2^(K−e))`` with ``e`` the exponent of the largest
  square at that position (``frexp``, exact) — integers ≤ 2^K, K = :data:`SQUARE_BITS`.  The
  1×1 convolution with the quantized γ is then an exact sum (γ ≥ 0, its weight bits chosen so
  ``Σ_j γ_int·2^K < 2^53``), scaled back by ``2^(e−K)`` (exact), plus β (one rounding), one
  ``sqrt`` (correctly rounded), one multiplication (IGDN) or division (GDN).
* :class:`ExactStack` — an ``nn.Sequential`` of ``Conv2d``/``ConvTranspose2d`` with ``ReLU``,
  ``LeakyReLU`` (one multiplication of the negative accumulator) or (I)GDN between them: h_s and
  g_s of ``bmshj2018-hyperprior``, ``mbt2018-mean`` and ``mbt2018``, and ``entropy_parameters``.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn

from ...exact import dmath
from ...exact.fixed import ExactLinear, Grid, snap
from ...exact.nets import ExactConfig
from .layers import GDN

#: the squares of a position are integers ≤ 2^SQUARE_BITS relative to its largest one: relative
#: precision 2^−26, about float32's, and room for 26-bit γ on a diagonal-dominated matrix
SQUARE_BITS = 26
#: weight bits of γ: at most this many (the 2^53 bound may choose fewer), at least 8
GAMMA_MAX_BITS = 26


def _scalar(t: torch.Tensor) -> float:
    """A one-element buffer as a Python float (via float64: an exact cast)."""
    return float(t.detach().to(torch.float64).reshape(-1)[0])


def _nonneg(reparam, p: torch.Tensor) -> torch.Tensor:
    """CompressAI's ``NonNegativeParametrizer``: max(p, bound)² − pedestal, in float64 (the
    square of a float32 value is exact there; one rounding for the subtraction)."""
    bound = _scalar(reparam.lower_bound.bound)
    pedestal = _scalar(reparam.pedestal)
    v = torch.clamp_min(p.detach().to("cpu", torch.float64), bound)
    return v * v - pedestal


class _Pointwise(nn.Conv2d):
    """A 1×1 convolution whose weights are set at once (no random initialization)."""

    def reset_parameters(self) -> None:
        pass


class ExactGDN:
    """GDN / IGDN on grid integers (see the module docstring)."""

    def __init__(self, gdn: GDN, grid: Grid, name: str = "") -> None:
        self.grid, self.inverse, self.name = grid, gdn.inverse, name
        C = gdn.beta.numel()
        self.beta = _nonneg(gdn.beta_reparam, gdn.beta).reshape(1, C, 1, 1)
        gamma = _nonneg(gdn.gamma_reparam, gdn.gamma).reshape(C, C, 1, 1)
        conv = _Pointwise(C, C, 1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            conv.weight.copy_(gamma)
        # the squares' grid: integers ≤ 2^K, no fraction bits (they carry their own exponent)
        self.gamma = ExactLinear(conv, Grid(0, SQUARE_BITS), GAMMA_MAX_BITS,
                                 name=f"{name}.gamma")
        # 2^(e − K) brings Σγ·s back to real units of x² = a²·4^−F
        self._shift = SQUARE_BITS + 2 * grid.frac_bits

    def linears(self) -> list[ExactLinear]:
        return [self.gamma]

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        """Grid integers B×C×H×W in, grid integers out."""
        # in place on fresh tensors: the same single operations, fewer passes over memory
        s = a * a  # a² (one rounding at most: |a| ≤ 2^28)
        _, e = torch.frexp(s.amax(dim=1, keepdim=True))  # largest square < 2^e (exact)
        e = e.to(torch.int64)
        s.mul_(dmath.pow2(SQUARE_BITS - e, check=False)).round_()  # ≤ 2^K, exact scaling
        acc = self.gamma(s)  # Σ_j γ_q·s_j: exact
        del s
        acc.mul_(dmath.pow2(e - self._shift, check=False))  # exact (a power of two)
        root = acc.add_(self.beta).sqrt_()  # one rounding each
        out = root.mul_(a) if self.inverse else dmath.div(a, root)
        return snap(out, self.grid, inplace=True)


Op = Union[tuple, ExactGDN]


class ExactStack:
    """An ``nn.Sequential`` of linear layers and ReLU / LeakyReLU / (I)GDN on the exact path.

    Each linear layer's accumulator gets its activation (ReLU: the clamp at 0 of the rounding;
    LeakyReLU: ``acc·slope`` where negative, one multiplication) and is rounded onto the grid;
    ``final_accumulator=True`` returns the last layer's exact accumulator unrounded (g_s: the
    picture is rounded once, to 8 bits)."""

    def __init__(self, seq: nn.Sequential, cfg: ExactConfig, name: str,
                 final_accumulator: bool = False) -> None:
        self.grid = cfg.grid
        self.final_accumulator = final_accumulator
        self.ops: list[Op] = []
        mods = list(seq)
        i = 0
        while i < len(mods):
            m = mods[i]
            label = f"{name}.{i}"
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                act: Optional[tuple] = None
                nxt = mods[i + 1] if i + 1 < len(mods) else None
                if isinstance(nxt, nn.ReLU):
                    act, i = ("relu",), i + 1
                elif isinstance(nxt, nn.LeakyReLU):
                    act, i = ("leaky", float(nxt.negative_slope)), i + 1
                mask = getattr(m, "mask", None)
                lin = ExactLinear(m, self.grid, cfg.max_weight_bits, name=label,
                                  mask=None if mask is None else mask.expand_as(m.weight))
                self.ops.append((lin, act))
            elif isinstance(m, GDN):
                self.ops.append(ExactGDN(m, self.grid, label))
            else:
                raise NotImplementedError(f"{label}: no exact version of {type(m).__name__}")
            i += 1

    def linears(self) -> list[ExactLinear]:
        out: list[ExactLinear] = []
        for op in self.ops:
            out.extend(op.linears() if isinstance(op, ExactGDN) else [op[0]])
        return out

    @staticmethod
    def activate(acc: torch.Tensor, act: Optional[tuple], grid: Grid) -> torch.Tensor:
        """An accumulator (grid units) through its activation, rounded onto the grid."""
        if act is None:
            return snap(acc, grid, inplace=True)
        if act[0] == "relu":
            return snap(acc, grid, relu=True, inplace=True)
        # LeakyReLU: the slope times the accumulator where it is negative (one multiplication)
        return snap(torch.where(acc < 0, acc * act[1], acc), grid, inplace=True)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        last = len(self.ops) - 1
        for k, op in enumerate(self.ops):
            if isinstance(op, ExactGDN):
                a = op(a)
                continue
            lin, act = op
            acc = lin(a)
            if k == last and self.final_accumulator:
                if act is not None:
                    raise ValueError("the final accumulator of a stack ending in an activation")
                return acc
            a = self.activate(acc, act, self.grid)
        return a
