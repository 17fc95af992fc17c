"""uint32 word streams <-> bytes (docs/methods.md §6.2: explicit little-endian)."""
from __future__ import annotations

import numpy as np

from ..errors import LicFormatError


def words_to_bytes(words: np.ndarray) -> bytes:
    """constriction's compressed ``uint32`` words as little-endian bytes (``'<u4'``)."""
    w = np.asarray(words)
    if w.size and (w.dtype.kind not in "ui" or w.min() < 0 or w.max() > 0xFFFFFFFF):
        raise ValueError("words must be unsigned 32-bit integers")
    return w.astype("<u4", copy=False).tobytes()


def bytes_to_words(data: bytes, what: str = "section") -> np.ndarray:
    """Inverse of :func:`words_to_bytes` (native ``uint32`` array, a copy constriction can own).

    A length that is not a multiple of 4 cannot come from the encoder: LicFormatError.
    """
    if len(data) % 4:
        raise LicFormatError(f"corrupted .lic file ({what} length {len(data)} is not a multiple "
                             "of 4 bytes)")
    return np.frombuffer(bytes(data), dtype="<u4").astype(np.uint32)
