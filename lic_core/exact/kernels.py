"""Cache-blocked exact convolutions with the rounding fused in (docs/bitstream.md "Reproducible
decoding", docs/methods.md §6.4; issue 28).

Why: the exact g_s spent about half of its time outside its float64 GEMMs — a padded copy of every
input with a channel of ones, one GEMM per tap over the *whole* image (so the accumulator went
through main memory once per tap), a cropping copy, then rounding, clamping and residual adds as
separate passes over full-size tensors.  Here a convolution walks its output in chunks of rows
small enough to stay in a core's cache: every tap's GEMM accumulates into the chunk, the bias is
the chunk's starting value (no ones channel: K stays the channel count), and the chunk is rounded,
clamped (ReLU), written to the output and given its residual while it is still in cache.

Why no bit changes: every accumulator is an exact sum of exact terms (the 2^53 bound of
:mod:`lic_core.exact.fixed`), so splitting rows into chunks, starting from the bias instead of
adding it as a term, or summing the taps of a small layer from one stacked GEMM gives the same
number; the epilogue is the same sequence of single IEEE operations (round half-even, clamp, add,
clamp; for the picture ×2^−F, clamp to [0, 1], ×255, round) applied to the same values.

Shapes: stride-1 convolutions run as shifted GEMMs over the zero-padded, row-flattened input; a
transposed convolution as its s_h·s_w stride-1 phases over one padded input, each phase's rows
written interleaved into the output; 1×1 convolutions as GEMMs over column chunks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

#: bytes of one chunk's working set (accumulators + the input rows they read): about one core's
#: L2, so the per-tap GEMMs re-read their accumulator from cache, not from memory
CHUNK_BYTES = int(os.environ.get("LIC_EXACT_CHUNK", 4 << 20))

#: below this many output channels the taps are stacked into one GEMM (M = taps·C_out) and their
#: shifted windows summed: dgemm with M = 3 runs at a fraction of its speed
STACK_TAPS_BELOW = 16


@dataclass(frozen=True)
class Epilogue:
    """What a finished accumulator chunk becomes, applied while it is in cache.

    ``kind``: "acc" — the accumulator itself; "snap" — round half-even and clamp to [lo, hi]
    (lo = 0 is ReLU then snap, :func:`lic_core.exact.fixed.snap`), then, when the kernel is given
    a residual, add it and clamp to ±hi (:func:`lic_core.exact.nets.add`); "picture" — clamp(acc·step,
    0, 1)·255 rounded half-even, as uint8 (:func:`lic_core.exact.fixed.picture_from_real`)."""

    kind: str = "acc"
    lo: float = 0.0
    hi: float = 0.0
    step: float = 1.0

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8 if self.kind == "picture" else torch.float64

    def apply_(self, acc: Tensor) -> Tensor:
        """The epilogue on a contiguous float64 chunk, in place."""
        if self.kind == "snap":
            acc.round_().clamp_(self.lo, self.hi)
        elif self.kind == "picture":
            acc.mul_(self.step).clamp_(0.0, 1.0).mul_(255.0).round_()
        return acc


ACCUMULATOR = Epilogue()


def snap_epilogue(max_int: float, relu: bool = False) -> Epilogue:
    """Round and clamp to ±max_int (or [0, max_int]: ReLU) — the activation grid's snap."""
    return Epilogue("snap", 0.0 if relu else -float(max_int), float(max_int))


def picture_epilogue(step: float) -> Epilogue:
    """The uint8 picture of a final accumulator in grid units of ``step`` (2^−F)."""
    return Epilogue("picture", step=float(step))


