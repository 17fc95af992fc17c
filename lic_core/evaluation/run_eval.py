"""``lic eval``: rate-distortion evaluation of any registered codec over a folder of images.

For every (image, codec, rate point) it encodes through the common codec interface, measures
bpp from the real byte count, distortion with :func:`lic_core.metrics.compute_metrics`, and the
encode/decode times, then writes one JSON per codec in CompressAI's results format (the layout
of ``compressai/results/image/kodak/*.json``: means over images per rate point, PSNR averaged in
dB per image as CompressAI does) plus a ``per_image`` section.

Every finished point is cached as a small JSON under ``OUT/.cache/`` keyed by a hash of the image
file bytes, the codec (and its description), the rate point and the encode parameters, so an
interrupted or extended run redoes only what is missing.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..codecs.base import Codec, EncodeParams
from ..codecs.registry import get_codec
from ..errors import CodecUnavailableError, LicError
from ..fileio import write_bytes_atomic
from .anchors import RESULT_KEYS, normalize_metric
from .target_bpp import encode_at_target_bpp

CACHE_VERSION = 1
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")

#: default knob values per classical codec, chosen to span ≈0.1–2 bpp on Kodak (measured with
#: Pillow 13: JPEG 4:2:0 q5 ≈ 0.23 bpp … q90 ≈ 2.5 bpp; libjpeg cannot go much below 0.2).
DEFAULT_RATES: dict[str, list[float]] = {
    "jpeg": [5, 10, 15, 20, 30, 40, 50, 65, 80, 90],
    "jpeg-444": [5, 10, 15, 20, 30, 40, 50, 65, 80, 90],
    "webp": [0, 5, 10, 20, 30, 45, 60, 75, 85, 90],
    "avif": [5, 15, 25, 35, 45, 55, 62, 70, 78],
    "jxl": [0, 10, 20, 35, 50, 65, 75, 82, 88],
    "j2k": [20, 26, 32, 38, 44, 50, 55, 60, 64],
    # libheif quality: x265 CRF = (100 - q) // 2, so even q only (45, 42, ... 21)
    "hevc": [10, 16, 22, 28, 34, 40, 46, 52, 58],
}
LEARNED_DEFAULT_POINTS = 6


def default_rates(codec: Codec) -> list[float]:
    """Default rate points: the table above, else 6 evenly spaced knob values (learned: u)."""
    if codec.name in DEFAULT_RATES:
        return [float(r) for r in DEFAULT_RATES[codec.name]]
    lo, hi = codec.rate_range
    if getattr(codec, "integer_rate", False) and hi - lo + 1 <= 2 * LEARNED_DEFAULT_POINTS:
        # a few discrete points (an added model's checkpoints): each once
        return [float(v) for v in range(int(math.ceil(lo)), int(math.floor(hi)) + 1)]
    return [float(v) for v in np.linspace(lo, hi, LEARNED_DEFAULT_POINTS)]


def list_images(folder: Union[str, Path], limit: Optional[int] = None) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (first ``limit`` of them)."""
    d = Path(folder)
    if not d.is_dir():
        raise LicError(f"image folder not found: {d}")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                   and p.is_file())
    if limit is not None:
        files = files[:max(0, int(limit))]
    if not files:
        raise LicError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {d}")
    return files


def load_rgb(path: Path) -> np.ndarray:
    """The studio's loading rules (EXIF orientation, alpha on white, 16-bit scaling...)."""
    from ..image.io import load_image

    return load_image(path)


def compute_point_metrics(orig: np.ndarray, recon: np.ndarray,
                          metrics: Sequence[str]) -> dict[str, float]:
    """Distortions of one reconstruction, keyed like CompressAI results (``psnr-rgb`` ...)."""
    from ..metrics import compute_metrics  # lazy: LPIPS pulls in torch weights

    out = compute_metrics(orig, recon, which=tuple(metrics))
    return {RESULT_KEYS[m]: float(out[m.replace("-", "_")]) for m in metrics}


# ----------------------------------------------------------------------------- cache

def _params_dict(p: EncodeParams) -> dict:
    d = asdict(p)
    d.pop("rate", None)
    return d


