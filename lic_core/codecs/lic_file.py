"""What every learned codec writing ``.lic`` files shares (docs/bitstream.md, docs/methods.md
§6.3–6.5).

The codec adapters (:mod:`.learned`, :mod:`.hific`) differ only in their networks; the file
geometry checks, the quantizer read from a header, progress reporting and the inspection of a
latent encoding are written once, here.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np

from ..bitstream.format import LicHeader
from ..errors import CancelledError, LicError, LicFormatError
from ..latent_codecs import LatentCoding
from ..quantizer import Quantizer, build_quantizer
from .base import Codec, Inspection, ProgressFn

#: images are padded (replicate) to a multiple of the total downsampling, 64 (g_a 16 × h_a 4)
PAD_MULTIPLE = 64


def report(progress: Optional[ProgressFn], fraction: float, message: str) -> None:
    """Call ``progress``; a callback returning False cancels (CancelledError), as raising does."""
    if progress is not None and progress(fraction, message) is False:
        raise CancelledError("cancelled")


class Timer:
    """Wall-clock seconds per phase: ``with timer("encode"): ...`` accumulates into ``timer.t``."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.t[key] = self.t.get(key, 0.0) + time.perf_counter() - t0


class LicCodec(Codec):
    """A learned codec with the rate slider u ∈ [0, 1] that writes ``.lic`` files."""

    family = "learned"
    rate_range = (0.0, 1.0)
    default_rate = 0.5
    rate_increasing = True
    file_extension = ".lic"


def check_geometry(header: LicHeader) -> tuple[int, int]:
    """z's grid ``(hz, wz)`` of a header whose padded size is the 64-grid of its image size."""
    Hp, Wp = header.padded_height, header.padded_width
    if Hp % PAD_MULTIPLE or Wp % PAD_MULTIPLE or Hp < header.height or Wp < header.width \
            or Hp - header.height >= PAD_MULTIPLE or Wp - header.width >= PAD_MULTIPLE:
        raise LicFormatError("corrupted .lic file (inconsistent image and padded sizes)")
    return Hp // PAD_MULTIPLE, Wp // PAD_MULTIPLE


def header_quantizer(header: LicHeader) -> Quantizer:
    """The quantizer a header names (a bad name or parameter is a corrupt file)."""
    try:
        return build_quantizer(header.quantizer, **header.quantizer_params)
    except LicError as exc:
        raise LicFormatError(f"corrupted .lic file ({exc})") from None


def step_progress(progress: Optional[ProgressFn], lo: float, hi: float, verb: str):
    """An ``on_step`` hook mapping the latent codec's steps onto ``[lo, hi]`` of the progress."""
    if progress is None:
        return None

    def on_step(done: int, total: int, label: str) -> None:
        report(progress, lo + (hi - lo) * done / total, f"{verb} {label}")

    return on_step


def inspection(coding: LatentCoding, channel_groups: list[int], data_len: int,
               extras: Optional[dict[str, Any]] = None) -> Inspection:
    """The studio's view of a latent encoding (first image of the batch).

    Encoded: per-element ideal bits of y and z and per-step totals; decoded: no bits (the
    decoder has the indices, not the rate model's view of them).
    """
    y = coding.y
    coded = y.bits is not None and coding.bits_z is not None
    z_bytes, y_bytes = (len(s) for s in coding.sections)
    group_bits = dict(y.step_bits)
    if coded:
        group_bits["z"] = float(coding.bits_z.sum())
    return Inspection(
        y_hat=y.y_hat_gained[0].cpu().numpy().astype(np.float32),
        means=y.means[0].cpu().numpy().astype(np.float32),
        scales=y.scales[0].cpu().numpy().astype(np.float32),
        bits_y=(y.bits[0].numpy().astype(np.float32) if coded else np.zeros(0, np.float32)),
        bits_z=(coding.bits_z.astype(np.float32) if coded else np.zeros(0, np.float32)),
        channel_groups=list(channel_groups), group_bits=group_bits,
        header_bytes=data_len - z_bytes - y_bytes, z_bytes=z_bytes, y_bytes=y_bytes,
        estimated_bits=coding.estimated_bits if coded else float("nan"),
        clamped_symbols=coding.clamped, extras=dict(extras or {}))