def _finish(epi: Epilogue, acc3: Tensor, wo: int, dst: Tensor, res: Optional[Tensor]) -> None:
    """Epilogue of a (C_out, rows, Wp) chunk, its first ``wo`` columns into ``dst``: round,
    clamp, [add the residual, clamp]; the last clamp (or copy) writes ``dst``."""
    if epi.kind != "snap":
        dst.copy_(epi.apply_(acc3)[:, :, :wo])
        return
    acc3.round_()
    if res is None:
        torch.clamp(acc3[:, :, :wo], epi.lo, epi.hi, out=dst)
        return
    acc3.clamp_(epi.lo, epi.hi)
    torch.clamp(acc3[:, :, :wo].add_(res), -epi.hi, epi.hi, out=dst)


def padded(x: Tensor, left: int, right: int, top: int, bottom: int, ones: bool = False) -> Tensor:
    """Zero-padded copy of B×C×H×W (only the border is zeroed; the interior is copied once);
    ``ones`` adds a channel of ones (C + 1 channels): the bias's input in the first tap's GEMM."""
    B, C, H, W = x.shape
    full = x.new_empty((B, C + int(ones), H + top + bottom, W + left + right))
    xp = full[:, :C]
    if ones:
        full[:, C].fill_(1.0)
    if top:
        xp[:, :, :top].zero_()
    if bottom:
        xp[:, :, top + H:].zero_()
    if left:
        xp[:, :, top:top + H, :left].zero_()
    if right:
        xp[:, :, top:top + H, left + W:].zero_()
    xp[:, :, top:top + H, left:left + W] = x
    return full


@dataclass
class Phase:
    """One stride-1 sub-convolution: its taps (C_out×C weight, flat offset in the padded input),
    its output rows/columns and where they go (out[ry::sy, rx::sx])."""

    taps: list
    rows: int
    cols: int
    ry: int = 0
    rx: int = 0
    sy: int = 1
    sx: int = 1


def _stacked(phases: list[Phase], cout: int) -> bool:
    return cout < STACK_TAPS_BELOW and sum(len(p.taps) for p in phases) > 1


