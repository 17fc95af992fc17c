"""Image loading/saving at the codec boundary: any Pillow-readable file -> ``uint8 H×W×3`` RGB.

Conversion rules (documented for users in the CLI help and the studio's "Open" dialog):

* EXIF orientation is applied (``ImageOps.exif_transpose``), so pixels are as the photo is shown.
* Transparency (RGBA, LA, PA, palette images with a transparent index) is **composited on
  white**: codecs code 3 colour channels; white matches how most viewers show transparent areas
  on a page.
* Greyscale, bilevel, palette, CMYK, YCbCr... are converted to RGB by Pillow.
* 16-bit greyscale (``I;16``, ``I;16B``, ``I;16L``, ``I``) is scaled with ``round(v / 257)``
  (0 -> 0, 65535 -> 255).  16-bit RGB(A) PNGs are reduced by Pillow's decoder to their high byte
  (like libpng's ``strip_16``): within one level of the exact scaling.
* 32-bit float images (mode ``F``) are refused: their value range is not defined.
* Animated images (GIF, APNG, WebP/AVIF/JPEG XL animations) are **refused**: compressing a
  single frame silently would be surprising.  Other multi-frame containers whose first frame is
  the primary picture (multi-picture JPEG "MPO" from cameras, multi-page TIFF, ICO) use frame 0.
* No colour management: ICC profiles are ignored and the values are coded as they are.
* Images above ``max_pixels`` (default 64 Mpx) are refused before decoding (``--max-pixels``).
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import paths
from ..errors import ImageError
from ..fileio import write_atomic

DEFAULT_MAX_PIXELS = 64_000_000
_ANIMATED_FORMATS = {"GIF", "PNG", "WEBP", "AVIF", "JXL", "FLI", "APNG"}
_LOSSLESS_SAVE = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM",
                  ".pnm": "PPM", ".webp": "WEBP"}
_PIL_LIMIT_LOCK = threading.Lock()

ImageSource = Union[str, os.PathLike, Image.Image, bytes, io.IOBase]


def _mpx(n: int) -> str:
    return f"{n / 1e6:.1f} Mpx"


def _check_size(w: int, h: int, max_pixels: Optional[int], name: str) -> None:
    if w <= 0 or h <= 0:
        raise ImageError(f"{name} has zero size ({w}×{h})")
    if max_pixels and w * h > max_pixels:
        raise ImageError(f"{name} is {w}×{h} ({_mpx(w * h)}), above the limit of "
                         f"{_mpx(max_pixels)}; raise it with --max-pixels {w * h}")


def _open(src: ImageSource, max_pixels: Optional[int], name: str) -> Image.Image:
    """Image.open with Pillow's own bomb limit lifted to ours when ours is higher."""
    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        try:
            if saved is not None and (not max_pixels or max_pixels > saved):
                Image.MAX_IMAGE_PIXELS = max_pixels or None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                return Image.open(src)
        except FileNotFoundError:
            raise ImageError(f"no such file: '{name}'") from None
        except IsADirectoryError:
            raise ImageError(f"'{name}' is a folder, not an image") from None
        except PermissionError:
            raise ImageError(f"permission denied: '{name}'") from None
        except UnidentifiedImageError:
            raise ImageError(f"'{name}' is not an image file this build can read") from None
        except Image.DecompressionBombError:
            raise ImageError(f"{name} is too large (above the limit of "
                             f"{_mpx(max_pixels or 0)}); raise it with --max-pixels") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"cannot read '{name}': {exc}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _to_rgb(im: Image.Image, name: str) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        a = np.clip(np.rint(np.clip(a, 0, 65535) / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2)), "RGB")
    if mode == "F":
        raise ImageError(f"{name} is a 32-bit float image; convert it to 8 or 16 bits first")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"{name}: cannot convert colour mode {mode} to RGB ({exc})") from None


def load_image(src: ImageSource, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image (path, bytes, file object or PIL image) as ``uint8 H×W×3`` RGB.

    See the module docstring for the conversion rules.  ``max_pixels`` of ``None`` or 0 means no
    limit.  Every failure is an :class:`ImageError` with a one-line message.
    """
    if isinstance(src, Image.Image):
        return _decode(src, "the image", max_pixels)
    name = str(src) if isinstance(src, (str, os.PathLike)) else "the image"
    im = _open(src, max_pixels, name)
    try:
        return _decode(im, name, max_pixels)
    finally:
        im.close()  # release the file handle (Windows cannot replace an open file)


def _decode(im: Image.Image, name: str, max_pixels: Optional[int]) -> np.ndarray:
    _check_size(im.width, im.height, max_pixels, name)
    if getattr(im, "is_animated", False) and (im.format or "").upper() in _ANIMATED_FORMATS:
        raise ImageError(f"{name} is animated ({getattr(im, 'n_frames', '?')} frames); only "
                         "still images can be compressed: export one frame first")
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()
        im = ImageOps.exif_transpose(im) or im
        rgb = _to_rgb(im, name)
        arr = np.asarray(rgb, dtype=np.uint8)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"cannot decode '{name}': {exc}") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{name}: unexpected decoded shape {arr.shape}")
    return np.array(arr, dtype=np.uint8, order="C", copy=True)  # writable, owns its memory


def _check_array(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or 0 in a.shape:
        raise ValueError(f"expected a uint8 H×W×3 array, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def save_image_atomic(array: np.ndarray, path: Union[str, os.PathLike],
                      overwrite: bool = False) -> Path:
    """Save ``uint8 H×W×3`` losslessly, format from the extension (.png, .bmp, .tif(f), .ppm,
    .pnm, .webp lossless; no extension or an unknown one is an error), atomically.

    Refuses to replace an existing file unless ``overwrite`` (message mentions --force).
    """
    p = Path(path)
    fmt = _LOSSLESS_SAVE.get(p.suffix.lower())
    if fmt is None:
        raise ImageError(f"cannot save '{p}': use a lossless image format "
                         f"({', '.join(sorted(_LOSSLESS_SAVE))})")
    return _save(array, p, fmt, overwrite)


def save_png_atomic(array: np.ndarray, path: Union[str, os.PathLike],
                    overwrite: bool = False) -> Path:
    """Save ``uint8 H×W×3`` as PNG (whatever the extension), atomically; see ``save_image_atomic``."""
    return _save(array, Path(path), "PNG", overwrite)


def _save(array: np.ndarray, path: Path, fmt: str, overwrite: bool) -> Path:
    im = Image.fromarray(_check_array(array), "RGB")
    kwargs = {"lossless": True, "quality": 100} if fmt == "WEBP" else {}
    return write_atomic(path, lambda fh: im.save(fh, format=fmt, **kwargs), overwrite=overwrite)


def sample_image_path() -> Path:
    """Path of the bundled sample photo (CC0, see lic_core/assets/sample/CREDITS.md)."""
    p = paths.sample_image_path()
    if not p.is_file():
        raise ImageError("the bundled sample image is missing from this installation")
    return p
