"""Input checks shared by the metrics (images cross the codec boundary as uint8 H×W×3 RGB)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..errors import ImageError


def check_pair(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``a, b`` as arrays after checking they are equal-shape ``H×W×3`` 8-bit images."""
    a, b = np.asarray(a), np.asarray(b)
    for name, x in (("original", a), ("reconstruction", b)):
        if x.ndim != 3 or x.shape[2] != 3:
            raise ImageError(f"{name} must be an H×W×3 RGB array, got shape {x.shape}")
        if x.dtype != np.uint8:
            raise ImageError(f"{name} must be uint8 (8-bit RGB), got {x.dtype}")
    if a.shape != b.shape:
        raise ImageError(f"image sizes differ: {a.shape[1]}×{a.shape[0]} vs {b.shape[1]}×{b.shape[0]}")
    return a, b
