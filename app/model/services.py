"""Adapters between the studio and ``lic_core`` (Qt-free).

The studio must not re-implement codec or metric logic (ARCHITECTURE.md), but parts of lic_core
are optional or still growing.  Every call into an optional lic_core module goes through one
function here, which degrades gracefully (returns ``None`` / ``{}`` / a plain error) when the module
is missing, so the GUI keeps working with whatever the install offers.
"""
from __future__ import annotations

import hashlib
import inspect
import io
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from lic_core.codecs import Codec, EncodeParams, EncodeResult, get_codec, list_codecs
from lic_core.errors import ImageError, LicError, LicFormatError

REPO_ROOT = Path(__file__).resolve().parents[2]

#: file suffixes the Open dialog offers as images (anything Pillow reads also works)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".avif", ".jxl", ".jp2", ".j2k", ".bmp",
                  ".tif", ".tiff", ".ppm", ".pgm")


# ---------------------------------------------------------------------------- images

def load_image(path: str | Path) -> np.ndarray:
    """An ``H×W×3`` uint8 RGB array from an image file.

    Uses ``lic_core.image.load_image`` when it exists (one loader for CLI, eval and GUI); until then
    Pillow directly.  Raises :class:`ImageError` with a one-line message for unreadable files.
    """
    try:
        from lic_core.image import load_image as core_load  # type: ignore[attr-defined]
    except ImportError:
        core_load = None
    if core_load is not None:
        out = core_load(path)
        return _to_uint8_hwc(out)
    return decode_image_bytes(Path(path).read_bytes(), name=str(path))


def decode_image_bytes(data: bytes, name: str = "image") -> np.ndarray:
    """Decode an encoded image (PNG, JPEG...) held in memory (clipboard, drops) with Pillow."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except Exception as exc:  # Pillow raises many types for broken files
        raise ImageError(f"cannot read {Path(name).name}: {exc}") from None


def _to_uint8_hwc(out: Any) -> np.ndarray:
    """Accept either lic_core's boundary format (uint8 H×W×3) or a 1×3×H×W float tensor."""
    arr = out
    if hasattr(arr, "detach"):
        arr = arr.detach().cpu().numpy()
    arr = np.asarray(arr)
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = np.transpose(arr, (1, 2, 0))
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"expected an RGB image, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def image_id(image: np.ndarray) -> str:
    """Content hash identifying an image in the result cache (path-independent)."""
    h = hashlib.sha1()
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()[:16]


def sample_image_path() -> Optional[Path]:
    """The bundled sample image (``lic_core.image.sample_image_path`` when it exists)."""
    try:
        from lic_core.image import sample_image_path as core_sample  # type: ignore[attr-defined]

        p = Path(core_sample())
        if p.is_file():
            return p
    except (ImportError, LicError, OSError):
        pass
    d = REPO_ROOT / "resources" / "sample"
    for p in sorted(d.glob("*.png")) if d.is_dir() else []:
        return p
    return None


def kodak_dir() -> Optional[Path]:
    """``../shared/data/kodak`` next to the repository, when present (team machines and CI)."""
    import os

    shared = Path(os.environ.get("LIC_SHARED_DIR", REPO_ROOT.parent / "shared"))
    d = shared / "data" / "kodak"
    return d if d.is_dir() else None


def kodak_images() -> list[Path]:
    d = kodak_dir()
    return sorted(d.glob("*.png")) if d else []


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
    learned = [n for n in avail if get_codec(n).family == "learned"]
    classical = [n for n in avail if get_codec(n).family != "learned"]
    pref = [n for n in ("jpeg", "webp", "avif") if n in classical] + classical
    out = (learned[:1] + pref[:2]) if learned else pref[:3]
    while len(out) < 3 and avail:
        out.append(avail[len(out) % len(avail)])
    return out or ["jpeg"] * 3


class _ProgressCodec:
    """Codec proxy that hands ``progress`` to every encode the target-bpp search makes.

    ``encode_at_target_bpp`` calls ``codec.encode(image, params)`` without a progress callback;
    routing ours through keeps the search cancellable (CancelledError from the callback).
    """

    def __init__(self, codec: Codec, progress: Optional[Callable[[float, str], None]]) -> None:
        self._codec = codec
        self._progress = progress
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._codec, name)

    def encode(self, image: np.ndarray, params: EncodeParams, progress=None) -> EncodeResult:
        self.calls += 1
        if self._progress is not None:
            self._progress(min(0.85, 0.1 * self.calls), f"search step {self.calls}")
        return self._codec.encode(image, params, self._progress)


def encode_at_target(codec: Codec, image: np.ndarray, params: EncodeParams, target_bpp: float,
                     progress: Optional[Callable[[float, str], None]] = None) -> EncodeResult:
    """Encode so the real bpp is near ``target_bpp`` (lic_core.evaluation.target_bpp).

    Raises :class:`LicError` when the search module is not installed: the GUI shows it.
    """
    try:
        from lic_core.evaluation.target_bpp import encode_at_target_bpp  # type: ignore
    except ImportError:
        raise LicError("target-bpp search is not available in this install "
                       "(lic_core.evaluation.target_bpp missing)") from None
    proxy = _ProgressCodec(codec, progress)
    out = encode_at_target_bpp(proxy, image, target_bpp, params_template=params)  # type: ignore
    return out[0] if isinstance(out, tuple) else out


