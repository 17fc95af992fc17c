"""Exact synthesis transform g_s: ŷ_G ⊙ G' → uint8 picture, the same bytes everywhere.

Mirror of :class:`~lic_core.transform.elic.SynthesisTransform` (docs/methods.md §2.1): transposed
convs, residual bottlenecks and Cheng's attention blocks (sigmoid from :mod:`lic_core.exact.dmath`),
every layer an exact sum on the activation grid (docs/bitstream.md, "Reproducible decoding").
The picture is the exact final accumulator clamped to [0, 1], times 255, rounded half-even — the
semantics of :func:`lic_core.image.tensor.to_uint8`.

Tiles (issue 28): g_s is local, so :meth:`ExactSynthesis.run` and :meth:`~ExactSynthesis.picture`
compute the picture tile by tile over the latent grid, each tile from a window of ŷ around it
that reaches the receptive margin of every stage (:func:`lic_core.transform.tiling.input_margin`),
and crop each stage's result to the margin the next stages still need.  Outside the window the
whole-image computation adds only zero terms, so every accumulator — exact, whatever its order —
is the same number: the tiled picture is bit-identical to the untiled one, with a working set
bounded by :func:`~lic_core.transform.tiling.tile_budget` whatever the image size.  Inside a
stage, each block's output is cropped to the margin the stage's later blocks and the next stages
still read (the ring a stage's wider input window leaves is not carried through its residual and
attention blocks: 44.5 → 43.1 GFLOP at 1 MP).

Threads (issue 28 item 2): with n > 1 torch threads on the CPU the tiles run in n Python threads,
each single-threaded (:func:`lic_core.threads.single_threaded_ops`) — a tile's values are its own,
so the bytes are those of the tiles one after the other; an OpenMP team of n threads per small op
stalls whenever one of its threads waits for a core.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Optional

import numpy as np
import torch
from torch import nn

from ...exact.fixed import ExactLinear, picture_from_real, to_grid
from ...exact.gains import exact_gain
from ...exact.nets import DEFAULT_CONFIG, ExactAttentionBlock, ExactConfig, ExactResidualBottleneck
from ...threads import single_threaded_ops, use_intended_threads
from ...transform.layers import AttentionBlock, ResidualBottleneck
from ...transform.tiling import Span, input_margin, scale_factor, tile_budget, tile_for_budget


class ExactSynthesis:
    """Exact g_s of an LGEM model (or of a fine-tuned g_s + G' table).

    Built once per weights (quantization happens here); the inverse gains are cached per slider
    code."""

    def __init__(self, g_s, inv_gain, cfg: ExactConfig = DEFAULT_CONFIG, device="cpu") -> None:
        self.cfg, self.grid = cfg, cfg.grid
        self.inv_gain = inv_gain
        self.stages: list[list] = []
        for i, stage in enumerate(g_s.stages):
            mods = list(stage) if isinstance(stage, nn.Sequential) else [stage]
            ops: list = []
            for j, m in enumerate(mods):
                name = f"g_s.{i}.{j}"
                if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                    ops.append(ExactLinear(m, self.grid, cfg.max_weight_bits, name=name))
                elif isinstance(m, ResidualBottleneck):
                    ops.append(ExactResidualBottleneck(m, cfg, name))
                elif isinstance(m, AttentionBlock):
                    ops.append(ExactAttentionBlock(m, cfg, name))
                else:
                    raise NotImplementedError(f"no exact version of {type(m).__name__} in g_s")
            self.stages.append(ops)
        # tiling: up-sampling factor of each stage, the margin each stage's input needs (the last
        # entry, 0, is the picture's), and the channel widths that size a tile's working set
        self.ups: list[int] = []
        for stage in g_s.stages:
            up, down = scale_factor(stage)
            if down != 1 or up < 1:
                raise NotImplementedError("tiled g_s needs up-sampling stages")
            self.ups.append(up)
        self.margins = [0]
        for stage in reversed(list(g_s.stages)):
            self.margins.insert(0, input_margin(stage, self.margins[0]))
        # per stage, the margin (at the stage's output resolution) each op's output still needs:
        # what the stage's later ops read around the next stage's margin; None before the stage
        # has up-sampled (a crop there would be at the input resolution)
        self.op_margins: list[list] = []
        for i, stage in enumerate(g_s.stages):
            mods = list(stage) if isinstance(stage, nn.Sequential) else [stage]
            ups = [scale_factor(m)[0] for m in mods]
            out = []
            for j in range(len(mods)):
                m = self.margins[i + 1]
                for later in reversed(mods[j + 1:]):
                    m = input_margin(later, m)
                upsampled = int(np.prod(ups[:j + 1])) == self.ups[i]
                out.append(m if upsampled and j < len(mods) - 1 else None)
            self.op_margins.append(out)
        self._widths = [max([lin.out_channels for lin in self._stage_linears(ops)], default=1)
                        for ops in self.stages]
        self._gains: dict[int, torch.Tensor] = {}
        self.to(device)

    @classmethod
    def from_model(cls, model, cfg: ExactConfig = DEFAULT_CONFIG, device="cpu") -> "ExactSynthesis":
        return cls(model.g_s, model.gains.inv_gain, cfg, device)

    @property
    def ops(self) -> list:
        return [op for st in self.stages for op in st]

    def to(self, device) -> "ExactSynthesis":
        self.device = torch.device(device)
        for op in self.ops:
            op.to(device)
        self._gains = {}
        return self

    @staticmethod
    def _stage_linears(ops: list) -> list[ExactLinear]:
        out = []
        for op in ops:
            out.extend([op] if isinstance(op, ExactLinear) else op.linears())
        return out

    def linears(self) -> list[ExactLinear]:
        return self._stage_linears(self.ops)

    def tile_size(self, budget: int = 0) -> int:
        """Tile side in latents whose working set fits ``budget`` bytes (0: the configured
        :func:`~lic_core.transform.tiling.tile_budget`).

        Per latent cell of a tile's window, stage i holds about six float64 tensors of its widest
        layer at its output resolution (input, branches, padded copy, output, residual)."""
        per_cell, up = 0.0, 1
        for i, width in enumerate(self._widths):
            up *= self.ups[i]
            live = 6 if i < len(self._widths) - 1 else 2  # the last stage writes uint8 / acc
            prev = self._widths[i - 1] if i else 0
            per_cell = max(per_cell, 8.0 * up * up * (live * width + 2 * prev / self.ups[i] ** 2))
        return tile_for_budget(budget or tile_budget(), per_cell, self.margins[0], 1, smallest=4)

    def inverse_gain(self, code: int) -> torch.Tensor:
        """G' (1×M×1×1 float64 holding float32 values) at u16 slider ``code``."""
        code = int(code)
        hit = self._gains.get(code)  # one lookup: another thread may clear the cache
        if hit is None:
            if len(self._gains) > 32:
                self._gains.clear()
            hit = self._gains[code] = exact_gain(self.inv_gain, code).to(self.device)
        return hit

    def input_grid(self, y_hat_gained: torch.Tensor, code: int) -> torch.Tensor:
        """ŷ = ŷ_G ⊙ G' on the grid (one multiplication, one rounding) — g_s's input."""
        y = y_hat_gained.to(self.device, torch.float64) * self.inverse_gain(code)
        return to_grid(y, self.grid)

    def _up_to(self, level: int) -> int:
        """Pixels per latent at the input of stage ``level``."""
        up = 1
        for u in self.ups[:level]:
            up *= u
        return up

    def _window(self, core: tuple[int, int], level: int, n: int,
                margin: Optional[int] = None) -> tuple[int, int]:
        """[start, stop) at the input of stage ``level`` (n latents along the axis) for an output
        core of ``core`` picture pixels: the core's stage-``level`` positions (rounded outwards)
        and the stage's margin (or ``margin``)."""
        up = self._up_to(level)
        m = self.margins[level] if margin is None else margin
        rest = self._up_to(len(self.stages)) // up  # picture pixels per position of the level
        return max(0, core[0] // rest - m), min(n * up, -(-core[1] // rest) + m)

    def _stages(self, h: torch.Tensor, cores: tuple, windows: tuple, n: tuple, final: str,
                feats: list, region: tuple = ((0, 0), (0, 0)),
                lock: Optional[threading.Lock] = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """One tile: the stages on grid integers ``h`` (the window at level 0), each stage's input
        cropped to its window; its features (core only) written into ``feats``, which cover the
        latents [region[0][0], region[0][1]) × [region[1][0], region[1][1]) (an empty region:
        all of them).  ``cores`` are the tile's output core along each axis in picture pixels.
        Returns the last stage's output and its origin in picture pixels."""
        origin = (windows[0][0], windows[1][0])
        last = len(self.stages) - 1
        full = self._up_to(len(self.stages))
        for si, ops in enumerate(self.stages):
            (y0, y1), (x0, x1) = (self._window(c, si, k) for c, k in zip(cores, n))
            if y0 < origin[0] or x0 < origin[1] or y1 - origin[0] > h.shape[-2] \
                    or x1 - origin[1] > h.shape[-1]:
                raise AssertionError("tile window outside the computed region")
            h = h[..., y0 - origin[0]:y1 - origin[0], x0 - origin[1]:x1 - origin[1]]
            origin = (y0 * self.ups[si], x0 * self.ups[si])  # once up-sampled
            for k, op in enumerate(ops):
                is_final = si == last and k == len(ops) - 1
                if not isinstance(op, ExactLinear):
                    h = op(h)
                elif not is_final:
                    h = op.snapped(h, self.grid)
                elif final == "picture":
                    h = op.picture(h, self.grid)
                else:
                    h = op(h)
                m = self.op_margins[si][k]
                if m is not None:
                    # the later ops of the stage need only the core ± m: the ring beyond it (a
                    # wider window's, from the stage's input margin) is not computed further
                    (v0, v1), (u0, u1) = (self._window(c, si + 1, k_, m) for c, k_ in zip(cores, n))
                    if (v0, u0) != origin or (v1 - v0, u1 - u0) != tuple(h.shape[-2:]):
                        if v0 < origin[0] or u0 < origin[1] or v1 - origin[0] > h.shape[-2] \
                                or u1 - origin[1] > h.shape[-1]:
                            raise AssertionError("op window outside the computed region")
                        h = h[..., v0 - origin[0]:v1 - origin[0],
                              u0 - origin[1]:u1 - origin[1]].contiguous()
                        origin = (v0, u0)
            if si < last and feats:
                up = self._up_to(si + 1)
                (c0, c1), (d0, d1) = ((c[0] * up // full, c[1] * up // full) for c in cores)
                (e0, e1), (f0, f1) = ((lo * up, (hi if hi > lo else k) * up)
                                      for (lo, hi), k in zip(region, n))
                with lock or nullcontext():  # tiles in threads: one allocates it
                    if feats[si] is None:
                        feats[si] = h.new_empty((h.shape[0], h.shape[1], e1 - e0, f1 - f0))
                feats[si][..., c0 - e0:c1 - e0, d0 - f0:d1 - f0] = \
                    h[..., c0 - origin[0]:c1 - origin[0], d0 - origin[1]:d1 - origin[1]]
        if final == "picture" and h.dtype != torch.uint8:
            h = picture_from_real(self.real_output(h))
        return h, origin

    @staticmethod
    def max_tile_workers() -> int:
        """Most threads the tiles of one image run on: ``$LIC_TILE_WORKERS`` (1: the tiles one
        after the other, each on torch's intra-op threads), else 64."""
        from ...errors import LicError

        raw = os.environ.get("LIC_TILE_WORKERS", "").strip()
        try:
            n = int(raw) if raw else 64
        except ValueError:
            raise LicError(f"$LIC_TILE_WORKERS must be a positive integer, got {raw!r}") from None
        if n < 1:
            raise LicError(f"$LIC_TILE_WORKERS must be a positive integer, got {raw!r}")
        return n

    def _workers(self) -> int:
        """Threads the tiles run on: torch's thread count on the CPU (each tile's torch calls
        then single-threaded, :func:`lic_core.threads.single_threaded_ops`), else 1.

        Memory: a tile's working set measured about half the budget it is sized for (1 MP,
        lic-lgem-cpu: 132 MB at the 35-latent tile of the 384 MB budget; two tiles in flight
        +190 MB of peak RSS), so two tiles in flight keep to one budget; more threads share
        twice the budget (smaller tiles, more halo work).  Under a torch function mode (the
        tests' :class:`~lic_core.exact.guard.ExactOpGuard`), which sees only its own thread's
        calls, the tiles run in the calling thread."""
        if self.device.type != "cpu" or torch._C._len_torch_function_stack() > 0:
            return 1
        return max(1, min(use_intended_threads(), self.max_tile_workers()))

    def _plan(self, hl: int, wl: int, hn: int, wn: int, tile: int,
              start: tuple[int, int] = (0, 0)) -> tuple[list, list]:
        """(row spans, column spans) in latents: near-equal cores of at most ``tile`` latents a
        side (0: :meth:`tile_size`) covering the [0, hn)×[0, wn) latents the output needs, each
        window reaching the level-0 margin inside the hl×wl latent.

        Squares, not the grid of least multiply-adds: at 1 MP, 1×3 full-height tiles do 5 % fewer
        than 2×3 squares, but their bigger per-layer tensors (58 MB at the last stages, above
        glibc's 32 MB mmap threshold) came fresh from the kernel every time: 150 000 – 190 000
        page faults and 0.26 – 0.37 s of system time per decode against 40 000 – 90 000 and
        0.07 – 0.17 s, and the g_s of a decode was slower (issue 28 item 2, one decode per
        process, as the CLI runs it)."""
        t = tile if tile > 0 else self.tile_size()
        m = self.margins[0]
        (h0, w0) = start
        return (_axis(hl, hn, -(-(hn - h0) // t), m, h0),
                _axis(wl, wn, -(-(wn - w0) // t), m, w0))

    @torch.no_grad()
    def _tiled(self, y_hat_gained: torch.Tensor, code: int, tile: int, final: str,
               keep_features: bool, out: Optional[torch.Tensor] = None,
               region: Optional[tuple[tuple[int, int], tuple[int, int]]] = None
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The final accumulator ("acc") or uint8 picture ("picture") of the whole image, tile by
        tile (``tile`` latents per side, 0: sized by the memory budget); with
        ``keep_features``, the grid integers after each stage but the last.  ``out`` (B×C×H×W,
        any strides, H and W up to the padded size) receives the top-left H×W of the result
        instead of a new tensor — and only what those H×W pixels need is computed (the windows
        stop at the picture's margin, not at the padded size).  ``region`` ((R0, R1), (C0, C1)),
        picture pixels with R0, C0 multiples of the up-sampling factor: only that part of the
        picture (and of the features), the same values as there in the whole one."""
        B, _, hl, wl = y_hat_gained.shape
        inv = self.inverse_gain(code)
        feats: list = [None] * (len(self.stages) - 1) if keep_features else []
        full = self._up_to(len(self.stages))
        if region is None:
            H, W = (hl * full, wl * full) if out is None else out.shape[-2:]
            (R0, H), (C0, W) = (0, H), (0, W)
        else:
            (R0, H), (C0, W) = region
            if R0 % full or C0 % full or not (0 <= R0 < H <= hl * full and 0 <= C0 < W <= wl * full):
                raise ValueError(f"g_s region {region} not on the latent grid of the picture")
        lat = ((R0 // full, -(-H // full)), (C0 // full, -(-W // full)))
        threads = self._workers()
        if tile <= 0 and threads > 2:  # more tiles in flight than two: they share the budget
            tile = self.tile_size(tile_budget() * 2 // threads)
        rows, cols = self._plan(hl, wl, lat[0][1], lat[1][1], tile, (lat[0][0], lat[1][0]))
        tiles = [(r, c) for r in rows for c in cols]
        lock = threading.Lock()  # the first tile to finish allocates ``out`` and the features
        result = [out]

        def one(rs: Span, cs: Span) -> None:
            (r0, r1), (c0, c1) = ((c.core[0] * full, min(c.core[1] * full, n))
                                  for c, n in ((rs, H), (cs, W)))
            (a0, a1), (b0, b1) = (self._window(c, 0, k) for c, k in (((r0, r1), hl),
                                                                      ((c0, c1), wl)))
            # ŷ = ŷ_G ⊙ G' on the grid (elementwise: the window's values are the image's)
            y = y_hat_gained[..., a0:a1, b0:b1].to(self.device, torch.float64) * inv
            h, origin = self._stages(to_grid(y, self.grid), ((r0, r1), (c0, c1)),
                                     ((a0, a1), (b0, b1)), (hl, wl), final, feats,
                                     lat if region is not None else ((0, 0), (0, 0)), lock)
            del y
            with lock:
                if result[0] is None:
                    result[0] = torch.empty((B, h.shape[1], H - R0, W - C0), dtype=h.dtype,
                                            device=self.device)
            result[0][..., r0 - R0:r1 - R0, c0 - C0:c1 - C0] = \
                h[..., r0 - origin[0]:r1 - origin[0], c0 - origin[1]:c1 - origin[1]]

        workers = min(threads, len(tiles))
        if workers <= 1:
            for rs, cs in tiles:
                one(rs, cs)
        else:
            # every tile's values are its own (exact sums, any thread): the same bytes as one
            # by one; each thread runs its tiles' torch calls single-threaded
            def job(rs: Span, cs: Span) -> None:
                torch.set_num_threads(1)  # this thread's torch calls (single_threaded_ops)
                with torch.no_grad():  # grad mode is per thread
                    one(rs, cs)

            with single_threaded_ops(), ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(job, rs, cs) for rs, cs in tiles]
                try:
                    for f in futures:
                        f.result()
                except BaseException:
                    for f in futures:  # a failed tile: the ones not started never start
                        f.cancel()
                    raise
        out = result[0]
        assert out is not None
        return out, feats

    @torch.no_grad()
    def run(self, y_hat_gained: torch.Tensor, code: int, keep_features: bool = False,
            tile: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(exact final accumulator x̂·2^F (B×3×H×W float64, not clamped), grid integers after
        each up-sampling stage but the last, coarse-to-fine — empty unless ``keep_features``).

        Computed in tiles of ``tile`` latents (0: sized by the memory budget); the values do not
        depend on the tiling."""
        return self._tiled(y_hat_gained, code, tile, "acc", keep_features)

    @torch.no_grad()
    def run_region(self, y_hat_gained: torch.Tensor, code: int,
                   region: tuple[tuple[int, int], tuple[int, int]], keep_features: bool = False,
                   tile: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`run` restricted to the picture pixels ``region`` = ((R0, R1), (C0, C1)) (R0, C0
        multiples of the up-sampling factor, 16): the accumulator and features there, bit-identical
        to the same part of :meth:`run`'s (each computed from a window of ŷ with the receptive
        margin) — the diffusion decoder's tiled sampler conditions each tile on them."""
        return self._tiled(y_hat_gained, code, tile, "acc", keep_features, region=region)

    def real_output(self, acc: torch.Tensor) -> torch.Tensor:
        """x̂ (float64 real values) of the final accumulator (exact scaling)."""
        return acc * self.grid.step

    @torch.no_grad()
    def picture(self, y_hat_gained: torch.Tensor, code: int, tile: int = 0) -> torch.Tensor:
        """uint8 B×3×H×W: clamp(x̂, 0, 1)·255, rounded half-even (exact ops), in tiles of
        ``tile`` latents (0: sized by the memory budget) — the same bytes for every tiling."""
        return self._tiled(y_hat_gained, code, tile, "picture", False)[0]

    @torch.no_grad()
    def picture_hwc(self, y_hat_gained: torch.Tensor, code: int, size: tuple[int, int],
                    tile: int = 0) -> np.ndarray:
        """The picture of one image cropped to ``size`` (H, W) as an H×W×3 uint8 array, each
        tile written straight into it (no padded picture, no cropping copy: issue 28); the same
        bytes as :meth:`picture` there."""
        if y_hat_gained.shape[0] != 1:
            raise ValueError("picture_hwc decodes one image")
        arr = np.empty((int(size[0]), int(size[1]), 3), dtype=np.uint8)
        view = torch.from_numpy(arr).permute(2, 0, 1)[None]
        if self.device.type == "cpu":
            self._tiled(y_hat_gained, code, tile, "picture", False, out=view)
        else:  # a device picture is cropped on the device and copied once
            view.copy_(self.picture(y_hat_gained, code, tile)[..., :size[0], :size[1]].cpu())
        return arr


def _axis(n: int, need: int, count: int, margin: int, start: int = 0) -> list[Span]:
    """``count`` near-equal cores covering [start, need) of an axis of ``n`` latents, each window
    the core ± ``margin`` inside [0, n)."""
    count = max(1, min(count, need - start))
    cuts = [start + round(i * (need - start) / count) for i in range(count + 1)]
    return [Span((c0, c1), (max(0, c0 - margin), min(n, c1 + margin)))
            for c0, c1 in zip(cuts, cuts[1:])]
