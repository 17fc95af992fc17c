"""RD curves: published anchors (``lic_core/assets/anchors/``), reference curves measured here
(``lic_core/assets/measured/``) and our ``lic eval`` results.

Both are stored in CompressAI's results format (``{"name", "description", "results": {"bpp",
"psnr-rgb", "ms-ssim-rgb", ...}}``); :class:`Curve` is the in-memory form the GUI and
``lic plot`` use.  Metric names inside lic_core are ``"psnr"``, ``"ms-ssim"``, ``"lpips"``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from .. import paths
from ..errors import LicError

METRICS = ("psnr", "ms-ssim", "lpips")
#: metric name → key in CompressAI-format result files
RESULT_KEYS = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb", "lpips": "lpips"}
#: True when a larger value is better
HIGHER_IS_BETTER = {"psnr": True, "ms-ssim": True, "lpips": False}


@dataclass
class Curve:
    """One rate-distortion curve, points sorted by bpp."""

    name: str
    bpp: list[float]
    values: dict[str, list[float]]  # metric ("psnr" | "ms-ssim" | "lpips") → one value per point
    source: str = ""  # file (and commit) the numbers came from
    kind: str = "ours"  # "anchor" (published) | "ours" (measured by lic eval)
    family: str = ""  # "classical" | "learned" | "generative" | ""
    dataset: str = ""
    extra: dict = field(default_factory=dict)  # e.g. "encoding_time", "rate" lists

    def has(self, metric: str) -> bool:
        return metric in self.values and len(self.values[metric]) == len(self.bpp)

    def points(self, metric: str) -> tuple[list[float], list[float]]:
        """(bpp, value) lists for ``metric``; raises LicError when the curve lacks it."""
        if not self.has(metric):
            raise LicError(f"curve '{self.name}' has no {metric} values")
        return list(self.bpp), list(self.values[metric])


def normalize_metric(metric: str) -> str:
    m = metric.lower().replace("_", "-")
    m = {"ms-ssim-rgb": "ms-ssim", "msssim": "ms-ssim", "psnr-rgb": "psnr"}.get(m, m)
    if m not in METRICS:
        raise LicError(f"unknown metric '{metric}' (choose from {', '.join(METRICS)})")
    return m


def curve_from_dict(d: dict, source: str = "", kind: Optional[str] = None) -> Curve:
    """Build a :class:`Curve` from a CompressAI-format dict (ours or published)."""
    try:
        res = d["results"]
        bpp = [float(v) for v in res["bpp"]]
    except (KeyError, TypeError, ValueError):
        raise LicError(f"{source or 'results'}: not a CompressAI-format RD file "
                       "(needs results.bpp)") from None
    values: dict[str, list[float]] = {}
    for metric, key in RESULT_KEYS.items():
        if isinstance(res.get(key), list) and len(res[key]) == len(bpp):
            values[metric] = [float(v) for v in res[key]]
    if "ms-ssim" not in values and isinstance(res.get("ms-ssim-db-rgb"), list):
        values["ms-ssim"] = [1.0 - 10.0 ** (-float(v) / 10.0) for v in res["ms-ssim-db-rgb"]]
    extra = {k: res[k] for k in ("encoding_time", "decoding_time", "rate", "target_bpp")
             if isinstance(res.get(k), list) and len(res[k]) == len(bpp)}
    order = sorted(range(len(bpp)), key=lambda i: bpp[i])
    meta = d.get("meta") or {}
    return Curve(
        name=str(d.get("name", Path(source).stem if source else "curve")),
        bpp=[bpp[i] for i in order],
        values={m: [v[i] for i in order] for m, v in values.items()},
        source=str(d.get("source", source)),
        kind=kind or str(meta.get("kind", "ours")),
        family=str(meta.get("family", "")),
        dataset=str(meta.get("dataset", "")),
        extra={k: [v[i] for i in order] for k, v in extra.items()})


def load_curve(path: Union[str, Path], kind: Optional[str] = None) -> Curve:
    """Read one CompressAI-format JSON file (e.g. written by ``lic eval``)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise LicError(f"no such results file: {p}") from None
    except (OSError, ValueError) as exc:
        raise LicError(f"cannot read {p}: {exc}") from None
    return curve_from_dict(d, source=str(p), kind=kind)


def anchors_dir() -> Path:
    """``$LIC_ANCHORS_DIR`` or the anchors shipped with the package (:mod:`lic_core.paths`)."""
    env = os.environ.get("LIC_ANCHORS_DIR")
    if env:
        return Path(env)
    return paths.anchors_dir()


def list_anchor_datasets() -> list[str]:
    d = anchors_dir()
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def load_anchors(dataset: str = "kodak", metric: str = "psnr",
                 names: Optional[list[str]] = None) -> list[Curve]:
    """Published reference curves of ``dataset`` that report ``metric`` (see
    ``lic_core/assets/anchors/README.md`` for provenance).  ``names`` filters by file stem
    (e.g. ``["jpeg", "webp", "vtm"]``).  Raises LicError for an unknown dataset."""
    metric = normalize_metric(metric)
    d = anchors_dir() / dataset
    if not d.is_dir():
        known = ", ".join(list_anchor_datasets()) or "none"
        raise LicError(f"no anchors for dataset '{dataset}' (known: {known})")
    stems = None if names is None else {n.lower() for n in names}
    curves = []
    for p in sorted(d.glob("*.json")):
        if stems is not None and p.stem.lower() not in stems:
            continue
        c = load_curve(p, kind="anchor")
        c.extra.setdefault("id", p.stem)
        if c.has(metric):
            curves.append(c)
    return curves


def measured_dir() -> Path:
    """Reference curves LIC Studio measured itself and ships (``<dataset>/<codec>.json``): the
    ``lic eval`` curve of a codec whose published curve was made with other settings or builds
    (``hevc``: BPG's encoder x265 through pillow-heif; ``measured/README.md``)."""
    return paths.resources_dir() / "measured"


def load_measured(dataset: str = "kodak", metric: str = "psnr") -> list[Curve]:
    """The shipped measured reference curves of ``dataset`` that report ``metric`` (kind
    ``"measured"``, ``extra["id"]`` = file stem); [] when there are none."""
    metric = normalize_metric(metric)
    d = measured_dir() / dataset
    curves = []
    for p in sorted(d.glob("*.json")) if d.is_dir() else ():
        c = load_curve(p, kind="measured")
        c.extra.setdefault("id", p.stem)
        if c.has(metric):
            curves.append(c)
    return curves
