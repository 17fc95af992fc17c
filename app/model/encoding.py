"""Pane settings, encodings and the result cache (Qt-free).

The cache key is ``(image id, codec, params key)``: moving a slider back to a value already
encoded is answered from memory without a worker (Squoosh's ``Compress/result-cache.ts``, but
keyed by content so reopening the same image also hits).
"""
from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from lic_core.codecs import EncodeParams, EncodeResult, Inspection
from lic_core.codecs.base import DEFAULT_DIFFUSION_STEPS


@dataclass
class PaneSettings:
    """What one compare pane asks for.

    ``target_bpp`` (when not None) replaces ``rate``: the codec's target-bpp search picks the rate.
    """

    codec: str = "jpeg"
    rate: float = 75.0
    quantizer: str = "round"
    decoder: str = "mse"
    diffusion_steps: int = DEFAULT_DIFFUSION_STEPS
    seed: int = 0
    target_bpp: Optional[float] = None

    def to_params(self) -> EncodeParams:
        return EncodeParams(rate=float(self.rate), quantizer=self.quantizer, decoder=self.decoder,
                            diffusion_steps=int(self.diffusion_steps), seed=int(self.seed))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PaneSettings":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def params_key(codec: str, params: EncodeParams, target_bpp: Optional[float] = None,
               family: str = "classical") -> str:
    """Canonical string of everything that changes the bitstream.

    Decoder choice, steps and seed only matter for learned codecs; classical keys ignore them so
    toggling a learned-only control never re-encodes a JPEG.
    """
    d: dict[str, Any] = {"codec": codec, "rate": round(float(params.rate), 6)}
    if target_bpp is not None:
        d = {"codec": codec, "target_bpp": round(float(target_bpp), 4)}
    if family == "learned":
        d.update(quantizer=params.quantizer, qp=params.quantizer_params, decoder=params.decoder)
        if params.decoder == "diffusion":
            d.update(steps=int(params.diffusion_steps), seed=int(params.seed))
    if params.extra:
        d["extra"] = params.extra
    return json.dumps(d, sort_keys=True, default=str)


@dataclass
class Encoding:
    """One finished encoding of the current image."""

    key: str
    image_id: str
    codec: str
    params: EncodeParams
    result: EncodeResult
    metrics: dict[str, float] = field(default_factory=dict)
    target_bpp: Optional[float] = None
    created: float = field(default_factory=time.time)
    elapsed: float = 0.0  # wall seconds of the worker (encode + decode + metrics)
    note: str = ""  # one line the user must see (e.g. a target bpp out of the codec's reach)

    @property
    def bpp(self) -> float:
        return float(self.result.bpp)

    @property
    def reconstruction(self):
        return self.result.reconstruction

    @property
    def inspection(self) -> Optional[Inspection]:
        return self.result.inspection

    @property
    def label(self) -> str:
        return f"{self.codec} @ {self.params.rate:g}"

    @property
    def nbytes(self) -> int:
        """Memory its arrays hold: the reconstruction, the bitstream and the inspection."""
        n = int(self.reconstruction.nbytes) + len(self.result.data)
        insp = self.inspection
        if insp is not None:
            n += sum(int(getattr(getattr(insp, k, None), "nbytes", 0))
                     for k in ("y_hat", "means", "scales", "bits_y", "bits_z"))
        return n

    def row(self) -> dict[str, Any]:
        """One row of the metrics table (CSV export); quantizer and decoder only where the codec
        has them (a JPEG has neither: blank, not "round, mse")."""
        p = self.params
        learned = codec_family(self.codec) == "learned"
        return {"codec": self.codec, "rate": p.rate,
                "quantizer": p.quantizer if learned else None,
                "decoder": p.decoder if learned else None,
                "bytes": len(self.result.data), "bpp": self.bpp,
                "psnr": self.metrics.get("psnr"), "ms_ssim": self.metrics.get("ms_ssim"),
                "lpips": self.metrics.get("lpips"),
                "encode_s": self.result.timings.get("encode"),
                "decode_s": self.result.timings.get("decode")}


#: quality metrics shown under a pane: key, label, format
_METRIC_FORMATS = (("psnr", "", "{:.2f} dB"), ("ms_ssim", "MS-SSIM ", "{:.4f}"),
                   ("lpips", "LPIPS ", "{:.3f}"))


def _min_side(metric: str) -> int:
    from lic_core.metrics import MS_SSIM_MIN_SIDE

    return {"ms_ssim": MS_SSIM_MIN_SIDE, "lpips": 31}.get(metric, 1)


def metrics_line(enc: Optional["Encoding"], image=None) -> tuple[str, str]:
    """``(text, tooltip)`` of an encoding's quality numbers for its pane: "n/a" (never "nan")
    where a metric is undefined, with the reason in the tooltip (MS-SSIM needs 161 px on the
    short side, LPIPS 31 px); a lossless result says so instead of "inf dB"."""
    if enc is None:
        return "", ""
    parts, why = [], []
    shape = None if image is None else tuple(image.shape[:2])
    for key, label, fmt in _METRIC_FORMATS:
        if key not in enc.metrics:
            continue
        v = enc.metrics[key]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            parts.append(f"{label}n/a".strip() if label else "PSNR n/a")
            side = _min_side(key)
            size = f" (this image is {shape[1]}×{shape[0]})" if shape else ""
            why.append(f"{label.strip() or 'PSNR'} n/a: it needs at least {side} px on the "
                       f"short side{size}")
        elif key == "psnr" and math.isinf(v):
            parts.append("lossless")
        else:
            parts.append(label + fmt.format(v))
    text = " · ".join(parts)
    return text, "\n".join([text] + why) if why else text


def codec_family(name: str) -> str:
    """``learned`` / ``classical`` / … of a registered codec; ``classical`` when it cannot be
    built (nothing learned-only is then claimed for it)."""
    try:
        from lic_core.codecs import get_codec

        return get_codec(name).family
    except Exception:  # noqa: BLE001 - a broken provider is treated as a plain codec
        return "classical"


#: memory the result cache may hold (a 24 MP encoding with its latents is ~0.5 GB)
CACHE_MAX_BYTES = 1536 * 1024 ** 2
#: what may stay of other images' results when a new image opens (small images reopened
#: still hit; a closed big image's results go)
OTHER_IMAGES_MAX_BYTES = 256 * 1024 ** 2


class EncodingCache:
    """LRU of :class:`Encoding` by key, bounded in count and in bytes (reconstructions and
    latents of big images are large); the newest entry always stays."""

    def __init__(self, max_items: int = 64, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: "OrderedDict[tuple[str, str], Encoding]" = OrderedDict()

    def get(self, image_id: str, key: str) -> Optional[Encoding]:
        k = (image_id, key)
        enc = self._items.get(k)
        if enc is not None:
            self._items.move_to_end(k)
        return enc

    def put(self, enc: Encoding) -> None:
        k = (enc.image_id, enc.key)
        self._items[k] = enc
        self._items.move_to_end(k)
        while len(self._items) > self.max_items or (
                len(self._items) > 1 and self.nbytes() > self.max_bytes):
            self._items.popitem(last=False)

    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._items.values())

    def trim_others(self, keep_image_id: str, max_bytes: int = OTHER_IMAGES_MAX_BYTES) -> None:
        """Results of images other than ``keep_image_id`` keep at most ``max_bytes``, the
        most recently used first: replacing or closing a big image returns its memory."""
        used = 0
        for k in reversed(list(self._items)):
            if k[0] == keep_image_id:
                continue
            used += self._items[k].nbytes
            if used > max_bytes:
                del self._items[k]

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
