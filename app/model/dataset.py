"""Dataset curves (issue 30 item 13): a codec swept over a folder of images, averaged like the
published Kodak curves, cached on disk (Qt-free; the sweep runs in a worker).

The published reference curves (``lic_core/assets/anchors``) are, at each setting of a codec's
knob, the mean bpp and the mean metric over the 24 Kodak images.  A dataset curve here is made
the same way — every image encoded at the same knob values, bpp and metrics averaged per value —
so the measured curve and the dashed published ones compare like with like (one image's curve
does not: Kodak's average is not any one photo).

A finished curve is cached as JSON under ``<config>/cache/datasets/`` keyed by the images'
names, sizes and modification times, the codec as it describes itself (weights hash, checkpoint
hashes, library versions) and its parameters: sweeping the same folder again is instant, and new
weights or another build sweep again.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from lic_core.codecs import get_codec
from lic_core.errors import CancelledError, LicError

from . import services
from .encoding import PaneSettings, codec_family, params_key
from .session import CancelToken

ProgressSink = Callable[[float, str], None]
IMAGE_GLOBS = ("*.png", "*.PNG", "*.jpg", "*.jpeg", "*.ppm", "*.bmp", "*.tif", "*.tiff")
CACHE_VERSION = 1


def list_images(folder: str | Path) -> list[Path]:
    """The images of a folder (not recursive), in name order."""
    d = Path(folder)
    if not d.is_dir():
        raise LicError(f"{d} is not a folder")
    found = sorted({p for g in IMAGE_GLOBS for p in d.glob(g) if p.is_file()})
    if not found:
        raise LicError(f"{d.name} holds no images (png, jpg, ppm, bmp, tif)")
    return found


def series_name(settings: PaneSettings) -> str:
    """The RD series of a codec's settings (learned codecs split by quantizer and decoder, as
    :meth:`SessionModel.curve_name`)."""
    if codec_family(settings.codec) == "learned":
        return f"{settings.codec} ({settings.quantizer}, {settings.decoder})"
    return settings.codec


@dataclass
class DatasetCurve:
    """Mean bpp and metrics over a folder's images at each knob value."""

    folder: str
    codec: str
    series: str
    n_images: int
    rates: list[float]
    bpp: list[float]
    metrics: dict[str, list[float]]
    cached: bool = False
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """``[kodak avg] jpeg``: the plot's series name (dataset averages are not references)."""
        return f"[{Path(self.folder).name} avg] {self.series}"

    def points(self, metric: str) -> tuple[list[float], list[float]]:
        """(bpp, values) of the finite points, sorted by bpp."""
        vals = self.metrics.get(metric, [])
        pts = sorted((b, v) for b, v in zip(self.bpp, vals)
                     if v is not None and np.isfinite(v))
        return [p[0] for p in pts], [p[1] for p in pts]


@dataclass
class DatasetRequest:
    folder: str
    settings: PaneSettings
    rates: list[float]
    metrics: tuple[str, ...] = ("psnr", "ms_ssim")
    cache_dir: Optional[str] = None
    token: CancelToken = field(default_factory=CancelToken)


def codec_identity(name: str) -> str:
    """What a codec says it is (:meth:`~lic_core.codecs.base.Codec.describe`: weights hash and
    decoders of a learned codec, checkpoint hashes of an added model, library versions of a
    classical one), canonical JSON: new weights or another build must not reuse a cached curve.
    Worker thread (a learned codec loads its weights here)."""
    try:
        desc = get_codec(name).describe()
    except Exception as exc:  # noqa: BLE001 - an unbuildable codec fails later with its reason
        desc = {"error": f"{type(exc).__name__}: {exc}"}
    return json.dumps(desc, sort_keys=True, default=str)


def cache_key(req: DatasetRequest, images: list[Path]) -> str:
    h = hashlib.sha1()
    family = codec_family(req.settings.codec)
    payload: dict[str, Any] = {
        "v": CACHE_VERSION, "metrics": sorted(req.metrics),
        "codec": codec_identity(req.settings.codec),
        "images": [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in images],
        "keys": [params_key(req.settings.codec,
                            PaneSettings(**dict(asdict(req.settings), rate=r,
                                                target_bpp=None)).to_params(), None, family)
                 for r in req.rates],
    }
    h.update(json.dumps(payload, sort_keys=True).encode())
    return h.hexdigest()[:20]


def _cache_path(req: DatasetRequest, images: list[Path]) -> Optional[Path]:
    if not req.cache_dir:
        return None
    return Path(req.cache_dir) / f"{cache_key(req, images)}.json"


def run_dataset_sweep(req: DatasetRequest, sink: Optional[ProgressSink] = None) -> DatasetCurve:
    """Encode every image of the folder at every rate, average per rate (worker thread).

    Progress is counted in encodes; the request's token cancels between (and, through the
    codec's progress callback, inside) encodes.  A cached curve returns at once."""
    t0 = time.perf_counter()

    def check(f: float, msg: str) -> None:
        if req.token.cancelled:
            raise CancelledError("cancelled")
        if sink is not None:
            sink(f, msg)

    images = list_images(req.folder)
    check(0.0, f"{len(images)} images")
    path = _cache_path(req, images)
    if path is not None and path.is_file():
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            curve = DatasetCurve(**{k: v for k, v in d.items() if k != "cached"})
            curve.cached = True
            check(1.0, "cached")
            return curve
        except (OSError, ValueError, TypeError):
            pass  # a damaged cache entry is recomputed
    codec = get_codec(req.settings.codec)
    ok, why = codec.available()
    if not ok:
        raise LicError(f"{req.settings.codec}: {why}")
    total = len(images) * len(req.rates)
    done = 0
    sums_bpp = np.zeros(len(req.rates))
    sums = {m: np.zeros(len(req.rates)) for m in req.metrics}
    counts = {m: np.zeros(len(req.rates)) for m in req.metrics}
    for p in images:
        image = services.load_image(p)
        services.check_image_size(image, p.name)
        for k, rate in enumerate(req.rates):
            check(done / total, f"{p.name} @ {rate:g} ({done + 1}/{total})")

            def inner(f: float, msg: str = "", _d=done) -> None:
                check((_d + 0.9 * float(f)) / total, msg)

            s = PaneSettings(**dict(asdict(req.settings), rate=rate, target_bpp=None))
            res = codec.encode(image, s.to_params(), inner)
            sums_bpp[k] += res.bpp
            got = services.compute_metrics(image, res.reconstruction, req.metrics)
            for m in req.metrics:
                v = got.get(m)
                if v is not None and np.isfinite(v):
                    sums[m][k] += v
                    counts[m][k] += 1
            done += 1
    n = len(images)
    curve = DatasetCurve(
        folder=str(Path(req.folder).resolve()), codec=req.settings.codec,
        series=series_name(req.settings), n_images=n, rates=list(req.rates),
        bpp=[float(v) for v in sums_bpp / n],
        metrics={m: [float(sums[m][k] / counts[m][k]) if counts[m][k] == n else float("nan")
                     for k in range(len(req.rates))] for m in req.metrics},
        seconds=time.perf_counter() - t0)
    if path is not None:
        from .export import atomic_write_bytes

        try:
            atomic_write_bytes(path, json.dumps(asdict(curve)).encode("utf-8"), overwrite=True)
        except LicError:
            pass  # no cache: the next sweep recomputes, nothing is lost
    check(1.0, "done")
    return curve


def dataset_cache_dir() -> Path:
    """Where finished dataset curves are kept (``<config>/cache/datasets``)."""
    from lic_core.paths import config_dir

    return config_dir() / "cache" / "datasets"