def is_compressed_file(path: str | Path, head: bytes = b"") -> bool:
    """True for files a codec must decode (.lic, the LIC magic, a learned codec's extension).

    Classical files (.jpg, .webp...) are plain images here: Pillow reads them directly.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".lic" or head[:3] == b"LIC":
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


def _peek_header_fn() -> Optional[Callable[[bytes], Any]]:
    """``peek_header`` from lic_core.bitstream (package or its format module), or None."""
    for mod in ("lic_core.bitstream", "lic_core.bitstream.format"):
        try:
            m = __import__(mod, fromlist=["peek_header"])
        except ImportError:
            continue
        fn = getattr(m, "peek_header", None)
        if fn is not None:
            return fn
    return None


def codec_from_file(data: bytes, path: str | Path) -> str:
    """Which codec decodes this file: the .lic header's model, else the file extension."""
    suffix = Path(path).suffix.lower()
    if data[:3] == b"LIC" or suffix == ".lic":
        peek_header = _peek_header_fn()
        if peek_header is not None:
            hdr = peek_header(data)
            model = getattr(hdr, "model", None) or (hdr.get("model") if isinstance(hdr, dict)
                                                    else None)
            if model and model in list_codecs():
                return model
            # the header may name the weights, not the registry entry: fall back on family
        learned = [n for n in codec_names()
                   if get_codec(n).file_extension == ".lic" and codec_availability(n)[0]]
        if learned:
            return learned[0]
        raise LicFormatError(f"{Path(path).name}: no codec in this install reads .lic files")
    for n in codec_names():
        if get_codec(n).file_extension == suffix:
            return n
    raise LicFormatError(f"{Path(path).name}: unknown compressed format '{suffix}'")


def header_info(data: bytes) -> dict[str, Any]:
    """Header fields of a .lic file for display ({} when the bitstream module is missing)."""
    peek_header = _peek_header_fn()
    if peek_header is None:
        return {}
    try:
        hdr = peek_header(data)
    except LicError as exc:
        return {"error": str(exc)}
    if isinstance(hdr, dict):
        out = dict(hdr)
    elif hasattr(hdr, "__dataclass_fields__"):
        from dataclasses import asdict

        out = asdict(hdr)
    else:
        out = {k: v for k, v in vars(hdr).items() if not k.startswith("_")}
    if isinstance(getattr(hdr, "rate", None), float):
        out["rate u"] = round(hdr.rate, 5)
    # bytes (weights hash) read better as hex in the File info tab
    return {k: (v.hex() if isinstance(v, (bytes, bytearray)) else v) for k, v in out.items()}


# ---------------------------------------------------------------------------- metrics

def metrics_available() -> bool:
    try:
        from lic_core.metrics import compute_metrics  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return True


def compute_metrics(orig: np.ndarray, recon: np.ndarray,
                    which: tuple[str, ...] = ("psnr", "ms_ssim")) -> dict[str, float]:
    """lic_core.metrics.compute_metrics, or {} when the metrics module is missing or fails.

    A failing optional metric (e.g. LPIPS weights not converted) must not lose the encoding.
    """
    try:
        from lic_core.metrics import compute_metrics as core  # type: ignore[attr-defined]
    except ImportError:
        return {}
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


def metric_maps(orig: np.ndarray, recon: np.ndarray) -> dict[str, np.ndarray]:
    try:
        from lic_core.metrics import metric_maps as core  # type: ignore[attr-defined]
    except ImportError:
        return {}
    try:
        return dict(core(orig, recon))
    except (LicError, RuntimeError, ValueError):
        return {}


# ---------------------------------------------------------------------------- RD helpers

def load_anchor_curves(dataset: str = "kodak") -> dict[str, dict[str, list[float]]]:
    """Published reference curves ``{name: {"bpp": [...], "psnr": [...], ...}}`` or {}.

    ``lic_core.evaluation.anchors.load_anchors`` owns the file formats; this only normalises its
    return value into plain lists for plotting.
    """
    try:
        from lic_core.evaluation.anchors import load_anchors  # type: ignore
    except ImportError:
        return {}
    merged: dict[str, dict[str, list[float]]] = {}
    for metric in ("psnr", "ms-ssim", "lpips"):
        try:
            raw = load_anchors(dataset, metric)
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
    """BD-rate in percent via lic_core.evaluation.bdrate (None when unavailable or ill-posed)."""
    try:
        from lic_core.evaluation.bdrate import bd_rate as core  # type: ignore
    except ImportError:
        return None
    try:
        return float(core(ref_bpp, ref_q, test_bpp, test_q))
    except (LicError, ValueError, ZeroDivisionError, TypeError, np.linalg.LinAlgError):
        return None
