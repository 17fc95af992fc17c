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

from . import kernels
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


def picture_from_real(x: torch.Tensor) -> torch.Tensor:
    """uint8 from exact real values: clamp(x, 0, 1)·255, rounded half-even (single IEEE ops)."""
    return torch.round(torch.clamp(x, 0.0, 1.0) * 255.0).to(torch.uint8)


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

    B_c never decreases with W (``|round(2v)| ≥ |round(v)|`` for every weight and the bias), so
    the largest W that fits is found from a guess — the W at which the unrounded sums would reach
    2^53 — and its neighbours instead of trying every W downwards: the same W, two or three
    roundings of the matrix instead of up to 17 (a decoder builds ~200 layers per process).
    """
    wc = wc.to("cpu", torch.float64)
    E = _exponents(wc.abs().amax(dim=1))
    a_max = in_grid.max_int
    b64 = None if b is None else b.to("cpu", torch.float64)
    tried: dict = {}

    def trial(W: int):
        if W not in tried:
            shift = W - E  # w_int = w · 2^(W − E_c); |w_int| ≤ 2^W
            w_int = torch.round(wc * pow2(shift)[:, None])
            b_int = (torch.zeros(wc.shape[0], dtype=torch.float64) if b64 is None else
                     torch.round(b64 * pow2(shift + in_grid.frac_bits)))
            sums = w_int.abs().to(torch.int64).sum(dim=1)
            # B_c = Σ|w_int|·2^(R+F) + |b_int| per channel: in float64 each term is exact (a
            # power-of-two multiple of an int64 sum; b_int holds an integer) and a sum ≥ 2^53
            # cannot round below 2^53, so the comparison is exact; the bound is the exact integer
            est = sums.to(torch.float64) * float(a_max) + b_int.abs()
            tried[W] = (shift, w_int, b_int, sums, est, float(est.max()) < EXACT_LIMIT)
        return tried[W]

    # the guess: B_c ≈ 2^(W − E_c)·(Σ|w|·2^(R+F) + |b|·2^F), unrounded
    real = wc.abs().sum(dim=1) * float(a_max)
    if b64 is not None:
        real = real + b64.abs() * in_grid.scale
    top = float((real * pow2(max_weight_bits - E)).max())
    over = math.ceil(math.log2(top / EXACT_LIMIT)) if top >= EXACT_LIMIT else 0
    W = min(max_weight_bits, max(min_weight_bits, max_weight_bits - over))
    if trial(W)[-1]:
        while W < max_weight_bits and trial(W + 1)[-1]:
            W += 1
    else:
        while not trial(W)[-1]:
            W -= 1
            if W < min_weight_bits:
                raise ValueError(f"{name}: no weight precision ≥ {min_weight_bits} bits keeps the "
                                 f"accumulator below 2^53 at input range 2^{in_grid.range_bits}")
    shift, w_int, b_int, sums, est, _ = trial(W)
    c = int(torch.argmax(est))
    bound = int(sums[c]) * a_max + abs(int(b_int[c]))
    unit = pow2(-shift)  # exact powers of two
    return W, w_int * unit[:, None], (None if b is None else b_int * unit), bound


def _use_im2col(x: torch.Tensor) -> bool:
    return FORCE_IM2COL or x.device.type == "cuda"


#: below this many output channels a conv stacks its taps into one GEMM (M = taps·C_out) and sums
#: shifted slices of the product: dgemm with M = 3 runs at a fraction of its speed
STACK_TAPS_BELOW = 16


def _pad_with_ones(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Zero-padded copy of B×C×H×W with one more channel of ones (the bias's input), C+1."""
    B, C, H, W = x.shape
    xp = x.new_zeros((B, C + 1, H + top + bottom, W + left + right))
    xp[:, :C, top:top + H, left:left + W] = x
    xp[:, C].fill_(1.0)
    return xp


