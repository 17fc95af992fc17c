"""Display-resolution pictures of big images (issue 28 item 3; Qt-free).

A 24 MP photo is 72 MB of pixels, and each pane's reconstruction as much again.  The compare
view never hands such an array to the GUI thread whole: it shows

* a **preview** of each picture — the picture area-averaged by an integer factor ``f`` so its
  long side is at most :data:`PREVIEW_MAX_SIDE` px — computed once, in the worker that loaded or
  encoded the picture (:func:`prepare`), and
* on zoom, a **detail crop**: the part of the full-resolution picture in view (plus a margin),
  sampled every ``step`` pixels where ``step`` follows the zoom (:func:`detail_crop`), so its
  size is bounded by the screen, never by the picture.

Pictures whose long side fits :data:`PREVIEW_MAX_SIDE` are their own preview (``f = 1``): the
studio shows them exactly as before.  Previews live in an identity cache: an entry goes when
its picture is garbage collected, so closing an image frees its previews too.
"""
from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, TypeVar

import numpy as np

#: long side of a preview; also the largest picture shown whole (a 2560×1440 screen's width is
#: covered at ~0.8 preview px per screen px, and zooming further brings in the detail crop)
PREVIEW_MAX_SIDE = 2048
#: most pixels a detail crop may have (a 1366×768 view with its margin stays far below)
DETAIL_BUDGET = 4_000_000
#: the crop reaches this fraction of the visible size beyond each side, so small pans need no
#: new crop
DETAIL_MARGIN = 0.25
#: pictures above this many pixels are "big": MS-SSIM and LPIPS are scored after the picture
#: is shown, and the inspector's maps are computed in a worker (at 24 MP one MS-SSIM takes
#: 6–15 s and ~0.4 GB: it must not hold back the reconstruction)
BIG_PIXELS = 4_194_304  # 2048²

V = TypeVar("V")


def is_big(shape: tuple[int, ...]) -> bool:
    """True for pictures above :data:`BIG_PIXELS` (``shape`` = ``(H, W, ...)``)."""
    return int(shape[0]) * int(shape[1]) > BIG_PIXELS


def preview_factor(height: int, width: int, max_side: Optional[int] = None) -> int:
    """The integer reduction ``f`` that brings the long side to at most ``max_side``
    (default :data:`PREVIEW_MAX_SIDE`)."""
    side = PREVIEW_MAX_SIDE if max_side is None else max_side
    return max(1, math.ceil(max(int(height), int(width)) / side))


