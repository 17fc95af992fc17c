"""Fixed-point activations and exactly evaluated linear layers (docs/determinism.md).

Representation.  An activation is a float64 tensor whose values lie on a *grid*
``2^−F·ℤ ∩ [−2^R, 2^R]`` (:class:`Grid`).  A linear layer's weights are quantized once, per
output channel c, to ``w_int·2^(e_c)`` with integer ``|w_int| ≤ 2^W`` (W chosen per layer), and its
bias to an integer number of accumulator units ``2^(e_c − F)``.  Every product and every partial
sum of output channel c is then an integer multiple of ``2^(e_c − F)`` bounded by

    B_c = Σ_k |w_int[c, k]| · 2^(R+F) + |b_int[c]|,

and :class:`ExactLinear` asserts ``max_c B_c < 2^53`` when it is built.  Below 2^53 every integer
multiple of a power of two is a float64 number, so **each addition is exact whatever the order**:
any thread split, SIMD width, BLAS blocking, im2col/col2im or GPU kernel returns the same,
mathematically exact accumulator.  (Algorithms that are not sums of products — Winograd, FFT —
are excluded by running float64 convolutions with oneDNN and cuDNN switched off; float64 has no
TF32.)  After the layer, one nonlinearity from :mod:`lic_core.exact.dmath` and :func:`snap`
(multiply by 2^F — exact —, round half-even, clamp) put the result back on the grid.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .dmath import pow2

#: every partial sum must stay strictly below this (integers up to 2^53 are exact in float64)
EXACT_LIMIT = 2 ** 53


@dataclass(frozen=True)
class Grid:
    """Fixed-point grid: multiples of 2^−frac_bits, clamped to ±2^range_bits."""

    frac_bits: int
    range_bits: int

    @property
    def max_int(self) -> int:
        """Largest integer numerator, 2^(R+F)."""
        return 2 ** (self.frac_bits + self.range_bits)

    @property
    def step(self) -> float:
        return 2.0 ** -self.frac_bits


def snap(x: torch.Tensor, grid: Grid, relu: bool = False) -> torch.Tensor:
    """Round ``x`` (float64) to the grid: ×2^F (exact), round half-even, clamp, ×2^−F (exact).

    ``relu=True`` clamps at 0 instead of −2^R: round(max(x, 0)) = max(round(x), 0), so this is
    ReLU followed by snap, one pass cheaper.
    """
    if x.dtype != torch.float64:
        raise TypeError(f"snap needs float64, got {x.dtype}")
    lim = float(grid.max_int)
    t = x * float(2 ** grid.frac_bits)
    return t.round_().clamp_(0.0 if relu else -lim, lim).mul_(grid.step)


@contextlib.contextmanager
def exact_kernels(device: torch.device):
    """Run float64 convolutions on plain sum-of-products kernels.

    On CPU, float64 convolutions never reach oneDNN, NNPACK, XNNPACK or the Winograd depthwise
    kernel (all float32-only), so ATen's im2col + dgemm / col2im path runs.  On CUDA, cuDNN is
    switched off for the call (its algorithm choice includes FFT/Winograd variants), leaving
    ATen's im2col + cuBLAS dgemm kernels.  (The cuDNN switch is process-global while it is held.)
    """
    if device.type == "cuda":
        with torch.backends.cudnn.flags(enabled=False):
            yield
    else:
        yield


def _exponents(max_abs: torch.Tensor) -> torch.Tensor:
    """E with max_abs < 2^E per channel (frexp is exact; E = 0 for an all-zero channel)."""
    _, e = torch.frexp(max_abs)
    return e.to(torch.int64)


class ExactLinear:
    """A ``Conv2d``/``ConvTranspose2d``/``Linear`` evaluated exactly on a grid input.

    ``mask`` (same shape as the weight) is multiplied in before quantization (checkerboard
    convs).  ``weight_bits`` is the largest W ≤ ``max_weight_bits`` for which the 2^53 bound holds;
    building fails if even ``min_weight_bits`` violates it.
    """

    def __init__(self, module: nn.Module, in_grid: Grid, max_weight_bits: int = 24,
                 min_weight_bits: int = 8, mask: Optional[torch.Tensor] = None,
                 name: str = "") -> None:
        if isinstance(module, nn.ConvTranspose2d):
            self.kind, out_dim = "deconv", 1
        elif isinstance(module, nn.Conv2d):
            self.kind, out_dim = "conv", 0
        elif isinstance(module, nn.Linear):
            self.kind, out_dim = "linear", 0
        else:
            raise TypeError(f"no exact version of {type(module).__name__}")
        self.name = name
        self.module_repr = repr(module)
        w = module.weight.detach().to("cpu", torch.float64)
        if mask is not None:
            w = w * mask.to(w)
        b = None if module.bias is None else module.bias.detach().to("cpu", torch.float64)
        if self.kind != "linear":
            self.stride, self.padding = module.stride, module.padding
            self.groups = module.groups
            self.output_padding = getattr(module, "output_padding", (0, 0))
        # channel-first view: C_out × (everything that is summed into one output)
        wc = w.transpose(0, out_dim).reshape(w.shape[out_dim], -1)
        if self.kind == "deconv" and module.groups != 1:
            raise NotImplementedError("grouped transposed convolutions")
        E = _exponents(wc.abs().amax(dim=1))
        a_max = in_grid.max_int
        chosen = None
        for W in range(max_weight_bits, min_weight_bits - 1, -1):
            shift = W - E  # w_int = w · 2^(W − E_c); |w_int| ≤ 2^W
            w_int = torch.round(wc * pow2(shift)[:, None])
            b_int = (torch.zeros(wc.shape[0], dtype=torch.float64) if b is None else
                     torch.round(b * pow2(shift + in_grid.frac_bits)))
            sums = w_int.abs().to(torch.int64).sum(dim=1)
            bound = max(int(s) * a_max + abs(int(bi)) for s, bi in zip(sums, b_int))
            if bound < EXACT_LIMIT:
                chosen = (W, shift, w_int, b_int, bound)
                break
        if chosen is None:
            raise ValueError(f"{name or self.module_repr}: no weight precision ≥ {min_weight_bits} "
                             f"bits keeps the accumulator below 2^53 at input range 2^{in_grid.range_bits}")
        W, shift, w_int, b_int, bound = chosen
        self.weight_bits, self.acc_bound = W, bound
        # back to real values: w_q = w_int · 2^(−shift) (exact power-of-two scaling)
        unit = pow2(-shift)
        wq = (w_int * unit[:, None]).reshape(w.transpose(0, out_dim).shape).transpose(0, out_dim)
        self.weight = wq.contiguous()
        self._pointwise = (self.kind == "conv" and tuple(w.shape[2:]) == (1, 1)
                           and tuple(self.stride) == (1, 1) and tuple(self.padding) == (0, 0)
                           and self.groups == 1)
        self._w2d = self.weight.reshape(self.weight.shape[0], -1) if self._pointwise else None
        self.bias = None if b is None else b_int * unit * in_grid.step
        self.max_weight_error = float((wq - w).abs().max())

    def to(self, device) -> "ExactLinear":
        self.weight = self.weight.to(device)
        if self._w2d is not None:
            self._w2d = self.weight.reshape(self.weight.shape[0], -1)
        if self.bias is not None:
            self.bias = self.bias.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The exact accumulator (float64, not yet snapped)."""
        if x.dtype != torch.float64:
            raise TypeError(f"{self.name}: exact layers need float64 input, got {x.dtype}")
        with exact_kernels(x.device):
            if self.kind == "conv" and self._pointwise:
                # 1×1 conv as one dgemm on B×C×(H·W): no im2col copy; still exact sums
                B, C, H, W = x.shape
                out = torch.matmul(self._w2d, x.reshape(B, C, H * W)).reshape(B, -1, H, W)
            elif self.kind == "conv":
                out = F.conv2d(x, self.weight, None, self.stride, self.padding, 1, self.groups)
            elif self.kind == "deconv":
                out = F.conv_transpose2d(x, self.weight, None, self.stride, self.padding,
                                         self.output_padding, 1, 1)
            else:
                out = torch.matmul(x, self.weight.t())
        if self.bias is not None:
            # bias in accumulator units: adding it is exact (a separate op, never fused)
            out = out + (self.bias.view(1, -1, 1, 1) if self.kind != "linear" else self.bias)
        return out

    def report(self) -> dict:
        return {"name": self.name, "kind": self.kind, "weight_bits": self.weight_bits,
                "acc_bound_log2": math.log2(self.acc_bound) if self.acc_bound else 0.0,
                "max_weight_error": self.max_weight_error}


