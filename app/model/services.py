"""Adapters between the studio and ``lic_core`` (Qt-free).

The studio must not re-implement codec or metric logic (ARCHITECTURE.md): every call into
lic_core goes through one function here, so views and jobs share one error policy.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from lic_core import paths
from lic_core.bitstream import MAGIC, peek_header
from lic_core.codecs import (
    Codec,
    EncodeParams,
    EncodeResult,
    best_first,
    codec_for_file,
    get_codec,
    list_codecs,
)
from lic_core.errors import LicError
from lic_core.evaluation.anchors import load_anchors, load_measured
from lic_core.evaluation.bdrate import bd_rate as core_bd_rate
from lic_core.evaluation.target_bpp import encode_at_target_bpp
from lic_core.image import load_image as core_load_image
from lic_core.image import sample_image_path as core_sample_image_path
from lic_core.metrics import compute_metrics as core_compute_metrics

from .encoding import codec_family

#: file suffixes the Open dialog offers as images (anything Pillow reads also works)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".avif", ".jxl", ".jp2", ".j2k", ".bmp",
                  ".tif", ".tiff", ".ppm", ".pgm")


# ---------------------------------------------------------------------------- images

def load_image(path: str | Path) -> np.ndarray:
    """An ``H×W×3`` uint8 RGB array: the one loader of CLI, eval and GUI
    (:func:`lic_core.image.load_image`; one-line :class:`ImageError` for unreadable files)."""
    return core_load_image(path)


#: the smallest picture the studio compares: one 16×16 latent position of the learned codecs
#: (below it every codec's file is mostly header, e.g. a 1×1 JPEG is "1784 bpp")
MIN_IMAGE_SIDE = 16


def check_image_size(image: np.ndarray, name: str = "the image") -> None:
    """One-line :class:`LicError` for a picture below :data:`MIN_IMAGE_SIDE` on a side."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise LicError(f"{name} is {w}×{h} pixels: the studio needs at least "
                       f"{MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE} (a codec's header alone would be "
                       "most of its bits)")


def image_id(image: np.ndarray) -> str:
    """Content hash identifying an image in the result cache (path-independent)."""
    h = hashlib.sha1()
    h.update(str(image.shape).encode())
    # the array's own bytes, not a ``tobytes()`` copy: the copy holds the GIL (~0.1 s at
    # 24 MP, a stall of the window), hashlib reads a buffer without it (same hash)
    h.update(memoryview(np.ascontiguousarray(image)).cast("B"))
    return h.hexdigest()[:16]


def sample_image_path() -> Optional[Path]:
    """The bundled sample image (None if this install lacks it: the menu then says so)."""
    try:
        return core_sample_image_path()
    except LicError:
        return None


def kodak_dir() -> Optional[Path]:
    """``<shared>/data/kodak`` (``$LIC_SHARED_DIR`` or ``../shared``; team machines and CI)."""
    shared = paths.shared_dir()
    d = shared / "data" / "kodak" if shared is not None else None
    return d if d is not None and d.is_dir() else None


def kodak_images() -> list[Path]:
    d = kodak_dir()
    return sorted(d.glob("*.png")) if d else []


# ---------------------------------------------------------------------------- the machine

def studio_version() -> str:
    """The version of lic_core the studio runs on (Help → About LIC Studio)."""
    import lic_core

    return lic_core.__version__


def apply_threads(n: Optional[int] = None) -> int:
    """Use ``n`` compute threads (None: automatic) in encodes and decodes; returns how many
    (:func:`lic_core.threads.apply_threads`, the one thread policy of CLI and studio)."""
    from lic_core.threads import apply_threads as core_apply_threads

    return core_apply_threads(n)


def default_threads() -> int:
    """The automatic thread count: the CPUs not already busy (:mod:`lic_core.threads`)."""
    from lic_core.threads import default_threads as core_default_threads

    return core_default_threads()


def available_cpus() -> int:
    """The CPUs this process may use."""
    from lic_core.threads import available_cpus as core_available_cpus

    return core_available_cpus()


# ---------------------------------------------------------------------------- codecs