def _gemm_taps(xp: torch.Tensor, taps: list, n_rows: int, cout: int) -> torch.Tensor:
    """Σ_taps W_t @ X[:, off_t : off_t + n_rows·Wp] on a padded, row-flattened input.

    ``xp`` is B×C×Hp×Wp (contiguous); every tap (W_t of C_out×C, flat offset) reads a contiguous
    window of the flattened rows, so each term is one dgemm without any copy, accumulated in place
    (``addmm_``, BLAS β = 1); the bias rides in the first tap as the weight of a channel of ones.
    Every term is exact and every partial sum is bounded by the layer's B_c, so the accumulator is
    exact whatever the order.  Returns B×C_out×n_rows×Wp (only the first Wo columns are valid)."""
    B, C, Hp, Wp = xp.shape
    n = n_rows * Wp
    X = xp.reshape(B, C, Hp * Wp)
    out = torch.empty((B, cout, n), dtype=xp.dtype, device=xp.device)
    if cout < STACK_TAPS_BELOW and len(taps) > 1:
        # one GEMM for all taps (M = taps·C_out), then the shifted windows of its rows summed
        offs = [off for _, off in taps]
        lo, hi = min(offs), max(offs)
        w_all = torch.cat([w for w, _ in taps], dim=0)
        for b in range(B):
            Y = torch.mm(w_all, X[b, :, lo:hi + n]).view(len(taps), cout, hi - lo + n)
            ob = out[b]
            ob.copy_(Y[0, :, offs[0] - lo:offs[0] - lo + n])
            for t in range(1, len(taps)):
                ob.add_(Y[t, :, offs[t] - lo:offs[t] - lo + n])
        return out.view(B, cout, n_rows, Wp)
    for b in range(B):
        ob = out[b]
        w0, off0 = taps[0]
        torch.mm(w0, X[b, :, off0:off0 + n], out=ob)
        for w_t, off in taps[1:]:
            ob.addmm_(w_t, X[b, :, off:off + n])
    return out.view(B, cout, n_rows, Wp)


def _with_bias(w_t: torch.Tensor, bias: Optional[torch.Tensor], first: bool) -> torch.Tensor:
    """A tap's C_out×C weight with the bias column for the ones channel (first tap only)."""
    col = (bias if (first and bias is not None) else w_t.new_zeros(w_t.shape[0])).view(-1, 1)
    return torch.cat([w_t, col], dim=1)


def _conv_taps(w, bias) -> list:
    """Per tap (ky, kx): the C_out×(C+1) weight with the bias column on the first tap."""
    kh, kw = w.shape[2:]
    return [_with_bias(w[:, :, ky, kx], bias, ky == kx == 0).contiguous()
            for ky in range(kh) for kx in range(kw)]


def _conv2d_stride1(x, w, bias, padding, tap_w=None):
    """A stride-1, ungrouped conv as shifted GEMMs (one per tap) over the padded input."""
    B, C, H, W_ = x.shape
    cout, _, kh, kw = w.shape
    ph, pw = padding
    Ho, Wo = H + 2 * ph - kh + 1, W_ + 2 * pw - kw + 1
    # one extra zero row at the bottom keeps the last tap's window inside the buffer
    xp = _pad_with_ones(x, pw, pw, ph, ph + 1)
    Wp = W_ + 2 * pw
    tap_w = tap_w if tap_w is not None else _conv_taps(w, bias)
    taps = [(tap_w[ky * kw + kx], ky * Wp + kx) for ky in range(kh) for kx in range(kw)]
    out = _gemm_taps(xp, taps, Ho, cout)
    return out[:, :, :, :Wo].contiguous()


