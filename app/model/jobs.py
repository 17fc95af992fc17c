"""The work a worker thread does, as plain functions (Qt-free, testable without a GUI).

Cancellation follows the codec contract (lic_core/codecs/base.py): the progress callback raises
:class:`lic_core.errors.CancelledError` once the request's token is cancelled.  We also check the
token between stages, because classical codecs report progress only twice.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from lic_core.codecs import DecodeResult, get_codec
from lic_core.errors import CancelledError, CodecUnavailableError

from . import services
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
    if request.target_bpp is not None:
        result = services.encode_at_target(codec, request.image, request.params,
                                           request.target_bpp, progress)
    else:
        result = codec.encode(request.image, request.params, progress)
    progress(0.9, "metrics")
    metrics = services.compute_metrics(request.image, result.reconstruction, request.metrics)
    progress(1.0, "done")
    return Encoding(key=request.key, image_id=request.image_id, codec=request.codec,
                    params=result.params, result=result, metrics=metrics,
                    target_bpp=request.target_bpp, elapsed=time.perf_counter() - t0)


def run_decode_file(path: str | Path, token: Optional[CancelToken] = None,
                    sink: Optional[ProgressSink] = None) -> tuple[str, DecodeResult, dict]:
    """Decode a compressed file (.lic or a classical one): (codec name, result, header info)."""
    data = Path(path).read_bytes()
    name = services.codec_from_file(data, path)
    progress = _progress_fn(token or CancelToken(), sink)
    progress(0.0, "decoding")
    res = get_codec(name).decode(data, progress)
    info = {"file": str(path), "bytes": len(data), "codec": name}
    info.update(services.header_info(data) if data[:3] == b"LIC" or str(path).endswith(".lic")
                else {})
    info.update({k: v for k, v in (res.info or {}).items() if k not in info})
    return name, res, info