def shifted_gemm(xp: Tensor, phases: list[Phase], cout: int, bias: Optional[Tensor],
                 out: Tensor, epi: Epilogue, residual: Optional[Tensor] = None) -> Tensor:
    """Every phase of a (transposed) convolution over the padded input ``xp`` into ``out``.

    Output row m of a phase reads the flattened rows of ``xp`` from m·Wp + offset: chunks of rows
    of all phases are computed together, so the input rows a chunk reads stay in cache across
    phases and taps.  Unless the taps are stacked, ``xp`` carries a last channel of ones and the
    first tap of each phase a bias column (:func:`padded`, :func:`_with_bias`)."""
    B, Cx, Hp, Wp = xp.shape
    stack = _stacked(phases, cout)
    C = Cx if stack else Cx - 1
    X = xp.view(B, Cx, Hp * Wp)
    bias_col = None if bias is None else bias.view(-1, 1)
    n_rows = max(p.rows for p in phases)
    n_taps = sum(len(p.taps) for p in phases)
    per_row = 8 * Wp * (C + cout * (1 + (n_taps if stack else 0)))
    rows = min(n_rows, max(1, CHUNK_BYTES // per_row))
    buf = xp.new_empty(cout * rows * Wp)
    if stack:
        offs = [off for p in phases for _, off in p.taps]
        lo, hi = min(offs), max(offs)
        w_all = torch.cat([w for p in phases for w, _ in p.taps], dim=0)
        ybuf = xp.new_empty(w_all.shape[0] * (rows * Wp + hi - lo))
    for b in range(B):
        Xb, Xc = X[b], X[b, :C]
        for r0 in range(0, n_rows, rows):
            r1 = min(n_rows, r0 + rows)
            base = r0 * Wp
            if stack:
                span = (r1 - r0) * Wp + hi - lo
                Y = torch.mm(w_all, Xb[:, base + lo:base + lo + span],
                             out=ybuf[:w_all.shape[0] * span].view(-1, span)).view(-1, cout, span)
                t_index = 0
            for p in phases:
                pr1 = min(r1, p.rows)
                if pr1 <= r0:
                    t_index = t_index + len(p.taps) if stack else 0
                    continue
                n = (pr1 - r0) * Wp
                acc = buf[:cout * n].view(cout, n)
                if not p.taps:  # a phase no tap reaches: only the bias
                    acc.zero_()
                    if bias_col is not None:
                        acc.add_(bias_col)
                elif stack:
                    for j, (_, off) in enumerate(p.taps):
                        sl = Y[t_index + j, :, off - lo:off - lo + n]
                        acc.add_(sl) if j else acc.copy_(sl)
                    t_index += len(p.taps)
                    if bias_col is not None:
                        acc.add_(bias_col)
                else:  # the first tap reads the ones channel with the bias column
                    w0, off0 = p.taps[0]
                    torch.mm(w0, Xb[:, base + off0:base + off0 + n], out=acc)
                    for w_t, off in p.taps[1:]:
                        acc.addmm_(w_t, Xc[:, base + off:base + off + n])
                ys = slice(p.ry + p.sy * r0, p.ry + p.sy * (pr1 - 1) + 1, p.sy)
                xs = slice(p.rx, p.rx + p.sx * (p.cols - 1) + 1, p.sx)
                res = None if residual is None else residual[b, :, ys, xs]
                _finish(epi, acc.view(cout, pr1 - r0, Wp), p.cols, out[b, :, ys, xs], res)
    return out


def _with_bias(phases: list[Phase], bias: Optional[Tensor]) -> None:
    """Give the first tap of every phase a bias column (zeros without a bias): the weight of the
    padded input's channel of ones."""
    for p in phases:
        if p.taps:
            w0, off0 = p.taps[0]
            col = bias if bias is not None else w0.new_zeros(w0.shape[0])
            p.taps[0] = (torch.cat([w0, col.view(-1, 1)], dim=1), off0)


def conv2d_s1(x: Tensor, taps: list[Tensor], bias: Optional[Tensor], kernel: tuple[int, int],
              padding: tuple[int, int], epi: Epilogue = ACCUMULATOR,
              residual: Optional[Tensor] = None) -> Tensor:
    """A stride-1, ungrouped convolution; ``taps[ky·kw + kx]`` is the C_out×C weight of a tap,
    or None for a tap whose weights are all zero (a masked convolution's: its terms are zeros,
    left out — see :meth:`lic_core.exact.fixed.ExactLinear._kernel_taps` for when that is
    allowed)."""
    B, C, H, W = x.shape
    (kh, kw), (ph, pw) = kernel, padding
    cout = next(t.shape[0] for t in taps if t is not None)
    Ho, Wo = H + 2 * ph - kh + 1, W + 2 * pw - kw + 1
    Wp = W + 2 * pw
    phases = [Phase([(taps[ky * kw + kx], ky * Wp + kx) for ky in range(kh) for kx in range(kw)
                     if taps[ky * kw + kx] is not None], Ho, Wo)]
    ones = not _stacked(phases, cout)
    if ones:
        _with_bias(phases, bias)
    xp = padded(x, pw, pw, ph, ph + 1, ones)  # one more zero row: the last window stays inside
    out = torch.empty((B, cout, Ho, Wo), dtype=epi.dtype, device=x.device)
    return shifted_gemm(xp, phases, cout, bias, out, epi, residual)


def axis_phases(k: int, s: int, p: int, n_out: int) -> list:
    """Per output phase r (o = s·m + r): [(kernel tap, input offset d)], outputs of the phase.
    A transposed conv sends x[i]·w[k] to o = s·i − p + k, i.e. i = m + (r + p − k)/s."""
    out = []
    for r in range(s):
        taps = [(kk, (r + p - kk) // s) for kk in range(k) if (r + p - kk) % s == 0]
        out.append((taps, max(0, -(-(n_out - r) // s))))
    return out


def conv_transpose2d(x: Tensor, tap_w: Tensor, bias: Optional[Tensor], stride: tuple[int, int],
                     padding: tuple[int, int], output_padding: tuple[int, int],
                     epi: Epilogue = ACCUMULATOR, residual: Optional[Tensor] = None) -> Tensor:
    """A transposed convolution as its s_h·s_w stride-1 phases (no col2im, no scatter buffer).

    ``tap_w`` is kh×kw×C_out×C_in (contiguous): the GEMM weight of each tap."""
    B, C, H, W_ = x.shape
    kh, kw, cout, _ = tap_w.shape
    sh, sw = stride
    Ho = (H - 1) * sh - 2 * padding[0] + kh + output_padding[0]
    Wo = (W_ - 1) * sw - 2 * padding[1] + kw + output_padding[1]
    ph_y = axis_phases(kh, sh, padding[0], Ho)
    ph_x = axis_phases(kw, sw, padding[1], Wo)
    dys = [d for taps, _ in ph_y for _, d in taps]
    dxs = [d for taps, _ in ph_x for _, d in taps]
    top, left = max(0, -min(dys, default=0)), max(0, -min(dxs, default=0))
    n_y, n_x = max(n for _, n in ph_y), max(n for _, n in ph_x)
    bottom = max(0, n_y - 1 + max(dys, default=0) - (H - 1)) + 1  # +1 row: windows stay inside
    right = max(0, n_x - 1 + max(dxs, default=0) - (W_ - 1))
    Wp = W_ + left + right
    phases = []
    for ry, (taps_y, ny) in enumerate(ph_y):
        for rx, (taps_x, nx) in enumerate(ph_x):
            if ny == 0 or nx == 0:
                continue
            taps = [(tap_w[ky, kx], (dy + top) * Wp + (dx + left))
                    for ky, dy in taps_y for kx, dx in taps_x]
            phases.append(Phase(taps, ny, nx, ry, rx, sh, sw))
    ones = not _stacked(phases, cout)
    if ones:
        _with_bias(phases, bias)
    xp = padded(x, left, right, top, bottom, ones)
    out = torch.empty((B, cout, Ho, Wo), dtype=epi.dtype, device=x.device)
    return shifted_gemm(xp, phases, cout, bias, out, epi, residual)


def pointwise(x: Tensor, w2d: Tensor, bias: Optional[Tensor], epi: Epilogue = ACCUMULATOR,
              residual: Optional[Tensor] = None) -> Tensor:
    """A 1×1 convolution as GEMMs over chunks of positions, each written straight into the
    output and finished there while in cache (a picture goes through a float64 chunk)."""
    B, C, H, W = x.shape
    N = H * W
    cout = w2d.shape[0]
    X = x.reshape(B, C, N)
    out = torch.empty((B, cout, H, W), dtype=epi.dtype, device=x.device)
    O = out.view(B, cout, N)
    R = None if residual is None else residual.reshape(B, cout, N)
    cols = min(N, max(256, 4 * CHUNK_BYTES // (8 * (C + cout))))
    direct = epi.dtype == torch.float64
    buf = None if direct else x.new_empty(cout * cols)
    bias_col = None if bias is None else bias.view(-1, 1)
    for b in range(B):
        for c0 in range(0, N, cols):
            c1 = min(N, c0 + cols)
            acc = O[b, :, c0:c1] if direct else buf[:cout * (c1 - c0)].view(cout, c1 - c0)
            if bias_col is None:
                torch.mm(w2d, X[b, :, c0:c1], out=acc)
            else:
                torch.addmm(bias_col, w2d, X[b, :, c0:c1], out=acc)
            if not direct:
                O[b, :, c0:c1] = epi.apply_(acc)
            elif epi.kind == "snap":
                acc.round_().clamp_(epi.lo, epi.hi)
                if R is not None:
                    acc.add_(R[b, :, c0:c1]).clamp_(-epi.hi, epi.hi)
    return out