def codec_names() -> list[str]:
    """Registered codec names, learned codecs first (the studio's reason to exist)."""
    names = list_codecs()

    def family(n: str) -> str:
        try:
            return get_codec(n).family
        except Exception:
            return "unknown"

    return sorted(names, key=lambda n: (family(n) != "learned", n))


def codec_availability(name: str) -> tuple[bool, str]:
    """(available, reason) without ever raising: a broken codec is shown disabled."""
    try:
        return get_codec(name).available()
    except LicError as exc:
        return False, str(exc)
    except Exception as exc:  # a provider failing to build must not take the GUI down
        return False, f"{type(exc).__name__}: {exc}"


def default_codec_pair() -> list[str]:
    """Codecs the panes start with: learned vs JPEG when both exist, else the first available."""
    avail = [n for n in codec_names() if codec_availability(n)[0]]
    learned = best_first([n for n in avail if get_codec(n).family == "learned"])
    classical = [n for n in avail if get_codec(n).family != "learned"]
    pref = [n for n in ("jpeg", "webp", "avif") if n in classical] + classical
    out = (learned[:1] + pref[:2]) if learned else pref[:3]
    while len(out) < 3 and avail:
        out.append(avail[len(out) % len(avail)])
    return out or ["jpeg"] * 3


def learned_by_preference(names: list[str]) -> list[str]:
    """The learned codecs of ``names``: the available ones first, the preferred (the product)
    first of them (:func:`lic_core.codecs.best_first`), then the others by name — the order
    in which the RD plot gives out its colours."""
    learned = [n for n in names if codec_family(n) == "learned"]
    avail = best_first([n for n in learned if codec_availability(n)[0]])
    return avail + sorted(n for n in learned if n not in avail)


def encode_at_target(codec: Codec, image: np.ndarray, params: EncodeParams, target_bpp: float,
                     progress: Optional[Callable[[float, str], None]] = None) -> EncodeResult:
    """Encode so the real bpp is near ``target_bpp`` (:func:`encode_at_target_bpp`; ``progress``
    reaches every trial encode, so the search is cancellable)."""
    result, _ = encode_at_target_bpp(codec, image, target_bpp, params_template=params,
                                     progress=progress)
    return result