def _conv_transpose2d_phases(x, w, bias, stride, padding, output_padding):
    """A transposed conv as s_h·s_w stride-1 sub-convolutions (polyphase), each as shifted
    GEMMs, interleaved into the output — no col2im, no zero-filled scatter buffer."""
    B, C, H, W_ = x.shape
    _, cout, kh, kw = w.shape
    sh, sw = stride
    Ho = (H - 1) * sh - 2 * padding[0] + kh + output_padding[0]
    Wo = (W_ - 1) * sw - 2 * padding[1] + kw + output_padding[1]
    ph_y = kernels.axis_phases(kh, sh, padding[0], Ho)
    ph_x = kernels.axis_phases(kw, sw, padding[1], Wo)
    dys = [d for taps, _ in ph_y for _, d in taps]
    dxs = [d for taps, _ in ph_x for _, d in taps]
    top, left = max(0, -min(dys)), max(0, -min(dxs))
    n_y, n_x = max(n for _, n in ph_y), max(n for _, n in ph_x)
    bottom = max(0, n_y - 1 + max(dys) - (H - 1)) + 1  # +1 row: windows stay inside
    right = max(0, n_x - 1 + max(dxs) - (W_ - 1))
    xp = _pad_with_ones(x, left, right, top, bottom)
    Wp = W_ + left + right
    wt = w.permute(2, 3, 1, 0)  # kh×kw×C_out×C_in: W_kᵀ per tap
    out = torch.empty((B, cout, Ho, Wo), dtype=x.dtype, device=x.device)
    for ry, (taps_y, ny) in enumerate(ph_y):
        for rx, (taps_x, nx) in enumerate(ph_x):
            if ny == 0 or nx == 0:
                continue
            taps = [(_with_bias(wt[ky, kx], bias, i == 0), (dy + top) * Wp + (dx + left))
                    for i, ((ky, dy), (kx, dx)) in enumerate(
                        (ty, tx) for ty in taps_y for tx in taps_x)]
            if taps:
                res = _gemm_taps(xp, taps, ny, cout)[:, :, :, :nx]
            else:  # a phase no tap reaches: only the bias
                res = (torch.zeros((B, cout, ny, nx), dtype=x.dtype, device=x.device)
                       if bias is None else bias.view(1, -1, 1, 1).expand(B, cout, ny, nx))
            out[:, :, ry::sh, rx::sw] = res
    return out


