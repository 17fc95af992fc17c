"""Fixed-point activations and exactly evaluated linear layers (docs/bitstream.md, "Reproducible
decoding").

Representation.  An activation on a :class:`Grid` ``(F, R)`` is a float64 tensor of **integers**
``a = x·2^F`` with ``|a| ≤ 2^(R+F)`` (the real value ``x`` is ``a·2^−F``; keeping the integers
saves the two power-of-two scalings every rounding would otherwise cost).  A linear layer's
weights are quantized once, per output channel c, to ``w_q = w_int·2^(E_c−W)`` with integer
``|w_int| ≤ 2^W`` (``E_c`` from ``frexp`` of the channel's largest weight, W chosen per layer), and
its bias to an integer number of accumulator units ``2^(E_c−W)``.  The layer's accumulator
``Σ w_q·a + b_q = 2^F·(W x + b)`` is then, for channel c, an integer multiple of ``2^(E_c−W)``
whose integer part — and that of every partial sum — is bounded by

    B_c = Σ_k |w_int[c, k]| · 2^(R+F) + |b_int[c]|,

and :class:`ExactLinear` asserts ``max_c B_c < 2^53`` when it is built.  Below 2^53 every integer
multiple of a power of two is a float64 number, so **each addition is exact whatever the order**:
any thread split, SIMD width, BLAS blocking, im2col/col2im or GPU kernel returns the same,
mathematically exact accumulator (a fused bias is one more exact term).  Algorithms that are not
sums of products (Winograd, FFT) never run: float64 convolutions on the CPU use ATen's
im2col/col2im + dgemm kernels (oneDNN, NNPACK, XNNPACK and the Winograd depthwise kernel are
float32-only), and on CUDA this module does the im2col (``unfold``/``fold``) itself and calls
cuBLAS dgemm, so cuDNN is never involved and no process-wide flag is touched.

After a layer, :func:`snap` rounds half-to-even and clamps (ReLU is the clamp at 0); a nonlinearity
from :mod:`lic_core.exact.dmath` runs on the real value ``acc·2^−F`` first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .dmath import pow2

#: every partial sum must stay strictly below this (integers up to 2^53 are exact in float64)
EXACT_LIMIT = 2 ** 53

#: run convolutions as explicit im2col + matmul (always on CUDA; tests set it to check the CUDA
#: formulation on the CPU)
FORCE_IM2COL = False


@dataclass(frozen=True)
class Grid:
    """Fixed-point grid: multiples of 2^−frac_bits, clamped to ±2^range_bits (stored as integers)."""

    frac_bits: int
    range_bits: int

    @property
    def max_int(self) -> int:
        """Largest integer numerator, 2^(R+F)."""
        return 2 ** (self.frac_bits + self.range_bits)

    @property
    def scale(self) -> float:
        """2^F: real value × scale = stored integer."""
        return float(2 ** self.frac_bits)

    @property
    def step(self) -> float:
        return 2.0 ** -self.frac_bits


def snap(acc: torch.Tensor, grid: Grid, relu: bool = False, inplace: bool = False) -> torch.Tensor:
    """Round an accumulator already in grid units (``x·2^F``) half-to-even and clamp to ±2^(R+F).

    ``relu=True`` clamps at 0 instead of −2^(R+F): round(max(v, 0)) = max(round(v), 0), so this
    is ReLU followed by snap.  ``inplace`` reuses ``acc`` (a fresh accumulator nobody else holds).
    """
    if acc.dtype != torch.float64:
        raise TypeError(f"snap needs float64, got {acc.dtype}")
    lim = float(grid.max_int)
    out = acc if inplace else acc.clone()
    return out.round_().clamp_(0.0 if relu else -lim, lim)


def to_grid(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """A real tensor (any float dtype holding the value) onto the grid: round(x·2^F), clamped.

    The cast to float64 is exact for float16/32 inputs; ×2^F is exact."""
    return snap(x.to(torch.float64) * grid.scale, grid, inplace=True)


def real(a: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The real values ``a·2^−F`` of grid integers (exact)."""
    return a * grid.step


def apply_real(fn: Callable[[torch.Tensor], torch.Tensor], acc: torch.Tensor,
               grid: Grid) -> torch.Tensor:
    """``snap(fn(acc·2^−F)·2^F)``: a nonlinearity of the real value, back onto the grid."""
    y = fn(acc * grid.step)
    return snap(y.mul_(grid.scale), grid, inplace=True)


