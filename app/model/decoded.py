"""An opened compressed file: its decoded picture, what its header says, how to show it (Qt-free).

A decoded file has no original unless the user names one (issue 14 item 4): the studio shows the
picture *as decoded*, scores nothing, and re-encodes nothing until "Compare against original…"
gives it the picture it was made from.  Then the file becomes pane A's encoding of that original,
scored like any other, and the other panes encode the original.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from lic_core.codecs import EncodeResult

from .encoding import Encoding, PaneSettings


@dataclass
class DecodedFile:
    """One opened compressed file."""

    path: str
    codec: str
    reconstruction: np.ndarray  # uint8 H×W×3
    data: bytes
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def bpp(self) -> float:
        h, w = self.reconstruction.shape[:2]
        return 8.0 * len(self.data) / float(h * w)

    @property
    def settings(self) -> PaneSettings:
        """The pane settings the file was encoded with (from its header)."""
        return settings_from_info(self.codec, self.info)

    def caption(self) -> str:
        return f"decoded {self.name} · {self.codec} · {self.bpp:.3f} bpp"

    def as_encoding(self, image_id: str, metrics: dict[str, float]) -> Encoding:
        """The file as an encoding of the original ``image_id`` (pane A after "Compare against")."""
        s = self.settings
        params = s.to_params()
        result = EncodeResult(data=self.data, reconstruction=self.reconstruction, bpp=self.bpp,
                              params=params, codec=self.codec,
                              file_extension=Path(self.path).suffix or ".lic",
                              timings={}, inspection=None)
        # its own cache key: a file is not "whatever encoding these settings give today"
        key = "file:" + hashlib.sha1(self.data).hexdigest()[:16]
        return Encoding(key=key, image_id=image_id, codec=self.codec, params=params,
                        result=result, metrics=dict(metrics))


def settings_from_info(codec: str, info: dict[str, Any]) -> PaneSettings:
    """Pane settings from a .lic header's fields (``services.header_info``)."""
    s = PaneSettings(codec=codec)
    rate = info.get("rate")
    if isinstance(rate, (int, float)):
        s.rate = round(float(rate), 4)
    if info.get("quantizer"):
        s.quantizer = str(info["quantizer"])
    if info.get("decoder"):
        s.decoder = str(info["decoder"])
    if s.decoder == "diffusion":
        s.diffusion_steps = int(info.get("diffusion_steps", s.diffusion_steps))
        s.seed = int(info.get("diffusion_seed", s.seed))
    return s


#: header fields that mean something only for one decoder kind
_DIFFUSION_ONLY = ("diffusion_steps", "diffusion_seed")
_LABELS = {"file": "file", "bytes": "size", "codec": "codec", "model": "model in header",
           "weights_hash": "weights hash", "decoder": "decoder", "quantizer": "quantizer",
           "quantizer_params": "quantizer parameters", "rate": "rate (slider u)",
           "height": "height", "width": "width", "padded_height": "padded height",
           "padded_width": "padded width", "diffusion_steps": "diffusion steps",
           "diffusion_seed": "diffusion seed", "lic_version": "written by LIC Studio",
           "bpp": "bits per pixel", "error": "header error",
           "finetuned_for": "g_s fine-tuned for"}
_HIDDEN = ("rate_u16", "rate u")  # the same number as "rate", shown once


def _fmt(key: str, value: Any) -> str:
    if key == "bytes" and isinstance(value, int):
        return f"{value:,} bytes"
    if key == "bpp" and isinstance(value, (int, float)):
        return f"{value:.4f}"
    if key == "rate" and isinstance(value, (int, float)):
        return f"{value:.4f}"
    if key == "file":
        return Path(str(value)).name
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(k, v)}" for k, v in value.items()) or "none"
    return str(value)


def display_rows(info: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` rows for the File info tab: rounded numbers, no fields that do not apply
    (diffusion steps and seed only for a diffusion-decoded file), the rate shown once."""
    rows = []
    diffusion = str(info.get("decoder", "")) == "diffusion"
    for key, value in info.items():
        if key in _HIDDEN or (key in _DIFFUSION_ONLY and not diffusion):
            continue
        if key == "quantizer_params" and not value:
            continue
        rows.append((_LABELS.get(key, key.replace("_", " ")), _fmt(key, value)))
    return rows


def sibling_original(path: str | Path) -> Optional[Path]:
    """An image next to the compressed file with the same stem (``photo.lic`` → ``photo.png``),
    offered first by "Compare against original…"; None when there is none."""
    p = Path(path)
    for suffix in (".png", ".PNG", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".webp"):
        q = p.with_suffix(suffix)
        if q.is_file() and q != p:
            return q
    return None