def _conv2d(x, w, bias, stride, padding, groups, tap_w=None):
    """Exact conv: shifted GEMMs (stride 1, ungrouped), else ATen's float64 kernel on the CPU
    and explicit im2col + dgemm on CUDA (never cuDNN)."""
    if tuple(stride) == (1, 1) and groups == 1 and not FORCE_IM2COL:
        return _conv2d_stride1(x, w, bias, padding, tap_w)
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
    """Exact transposed conv: polyphase shifted GEMMs (reference: ATen's kernel, or dgemm +
    col2im with FORCE_IM2COL)."""
    if not FORCE_IM2COL:
        return _conv_transpose2d_phases(x, w, bias, stride, padding, output_padding)
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
        self._taps: Optional[list] = None  # per-tap GEMM weights, built on first use
        self._ktaps: Optional[object] = None  # the same for the cache-blocked CPU kernels
        self.max_weight_error = float((wq - w).abs().max())

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[1] if self.kind == "deconv" else self.weight.shape[0])

    def to(self, device) -> "ExactLinear":
        self._taps = self._ktaps = None
        self.weight = self.weight.to(device)
        if self._w2d is not None:
            self._w2d = self.weight.reshape(self.weight.shape[0], -1)
        if self._wt is not None:
            self._wt = self.weight.t().contiguous()
        if self.bias is not None:
            self.bias = self.bias.to(device)
        return self

    def _blocked(self, x: torch.Tensor) -> bool:
        """Whether the cache-blocked CPU kernels (:mod:`.kernels`) run this layer."""
        if FORCE_IM2COL or x.device.type != "cpu" or self.kind == "linear":
            return False
        return self._pointwise or self.kind == "deconv" or (self.stride == (1, 1)
                                                            and self.groups == 1)

    def _kernel_taps(self):
        """The blocked kernels' weights: kh×kw×C_out×C_in for a deconv; per tap the C_out×C_in
        matrix for a conv, None for a tap that is all zeros (a checkerboard mask's).

        Leaving out a zero tap leaves out terms ±0·a: the exact sum keeps its value, and its
        sign when the value is zero (−0 only when every term is −0) as long as some kept term
        is never −0 — the first tap's bias column (the kernel's channel of ones) is that term
        unless a bias is −0, and below :data:`kernels.STACK_TAPS_BELOW` outputs there is no bias
        column: then, and for a −0 bias, every tap stays."""
        w = self.weight
        if self.kind == "deconv":
            return w.permute(2, 3, 1, 0).contiguous()
        taps = [w[:, :, ky, kx].contiguous() for ky in range(w.shape[2])
                for kx in range(w.shape[3])]
        b = self.bias
        safe = w.shape[0] >= kernels.STACK_TAPS_BELOW and (
            b is None or not bool(((b == 0) & torch.signbit(b)).any()))
        if safe and any(bool(t.any()) for t in taps):
            taps = [t if bool(t.any()) else None for t in taps]
        return taps

    def _run_blocked(self, x: torch.Tensor, epi: kernels.Epilogue,
                     residual: Optional[torch.Tensor]) -> torch.Tensor:
        if x.dtype != torch.float64:
            raise TypeError(f"{self.name}: exact layers need float64 input, got {x.dtype}")
        if self._pointwise:
            return kernels.pointwise(x, self._w2d, self.bias, epi, residual)
        if self.pad:
            p = self.pad
            mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
            x = F.pad(x, (p, p, p, p), mode=mode)
        if self._ktaps is None:
            self._ktaps = self._kernel_taps()
        if self.kind == "deconv":
            return kernels.conv_transpose2d(x, self._ktaps, self.bias, self.stride, self.padding,
                                            self.output_padding, epi, residual)
        return kernels.conv2d_s1(x, self._ktaps, self.bias, tuple(self.weight.shape[2:]),
                                 self.padding, epi, residual)

    def snapped(self, x: torch.Tensor, grid: Grid, relu: bool = False,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``snap(self(x), grid, relu)``, plus ``residual`` and the clamp when given (a residual
        block's ``add(residual, snap(body))``) — fused into the cache-blocked kernel on the CPU."""
        if self._blocked(x):
            return self._run_blocked(x, kernels.snap_epilogue(grid.max_int, relu), residual)
        h = snap(self(x), grid, relu=relu, inplace=True)
        if residual is None:
            return h
        lim = float(grid.max_int)
        return torch.add(residual, h).clamp_(-lim, lim)

    def picture(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        """uint8 ``clamp(self(x)·2^−F, 0, 1)·255`` rounded half-even (a final layer's picture)."""
        if self._blocked(x):
            return self._run_blocked(x, kernels.picture_epilogue(grid.step), None)
        y = self(x) * grid.step
        return torch.round(torch.clamp(y, 0.0, 1.0) * 255.0).to(torch.uint8)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The exact accumulator in input-grid units (float64, not yet snapped)."""
        if x.dtype != torch.float64:
            raise TypeError(f"{self.name}: exact layers need float64 input, got {x.dtype}")
        if self._blocked(x):
            return self._run_blocked(x, kernels.ACCUMULATOR, None)
        if self.kind == "linear":
            out = torch.matmul(x, self._wt)
            return out if self.bias is None else out.add_(self.bias)
        if self._pointwise:
            # 1×1 conv as one dgemm on C×(H·W) per image (bias as BLAS's β·C term): exact sums
            B, C, H, W = x.shape
            X = x.reshape(B, C, H * W)
            if self.bias is not None:
                out = torch.stack([torch.addmm(self.bias.view(-1, 1), self._w2d, X[b])
                                   for b in range(B)]) if B > 1 else \
                    torch.addmm(self.bias.view(-1, 1), self._w2d, X[0])[None]
            else:
                out = torch.matmul(self._w2d, X)
            return out.reshape(B, -1, H, W)
        if self.pad:
            p = self.pad
            mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
            x = F.pad(x, (p, p, p, p), mode=mode)
        if self.kind == "conv":
            if self._taps is None and self.stride == (1, 1) and self.groups == 1:
                self._taps = _conv_taps(self.weight, self.bias)
            return _conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups,
                           self._taps)
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

    def __call__(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The layer's grid output; ``residual`` (no activation only) is added and clamped."""
        if self.act is not None:
            h = apply_real(self.act, self.linear(x), self.grid)
            if residual is None:
                return h
            lim = float(self.grid.max_int)
            return torch.add(residual, h).clamp_(-lim, lim)
        return self.linear.snapped(x, self.grid, self.relu, residual)


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

    def __call__(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The layers in turn; ``residual`` is added (and clamped) after the last one."""
        for layer in self.layers[:-1]:
            x = layer(x)
        return self.layers[-1](x, residual)