class IdentityCache(Generic[V]):
    """Values keyed by an object's identity, dropped when that object is garbage collected.

    numpy arrays are neither hashable nor comparable cheaply, but they take weak references:
    an entry lives exactly as long as its array (thread-safe; workers fill it).
    """

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref, V]] = {}
        self._lock = threading.Lock()

    def get(self, obj: Any) -> Optional[V]:
        with self._lock:
            hit = self._items.get(id(obj))
        if hit is None or hit[0]() is not obj:  # an id reused by a newer object
            return None
        return hit[1]

    def put(self, obj: Any, value: V) -> V:
        key = id(obj)
        ref = weakref.ref(obj, lambda _r, k=key: self._drop(k, _r))
        with self._lock:
            self._items[key] = (ref, value)
        return value

    def _drop(self, key: int, ref: weakref.ref) -> None:
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[0] is ref:
                del self._items[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class Preview:
    """A picture at display resolution: ``array`` (``h×w×3`` uint8) is the full picture
    reduced by ``factor`` (``h = ceil(H / factor)``); ``full_shape`` is ``(H, W)``."""

    array: np.ndarray
    factor: int
    full_shape: tuple[int, int]

    def columns(self, x0: int, x1: int) -> np.ndarray:
        """The preview columns covering full-resolution columns ``[x0, x1)``."""
        f = self.factor
        return self.array[:, x0 // f: max(x0 // f + 1, -(-x1 // f))]


_previews: IdentityCache[Preview] = IdentityCache()


def make_preview(image: np.ndarray, max_side: Optional[int] = None) -> Preview:
    """Area-averaged preview (Pillow's box ``reduce``: a partial last block averages the
    pixels it has).  Per-pixel work on the whole picture: call it in a worker."""
    h, w = image.shape[:2]
    f = preview_factor(h, w, max_side)
    if f == 1:
        return Preview(image, 1, (h, w))
    from PIL import Image

    small = np.asarray(Image.fromarray(np.ascontiguousarray(image)).reduce(f))
    small.setflags(write=False)
    return Preview(small, f, (h, w))


def prepare(image: Optional[np.ndarray]) -> None:
    """Compute and cache ``image``'s preview (worker threads call this for every picture they
    hand to the studio, so the GUI thread finds it ready)."""
    if image is None or preview_factor(*image.shape[:2]) == 1 or _previews.get(image):
        return
    _previews.put(image, make_preview(image))


def preview(image: np.ndarray) -> Preview:
    """The cached preview of ``image``; a picture no worker prepared (pasted, made in a test)
    gets a strided one at once — its cost follows the preview's size, not the picture's —
    which is cached too."""
    h, w = image.shape[:2]
    f = preview_factor(h, w)
    if f == 1:
        return Preview(image, 1, (h, w))
    hit = _previews.get(image)
    if hit is not None:
        return hit
    quick = np.ascontiguousarray(image[::f, ::f])
    quick.setflags(write=False)
    return _previews.put(image, Preview(quick, f, (h, w)))


def cached_previews() -> int:
    """How many previews are held (tests: they go with their pictures)."""
    return len(_previews)


@dataclass(frozen=True)
class Crop:
    """Full-resolution pixels ``[x0, x1) × [y0, y1)`` sampled every ``step`` pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    step: int

    @property
    def shape(self) -> tuple[int, int]:
        s = self.step
        return -(-(self.y1 - self.y0) // s), -(-(self.x1 - self.x0) // s)

    @property
    def pixels(self) -> int:
        h, w = self.shape
        return h * w

    def rect(self) -> tuple[float, float, float, float]:
        """``(x, y, width, height)`` the crop covers in image coordinates (its last sample
        stands for a whole step, clipped at the crop's end)."""
        return float(self.x0), float(self.y0), float(self.x1 - self.x0), float(self.y1 - self.y0)

    def covers(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        return self.x0 <= x0 and self.y0 <= y0 and self.x1 >= x1 and self.y1 >= y1

    def take(self, image: np.ndarray) -> np.ndarray:
        """The crop's pixels of ``image`` (a copy only of the samples taken)."""
        s = self.step
        return np.ascontiguousarray(image[self.y0:self.y1:s, self.x0:self.x1:s])


def detail_step(scale: float) -> int:
    """Full-resolution pixels per sample for ``scale`` screen pixels per image pixel: at
    least one sample per screen pixel."""
    if scale <= 0 or not math.isfinite(scale):
        return 1 << 30
    return max(1, int(math.floor(1.0 / scale + 1e-9)))


def detail_crop(view: tuple[float, float, float, float], scale: float, shape: tuple[int, int],
                factor: int, cols: Optional[tuple[int, int]] = None,
                budget: int = DETAIL_BUDGET) -> Optional[Crop]:
    """The crop to show over a preview reduced by ``factor`` for the visible rectangle
    ``view = (x0, y0, x1, y1)`` at ``scale``; None when the preview already has the detail the
    screen can show, or nothing of the picture is in view.

    ``cols`` clips the crop to picture columns ``[c0, c1)`` (a pane of the split view).  The
    crop reaches :data:`DETAIL_MARGIN` beyond the view where the budget allows, and starts on
    the sampling grid so successive crops at one step sample the same pixels.
    """
    step = detail_step(scale)
    if step >= factor:
        return None
    h, w = int(shape[0]), int(shape[1])
    c0, c1 = cols if cols is not None else (0, w)
    vx0, vy0, vx1, vy1 = view
    vx0, vx1 = max(vx0, c0), min(vx1, c1)
    vy0, vy1 = max(vy0, 0.0), min(vy1, h)
    if vx1 <= vx0 or vy1 <= vy0:
        return None
    for margin in (DETAIL_MARGIN, 0.1, 0.0):
        mx, my = (vx1 - vx0) * margin, (vy1 - vy0) * margin
        x0 = max(c0, int(math.floor(vx0 - mx)))
        y0 = max(0, int(math.floor(vy0 - my)))
        x1 = min(c1, int(math.ceil(vx1 + mx)))
        y1 = min(h, int(math.ceil(vy1 + my)))
        x0 -= (x0 - c0) % step  # on the sampling grid of this column range
        y0 -= y0 % step
        crop = Crop(x0, y0, x1, y1, step)
        if crop.pixels <= budget:
            return crop
    while crop.pixels > budget and crop.step < factor:  # a huge screen: sample more coarsely
        crop = Crop(crop.x0, crop.y0, crop.x1, crop.y1, crop.step + 1)
    return crop if crop.step < factor else None


def coarse_step(shape: tuple[int, int], factor: int, max_pixels: int = 1_000_000) -> int:
    """Sampling step of a whole-picture view computed on the GUI thread (e.g. a difference
    image): at least the preview factor, and at most ``max_pixels`` samples."""
    h, w = int(shape[0]), int(shape[1])
    return max(int(factor), math.ceil(math.sqrt(h * w / max_pixels)))


def sampled(fn: Callable[[Crop], np.ndarray], shape: tuple[int, int], step: int,
            cols: Optional[tuple[int, int]] = None) -> tuple[np.ndarray, Crop]:
    """``fn`` over the whole picture (columns ``cols``) sampled every ``step`` pixels."""
    c0, c1 = cols if cols is not None else (0, int(shape[1]))
    crop = Crop(c0, 0, c1, int(shape[0]), max(1, int(step)))
    return fn(crop), crop