def _exponents(max_abs: torch.Tensor) -> torch.Tensor:
    """E with max_abs < 2^E per channel (frexp is exact; E = 0 for an all-zero channel)."""
    _, e = torch.frexp(max_abs)
    return e.to(torch.int64)


def quantize_rows(wc: torch.Tensor, b: Optional[torch.Tensor], in_grid: Grid,
                  max_weight_bits: int, min_weight_bits: int, name: str):
    """Quantize a C_out × K weight matrix (+ bias) for exact sums on ``in_grid`` integers.

    Returns ``(W, w_q, b_q, bound)``: the weight bits chosen (largest ≤ ``max_weight_bits`` with
    ``max_c B_c < 2^53``), the real-valued quantized weights ``w_int·2^(E_c−W)``, the bias in
    accumulator units (``b·2^F`` rounded to multiples of ``2^(E_c−W)``) and the bound ``max_c B_c``.
    """
    wc = wc.to("cpu", torch.float64)
    E = _exponents(wc.abs().amax(dim=1))
    a_max = in_grid.max_int
    for W in range(max_weight_bits, min_weight_bits - 1, -1):
        shift = W - E  # w_int = w · 2^(W − E_c); |w_int| ≤ 2^W
        w_int = torch.round(wc * pow2(shift)[:, None])
        b_int = (torch.zeros(wc.shape[0], dtype=torch.float64) if b is None else
                 torch.round(b.to("cpu", torch.float64) * pow2(shift + in_grid.frac_bits)))
        sums = w_int.abs().to(torch.int64).sum(dim=1)
        bound = max(int(s) * a_max + abs(int(bi)) for s, bi in zip(sums, b_int))
        if bound < EXACT_LIMIT:
            unit = pow2(-shift)  # exact powers of two
            return W, w_int * unit[:, None], (None if b is None else b_int * unit), bound
    raise ValueError(f"{name}: no weight precision ≥ {min_weight_bits} bits keeps the "
                     f"accumulator below 2^53 at input range 2^{in_grid.range_bits}")


def _use_im2col(x: torch.Tensor) -> bool:
    return FORCE_IM2COL or x.device.type == "cuda"