def is_compressed_file(path: str | Path, head: bytes = b"") -> bool:
    """True for files a codec must decode (.lic, the LIC magic, a learned codec's extension).

    Classical files (.jpg, .webp...) are plain images here: Pillow reads them directly.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".lic" or head[:len(MAGIC)] == MAGIC:
        return True
    if suffix in IMAGE_SUFFIXES:
        return False
    for n in list_codecs():
        try:
            c = get_codec(n)
        except Exception:
            continue
        if c.family == "learned" and c.file_extension.lower() == suffix:
            return True
    return False


def codec_from_file(data: bytes, path: str | Path) -> str:
    """Which codec decodes this file: :func:`lic_core.codecs.codec_for_file`, the rule
    ``lic decompress`` uses (a .lic header's model, else the file extension)."""
    return codec_for_file(data, path).name


def header_info(data: bytes) -> dict[str, Any]:
    """Header fields of a .lic file for display (``{"error": ...}`` for a broken header)."""
    try:
        hdr = peek_header(data)
    except LicError as exc:
        return {"error": str(exc)}
    out = asdict(hdr)
    out["rate u"] = round(hdr.rate, 5)
    # bytes (weights hash) read better as hex in the File info tab
    return {k: (v.hex() if isinstance(v, (bytes, bytearray)) else v) for k, v in out.items()}


# ---------------------------------------------------------------------------- metrics

def metrics_available() -> bool:
    """Metrics are part of lic_core; kept as a query so views need not know that."""
    return True


def compute_metrics(orig: np.ndarray, recon: np.ndarray,
                    which: tuple[str, ...] = ("psnr", "ms_ssim")) -> dict[str, float]:
    """:func:`lic_core.metrics.compute_metrics`, metric by metric on failure.

    A failing optional metric (e.g. LPIPS weights not converted) must not lose the encoding.
    """
    core = core_compute_metrics
    out: dict[str, float] = {}
    try:
        res = core(orig, recon, which)
        out.update({k: float(v) for k, v in res.items() if v is not None})
    except (LicError, RuntimeError, ValueError, OSError):
        for w in which:  # one by one so one broken metric does not hide the others
            try:
                res = core(orig, recon, (w,))
                out.update({k: float(v) for k, v in res.items() if v is not None})
            except (LicError, RuntimeError, ValueError, OSError):
                continue
    return out


# ---------------------------------------------------------------------------- RD helpers

def load_anchor_curves(dataset: str = "kodak") -> dict[str, dict[str, list[float]]]:
    """Reference curves ``{name: {"bpp": [...], "psnr": [...], ...}}`` or {}: the published ones
    and those measured here and shipped (``hevc``, BPG's encoder: issue 31).

    ``lic_core.evaluation.anchors.load_anchors`` / ``load_measured`` own the file formats; this
    only normalises their return values into plain lists for plotting.
    """
    merged: dict[str, dict[str, list[float]]] = {}
    for metric in ("psnr", "ms-ssim", "lpips"):
        try:
            raw = load_anchors(dataset, metric) + load_measured(dataset, metric)
        except (LicError, OSError, ValueError, TypeError):
            continue
        for name, curve in normalise_curves(raw).items():
            merged.setdefault(name, {}).update(curve)
    return merged


def normalise_curves(raw: Any) -> dict[str, dict[str, list[float]]]:
    """Accept {name: {metric: [...]}} / {name: obj with .bpp...} / [obj with .name] shapes."""
    out: dict[str, dict[str, list[float]]] = {}
    items: list[tuple[str, Any]]
    if isinstance(raw, dict):
        items = list(raw.items())
    else:
        items = [(getattr(c, "name", f"anchor{i}"), c) for i, c in enumerate(raw or [])]
    for name, c in items:
        d = c if isinstance(c, dict) else vars(c) if hasattr(c, "__dict__") else {}
        if "results" in d and isinstance(d["results"], dict):
            d = d["results"]
        if isinstance(d.get("values"), dict):  # lic_core.evaluation.anchors.Curve
            d = {"bpp": d.get("bpp"), **d["values"]}
        curve: dict[str, list[float]] = {}
        for key, alias in (("bpp", "bpp"), ("psnr", "psnr"), ("psnr-rgb", "psnr"),
                           ("ms_ssim", "ms_ssim"), ("ms-ssim", "ms_ssim"),
                           ("ms-ssim-rgb", "ms_ssim"), ("lpips", "lpips")):
            if key in d and d[key] is not None and alias not in curve:
                try:
                    curve[alias] = [float(v) for v in d[key]]
                except TypeError:
                    continue
        if "bpp" in curve and len(curve) > 1:
            out[str(name)] = curve
    return out


def bd_rate(ref_bpp: list[float], ref_q: list[float], test_bpp: list[float],
            test_q: list[float]) -> Optional[float]:
    """BD-rate in percent via lic_core.evaluation.bdrate (None when ill-posed)."""
    try:
        return float(core_bd_rate(ref_bpp, ref_q, test_bpp, test_q))
    except (LicError, ValueError, ZeroDivisionError, TypeError, np.linalg.LinAlgError):
        return None


# ---------------------------------------------------------------------------- added models

def architecture_choices() -> list[str]:
    """``compressai:auto`` and every CompressAI architecture a user model may have."""
    from lic_core.models.compressai_compat import architecture_names

    return ["auto", *architecture_names()]


def guess_checkpoint(path: str | Path) -> tuple[str, str]:
    """(architecture, why) guessed from a checkpoint's weights (one-line LicError otherwise)."""
    from lic_core.models.compressai_compat import guess_architecture
    from lic_core.models.compressai_compat.checkpoint import read_checkpoint

    return guess_architecture(read_checkpoint(path).state_dict)


def add_user_model(name: str, arch: str, checkpoints: list[str],
                   progress: Optional[Callable[[float, str], None]] = None):
    """Record a CompressAI model the user trained (:func:`lic_core.codecs.user_models.add_model`;
    nothing recorded on error); its codec appears in :func:`codec_names` at once."""
    from lic_core.codecs.registry import builtin_codecs
    from lic_core.codecs.user_models import add_model

    return add_model(name, f"compressai:{arch}", checkpoints, reserved=builtin_codecs(),
                     progress=progress)


def added_model_names() -> list[str]:
    from lic_core.codecs.compressai_codec import user_codecs

    return sorted(user_codecs())
