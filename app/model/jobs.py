"""The work a worker thread does, as plain functions (Qt-free, testable without a GUI).

Cancellation follows the codec contract (lic_core/codecs/base.py): the progress callback raises
:class:`lic_core.errors.CancelledError` once the request's token is cancelled.  We also check the
token between stages, because classical codecs report progress only twice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from lic_core.codecs import DecodeResult, get_codec
from lic_core.errors import CancelledError, CodecUnavailableError

from . import display, inspect_jobs, memory, services
from .decoded import DecodedFile
from .encoding import Encoding
from .session import CancelToken, EncodeRequest

ProgressSink = Callable[[float, str], None]


def _progress_fn(token: CancelToken, sink: Optional[ProgressSink]) -> Callable[[float, str], None]:
    def progress(fraction: float, message: str = "") -> None:
        if token.cancelled:
            raise CancelledError("cancelled")
        if sink is not None:
            sink(float(fraction), str(message))

    return progress


def run_encode(request: EncodeRequest, sink: Optional[ProgressSink] = None) -> Encoding:
    """Encode, decode (inside the codec) and measure one request.  Runs in a worker thread."""
    t0 = time.perf_counter()
    token = request.token
    progress = _progress_fn(token, sink)
    progress(0.0, "starting")
    codec = get_codec(request.codec)
    ok, why = codec.available()
    if not ok:
        raise CodecUnavailableError(f"{request.codec}: {why}")
    note = ""
    if request.target_bpp is not None:
        result = services.encode_at_target(codec, request.image, request.params,
                                           request.target_bpp, progress)
        note = target_note(codec, request.target_bpp, result.bpp, result.params.rate)
    else:
        result = codec.encode(request.image, request.params, progress)
    progress(0.9, "metrics")
    metrics = services.compute_metrics(request.image, result.reconstruction, request.metrics)
    progress(0.97, "preview")
    display.prepare(result.reconstruction)  # the GUI thread shows it at display resolution
    inspect_jobs.prepare(result.inspection)  # and reads the latents' sums, never makes them
    progress(1.0, "done")
    return Encoding(key=request.key, image_id=request.image_id, codec=request.codec,
                    params=result.params, result=result, metrics=metrics,
                    target_bpp=request.target_bpp, elapsed=time.perf_counter() - t0, note=note)


#: relative bpp miss above which a target-bpp encode says it did not reach its target
TARGET_TOLERANCE = 0.05


def target_note(codec, target: float, reached: float, rate: float) -> str:
    """One line when a target bpp was missed (issue 14 item 7), "" when it was met.

    The search returns the closest point it found; at an end of the rate knob that means the
    codec cannot go further on this image, which the user must be told in so many words.
    """
    if abs(reached - target) <= TARGET_TOLERANCE * target:
        return ""
    lo, hi = (float(v) for v in codec.rate_range)
    increasing = getattr(codec, "rate_increasing", True)
    top = hi if increasing else lo
    bottom = lo if increasing else hi
    knob = getattr(codec, "rate_label", "rate")
    if reached < target and abs(rate - top) < 1e-6:
        return (f"{target:.2f} bpp is out of reach: {codec.name}'s maximum on this image is "
                f"{reached:.3f} bpp ({knob} {rate:g})")
    if reached > target and abs(rate - bottom) < 1e-6:
        return (f"{target:.2f} bpp is out of reach: {codec.name}'s minimum on this image is "
                f"{reached:.3f} bpp ({knob} {rate:g})")
    return f"target {target:.2f} bpp not met: closest reachable is {reached:.3f} bpp"


@dataclass
class LoadedImage:
    """A picture a worker read and made ready to show: its content id and preview are
    computed, and ``warning`` says (in one line) when its codecs may not fit in memory."""

    path: str
    image: np.ndarray
    image_id: str
    warning: str = ""


def run_load_image(path: str | Path, token: Optional[CancelToken] = None,
                   sink: Optional[ProgressSink] = None,
                   families: tuple[str, ...] = ("classical", "classical"),
                   ms_ssim: bool = True,
                   check: Optional[Callable[[np.ndarray], None]] = None) -> LoadedImage:
    """Read an image file for the studio (worker thread): refuse it in one line before
    decoding when the machine cannot hold it (:func:`memory.check`), decode, hash and make its
    preview.  ``check`` may refuse the decoded picture (e.g. not the opened file's original)."""
    progress = _progress_fn(token or CancelToken(), sink)
    name = Path(path).name
    progress(0.0, f"reading {name}")
    size = memory.image_size(path)
    warning = memory.check(*size, families, name, ms_ssim) if size else ""
    image = services.load_image(path)
    services.check_image_size(image, name)
    if check is not None:
        check(image)
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    progress(0.6, "hashing")
    image_id = services.image_id(image)
    progress(0.8, "preview")
    display.prepare(image)
    progress(1.0, "done")
    return LoadedImage(str(path), image, image_id, warning)


def run_decode_file(path: str | Path, token: Optional[CancelToken] = None,
                    sink: Optional[ProgressSink] = None, data: Optional[bytes] = None
                    ) -> tuple[str, DecodeResult, dict]:
    """Decode a compressed file (.lic or a classical one): (codec name, result, header info)."""
    data = Path(path).read_bytes() if data is None else data
    name = services.codec_from_file(data, path)
    progress = _progress_fn(token or CancelToken(), sink)
    progress(0.0, "decoding")
    res = get_codec(name).decode(data, progress)
    info = {"file": str(path), "bytes": len(data), "codec": name}
    info.update(services.header_info(data) if data[:3] == b"LIC" or str(path).endswith(".lic")
                else {})
    info.update({k: v for k, v in (res.info or {}).items() if k not in info})
    return name, res, info


def run_open_compressed(path: str | Path, token: Optional[CancelToken] = None,
                        sink: Optional[ProgressSink] = None) -> DecodedFile:
    """Decode a compressed file into a :class:`DecodedFile` (shown as decoded, no original)."""
    data = Path(path).read_bytes()
    name, res, info = run_decode_file(path, token, sink, data)
    display.prepare(res.reconstruction)
    return DecodedFile(path=str(path), codec=name, reconstruction=res.reconstruction, data=data,
                       info=info)


def run_score_decoded(decoded: DecodedFile, original: np.ndarray, image_id: str,
                      which: tuple[str, ...] = ("psnr", "ms_ssim")) -> Encoding:
    """Metrics of a decoded file against the original the user named (worker thread)."""
    metrics = services.compute_metrics(original, decoded.reconstruction, which)
    return decoded.as_encoding(image_id, metrics)


@dataclass
class ScoreRequest:
    """Score results that already exist with more metrics (LPIPS turned on after they ran)."""

    image: np.ndarray
    image_id: str
    encodings: list[Encoding]
    metrics: tuple[str, ...]
    token: CancelToken = field(default_factory=CancelToken)
    #: the metrics each encoding lacks (same order as ``encodings``); None = all of ``metrics``
    wanted: Optional[list[tuple[str, ...]]] = None


def run_scores(request: ScoreRequest, sink: Optional[ProgressSink] = None
               ) -> list[tuple[Encoding, dict[str, float]]]:
    """``[(encoding, {metric: value})]`` for every encoding of the request (worker thread);
    the encodings are not touched here (the GUI thread adds the scores)."""
    progress = _progress_fn(request.token, sink)
    n = max(1, len(request.encodings))
    wanted = request.wanted or [request.metrics] * len(request.encodings)
    out = []
    for k, (enc, which) in enumerate(zip(request.encodings, wanted)):
        progress(k / n, f"scoring {', '.join(which)} {k + 1}/{n}")
        if enc.reconstruction.shape != request.image.shape:
            continue
        out.append((enc, services.compute_metrics(request.image, enc.reconstruction, which)))
    progress(1.0, "done")
    return out