def _cache_key(image_sha: str, codec: Codec, point: dict, params: EncodeParams) -> str:
    try:
        desc = codec.describe()
    except Exception:  # describe() is informative only; never let it break evaluation
        desc = {"name": codec.name}
    blob = json.dumps({"v": CACHE_VERSION, "image": image_sha, "codec": codec.name,
                       "describe": desc, "point": point, "params": _params_dict(params)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _atomic_write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2) + "\n"
    write_bytes_atomic(path, text.encode(), overwrite=True)


def _cache_path(cache_dir: Path, codec_name: str, key: str) -> Path:
    return cache_dir / codec_name / f"{key}.json"


def _read_cache(path: Path, metrics: Sequence[str]) -> Optional[dict]:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if all(RESULT_KEYS[m] in rec for m in metrics):
        return rec
    return None


# ----------------------------------------------------------------------------- one point

def evaluate_point(codec_name: str, image_path: str, point: dict, params: EncodeParams,
                   metrics: Sequence[str]) -> dict:
    """Encode one image at one rate point and measure it (runs in a worker process too)."""
    codec = get_codec(codec_name)
    image = load_rgb(Path(image_path))
    if "target_bpp" in point:
        res, reached = encode_at_target_bpp(codec, image, float(point["target_bpp"]), params)
    else:
        res = codec.encode(image, EncodeParams(**{**asdict(params), "rate": point["rate"]}))
    t_enc = float(res.timings.get("encode", float("nan")))
    t_dec = res.timings.get("decode")
    if t_dec is None:  # codec did not time its own decode: decode the bytes once to time it
        t0 = time.perf_counter()
        codec.decode(res.data)
        t_dec = time.perf_counter() - t0
    rec = {"image": Path(image_path).name, "rate": float(res.params.rate), "bpp": float(res.bpp),
           "bytes": len(res.data), "encoding_time": t_enc, "decoding_time": float(t_dec)}
    if "target_bpp" in point:
        rec["target_bpp"] = float(point["target_bpp"])
    rec.update(compute_point_metrics(image, res.reconstruction, metrics))
    return rec


def _worker_init() -> None:
    try:  # one thread per worker: the pool itself is the parallelism
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _worker(args: tuple) -> dict:
    return evaluate_point(*args)


# ----------------------------------------------------------------------------- progress

class TextProgress:
    """A dependency-free progress bar on stderr (``\\r``-updated on a terminal, else a line
    every 10 %)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self._last_decile = -1

    def update(self, n: int = 1, msg: str = "") -> None:
        self.done += n
        frac = self.done / self.total
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / frac * (1 - frac) if frac > 0 else 0.0
        fill = int(round(frac * self.width))
        line = (f"[{'#' * fill}{'.' * (self.width - fill)}] {self.done}/{self.total} "
                f"{elapsed:5.0f}s eta {eta:4.0f}s {msg}")
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            decile = int(frac * 10)
            if decile != self._last_decile or self.done >= self.total:
                self._last_decile = decile
                self.stream.write(line + "\n")
        self.stream.flush()


# ----------------------------------------------------------------------------- aggregation

def aggregate(codec: Codec, records: dict[tuple[str, int], dict], images: list[str],
              points: list[dict], metrics: Sequence[str], description: str = "") -> dict:
    """CompressAI-format dict: per point the mean over images, plus ``per_image`` lists."""
    keys = ["bpp"] + [RESULT_KEYS[m] for m in metrics] + ["encoding_time", "decoding_time"]
    results: dict[str, list] = {k: [] for k in keys}
    results["rate"] = []
    mode_target = bool(points) and "target_bpp" in points[0]
    if mode_target:
        results["target_bpp"] = [p["target_bpp"] for p in points]
    for j, _ in enumerate(points):
        recs = [records[(img, j)] for img in images]
        for k in keys:
            results[k].append(float(np.mean([r[k] for r in recs])))
        results["rate"].append(float(np.mean([r["rate"] for r in recs])))
    per_image = {img: {k: [records[(img, j)][k] for j in range(len(points))]
                       for k in keys + ["rate"]} for img in images}
    try:
        desc = codec.describe()
    except Exception:
        desc = {"name": codec.name}
    return {
        "name": codec.name,
        "description": description or str(desc.get("label") or codec.name),
        "meta": {"kind": "ours", "family": codec.family, "codec": desc,
                 "images": len(images), "metrics": list(metrics),
                 "mode": "target-bpp" if mode_target else "rate",
                 "rate_label": codec.rate_label,
                 "note": "means over images per point; times in seconds per image"},
        "results": results,
        "per_image": per_image,
    }


# ----------------------------------------------------------------------------- driver

def run_eval(folder: Union[str, Path], codecs: Sequence[str], out_dir: Union[str, Path],
             rates: Optional[dict[str, list[float]]] = None,
             target_bpp: Optional[Sequence[float]] = None,
             metrics: Sequence[str] = ("psnr", "ms-ssim"), jobs: int = 1,
             limit: Optional[int] = None, params: Optional[EncodeParams] = None,
             use_cache: bool = True, progress: Union[bool, Callable[[int, str], None]] = True,
             ) -> dict[str, Path]:
    """Evaluate ``codecs`` on the images of ``folder``; returns ``{codec: written JSON path}``.

    ``rates`` maps codec name (or ``"*"`` for all) to knob values (default
    :func:`default_rates`); ``target_bpp`` switches to the target-bpp search instead (files
    are then named ``<codec>-target.json``).  ``jobs`` > 1 runs classical codecs in a process
    pool; learned codecs always run in this process (one model in memory).
    """
    metrics = [normalize_metric(m) for m in metrics]
    images = list_images(folder, limit)
    codec_objs: list[Codec] = []
    for name in codecs:
        c = get_codec(name)  # ModelNotFoundError (LicError) for unknown names
        ok, why = c.available()
        if not ok:
            raise CodecUnavailableError(f"codec '{name}' is unavailable: {why}")
        codec_objs.append(c)
    out = Path(out_dir)
    cache_dir = out / ".cache"
    base_params = params or EncodeParams(rate=0.0)
    shas = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images}

    plan: list[tuple[Codec, list[dict]]] = []
    for c in codec_objs:
        if target_bpp:
            pts = [{"target_bpp": float(t)} for t in target_bpp]
        else:
            r = (rates or {}).get(c.name, (rates or {}).get("*")) or default_rates(c)
            pts = [{"rate": float(v)} for v in r]
        plan.append((c, pts))

    total = sum(len(pts) * len(images) for _, pts in plan)
    if progress is True:
        bar = TextProgress(total)
        tick: Callable[[int, str], None] = lambda n, msg: bar.update(n, msg)
    elif callable(progress):
        tick = progress
    else:
        tick = lambda n, msg: None

    # Gather work; cached points are counted immediately.
    records: dict[str, dict[tuple[str, int], dict]] = {c.name: {} for c, _ in plan}
    todo: list[tuple[Codec, str, int, dict, Path]] = []
    for c, pts in plan:
        for img in images:
            for j, pt in enumerate(pts):
                cpath = _cache_path(cache_dir, c.name,
                                    _cache_key(shas[img.name], c, pt, base_params))
                rec = _read_cache(cpath, metrics) if use_cache else None
                if rec is not None:
                    records[c.name][(img.name, j)] = rec
                    tick(1, f"{c.name} {img.name} (cached)")
                else:
                    todo.append((c, str(img), j, pt, cpath))

    def finish(item, rec):
        c, img, j, pt, cpath = item
        records[c.name][(Path(img).name, j)] = rec
        _atomic_write_json(cpath, rec)
        tick(1, f"{c.name} {Path(img).name} {'%.3f' % rec['bpp']} bpp")

    pooled = [t for t in todo if jobs > 1 and t[0].family == "classical"]
    local = [t for t in todo if not (jobs > 1 and t[0].family == "classical")]
    if pooled:  # before any in-process torch work, so forking is safe
        import multiprocessing as mp

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                 initializer=_worker_init) as ex:
            futs = [(t, ex.submit(_worker, (t[0].name, t[1], t[3], base_params, metrics)))
                    for t in pooled]
            for t, f in futs:
                finish(t, f.result())
    for t in local:
        finish(t, evaluate_point(t[0].name, t[1], t[3], base_params, metrics))

    written: dict[str, Path] = {}
    names = [p.name for p in images]
    for c, pts in plan:
        doc = aggregate(c, records[c.name], names, pts, metrics)
        doc["meta"]["folder"] = str(Path(folder))
        fname = f"{c.name}-target.json" if target_bpp else f"{c.name}.json"
        path = out / fname
        _atomic_write_json(path, doc)
        written[c.name] = path
    return written