Activation = Optional[Callable[[torch.Tensor], torch.Tensor]]


class ExactLayer:
    """``snap(act(linear(x)))`` — one linear layer, its nonlinearity, back onto the grid."""

    def __init__(self, linear: ExactLinear, act: Activation, grid: Grid, relu: bool = False) -> None:
        self.linear, self.act, self.grid, self.relu = linear, act, grid, relu

    def to(self, device) -> "ExactLayer":
        self.linear.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        if self.act is not None:
            h = self.act(h)
        return snap(h, self.grid, relu=self.relu)


class ExactSequential:
    """An ``nn.Sequential`` of linear layers, each optionally followed by ReLU or GELU."""

    def __init__(self, seq: nn.Sequential, grid: Grid, max_weight_bits: int, name: str = "") -> None:
        from . import dmath

        mods = list(seq)
        self.layers: list[ExactLayer] = []
        i = 0
        while i < len(mods):
            m = mods[i]
            act: Activation = None
            relu = False
            if i + 1 < len(mods) and isinstance(mods[i + 1], (nn.ReLU, nn.GELU)):
                nxt = mods[i + 1]
                if isinstance(nxt, nn.GELU) and nxt.approximate != "none":
                    raise NotImplementedError("tanh-approximated GELU")
                relu = isinstance(nxt, nn.ReLU)  # folded into snap
                act = None if relu else dmath.gelu
                i += 1
            mask = getattr(m, "mask", None)
            if mask is not None:
                mask = mask.expand_as(m.weight)
            lin = ExactLinear(m, grid, max_weight_bits, mask=mask, name=f"{name}.{len(self.layers)}")
            self.layers.append(ExactLayer(lin, act, grid, relu))
            i += 1

    def linears(self) -> list[ExactLinear]:
        return [layer.linear for layer in self.layers]

    def to(self, device) -> "ExactSequential":
        for layer in self.layers:
            layer.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x