def _conv2d(x, w, bias, stride, padding, groups):
    """Exact conv: ATen's float64 kernel on the CPU, explicit im2col + dgemm elsewhere."""
    if not _use_im2col(x):
        return F.conv2d(x, w, bias, stride, padding, 1, groups)
    B, C, H, W_ = x.shape
    cout, cin_g, kh, kw = w.shape
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # B × C·kh·kw × L (copies)
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W_ + 2 * padding[1] - kw) // stride[1] + 1
    cols = cols.reshape(B, groups, cin_g * kh * kw, Ho * Wo)
    wg = w.reshape(groups, cout // groups, cin_g * kh * kw)
    out = torch.matmul(wg, cols).reshape(B, cout, Ho, Wo)
    if bias is not None:
        out.add_(bias.view(1, -1, 1, 1))
    return out


def _conv_transpose2d(x, w, bias, stride, padding, output_padding):
    """Exact transposed conv: ATen's float64 kernel on the CPU, dgemm + col2im (``fold``) else."""
    if not _use_im2col(x):
        return F.conv_transpose2d(x, w, bias, stride, padding, output_padding, 1, 1)
    B, C, H, W_ = x.shape
    cin, cout, kh, kw = w.shape
    Ho = (H - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
    Wo = (W_ - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
    cols = torch.matmul(w.reshape(cin, cout * kh * kw).t(), x.reshape(B, C, H * W_))
    # col2im sums the overlapping contributions: exact sums of exact products
    out = F.fold(cols, (Ho + 2 * padding[0], Wo + 2 * padding[1]), (kh, kw), stride=stride)
    out = out[:, :, padding[0]:padding[0] + Ho, padding[1]:padding[1] + Wo]
    out = out.contiguous()
    if bias is not None:
        out.add_(bias.view(1, -1, 1, 1))
    return out


class ExactLinear:
    """A ``Conv2d``/``ConvTranspose2d``/``Linear`` evaluated exactly on grid integers.

    ``mask`` (same shape as the weight) is multiplied in before quantization (checkerboard
    convs).  ``pad_mode`` ("reflect"/"replicate") pads the input explicitly before a conv with
    zero built-in padding (HiFiC's ``ReflectConv2d``; padding copies values, exactly).
    """

    def __init__(self, module: nn.Module, in_grid: Grid, max_weight_bits: int = 24,
                 min_weight_bits: int = 8, mask: Optional[torch.Tensor] = None,
                 name: str = "", pad: int = 0) -> None:
        if isinstance(module, nn.ConvTranspose2d):
            self.kind, out_dim = "deconv", 1
        elif isinstance(module, nn.Conv2d):
            self.kind, out_dim = "conv", 0
        elif isinstance(module, nn.Linear):
            self.kind, out_dim = "linear", 0
        else:
            raise TypeError(f"no exact version of {type(module).__name__}")
        self.name = name
        self.in_grid = in_grid
        self.pad = int(pad)
        w = module.weight.detach().to("cpu", torch.float64)
        if mask is not None:
            w = w * mask.to(w)
        b = None if module.bias is None else module.bias.detach().to("cpu", torch.float64)
        if self.kind != "linear":
            self.stride, self.padding = tuple(module.stride), tuple(module.padding)
            self.groups = module.groups
            self.output_padding = tuple(getattr(module, "output_padding", (0, 0)))
            if self.kind == "deconv" and module.groups != 1:
                raise NotImplementedError("grouped transposed convolutions")
        # channel-first view: C_out × (everything that is summed into one output)
        wc = w.transpose(0, out_dim).reshape(w.shape[out_dim], -1)
        W, wq_rows, bq, bound = quantize_rows(wc, b, in_grid, max_weight_bits, min_weight_bits,
                                              name or repr(module))
        self.weight_bits, self.acc_bound = W, bound
        wq = wq_rows.reshape(w.transpose(0, out_dim).shape).transpose(0, out_dim)
        self.weight = wq.contiguous()
        self.bias = bq
        self._pointwise = (self.kind == "conv" and tuple(w.shape[2:]) == (1, 1)
                           and self.stride == (1, 1) and self.padding == (0, 0)
                           and self.groups == 1)
        self._w2d = self.weight.reshape(self.weight.shape[0], -1) if self._pointwise else None
        self._wt = self.weight.t().contiguous() if self.kind == "linear" else None
        self.max_weight_error = float((wq - w).abs().max())

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[1] if self.kind == "deconv" else self.weight.shape[0])

    def to(self, device) -> "ExactLinear":
        self.weight = self.weight.to(device)
        if self._w2d is not None:
            self._w2d = self.weight.reshape(self.weight.shape[0], -1)
        if self._wt is not None:
            self._wt = self.weight.t().contiguous()
        if self.bias is not None:
            self.bias = self.bias.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The exact accumulator in input-grid units (float64, not yet snapped)."""
        if x.dtype != torch.float64:
            raise TypeError(f"{self.name}: exact layers need float64 input, got {x.dtype}")
        if self.kind == "linear":
            out = torch.matmul(x, self._wt)
            return out if self.bias is None else out.add_(self.bias)
        if self._pointwise:
            # 1×1 conv as one dgemm on B×C×(H·W): no im2col copy; still exact sums
            B, C, H, W = x.shape
            out = torch.matmul(self._w2d, x.reshape(B, C, H * W)).reshape(B, -1, H, W)
            return out if self.bias is None else out.add_(self.bias.view(1, -1, 1, 1))
        if self.pad:
            p = self.pad
            mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
            x = F.pad(x, (p, p, p, p), mode=mode)
        if self.kind == "conv":
            return _conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)
        return _conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                 self.output_padding)

    def report(self) -> dict:
        return {"name": self.name, "kind": self.kind, "weight_bits": self.weight_bits,
                "acc_bound_log2": math.log2(self.acc_bound) if self.acc_bound else 0.0,
                "max_weight_error": self.max_weight_error}


Activation = Optional[Callable[[torch.Tensor], torch.Tensor]]


class ExactLayer:
    """``snap(act(linear(a)))`` — one linear layer, its nonlinearity, back onto the grid."""

    def __init__(self, linear: ExactLinear, act: Activation, grid: Grid, relu: bool = False) -> None:
        self.linear, self.act, self.grid, self.relu = linear, act, grid, relu

    def to(self, device) -> "ExactLayer":
        self.linear.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        if self.act is not None:
            return apply_real(self.act, h, self.grid)
        return snap(h, self.grid, relu=self.relu, inplace=True)


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
