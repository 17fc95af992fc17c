"""Check values a format-v2 ``.lic`` file carries about its own decoding (docs/bitstream.md).

* one CRC32 of the **decoded symbols** per coding step — z, then every y step in bitstream order
  — over the step's integer indices as little-endian int32 in C order (z: ``N×hz×wz`` symbols
  relative to the medians; y: the ``B×C×N`` block of the (group, pass)).  A decoder checks each
  step right after decoding it;
* one CRC32 of the encoder's **final uint8 picture** (``H×W×3``, cropped, C order) per decoder it
  ran, with the diffusion steps and seed it used.  A decoder checks the picture before returning.

The container CRC32 (:mod:`.format`) says the bytes are the ones the encoder wrote; these say the
decoder computed what the encoder computed.  A failure of the latter is a
:class:`~lic_core.errors.LicMismatchError`, never a "corrupted file" and never a picture.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

from ..errors import LicMismatchError


def symbol_crc(indices, value: int = 0) -> int:
    """CRC32 of integer indices (tensor or array) as little-endian int32, C order.

    ``value`` continues a CRC: the CRC of consecutive chunks of a block, chained, is the block's
    (zlib's running CRC) — a step coded in chunks of channels checks the same value."""
    a = indices.detach().cpu().numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
    if a.size and (a.min() < -(1 << 31) or a.max() >= (1 << 31)):
        raise ValueError("symbols outside the int32 range")
    return zlib.crc32(np.ascontiguousarray(a, dtype="<i4").tobytes(), value) & 0xFFFFFFFF


def picture_crc(picture: np.ndarray) -> int:
    """CRC32 of an ``H×W×3`` uint8 picture in C order."""
    a = np.ascontiguousarray(picture, dtype=np.uint8)
    return zlib.crc32(a.tobytes()) & 0xFFFFFFFF


def _report() -> str:
    from .. import __version__

    return f"please report it (LIC Studio {__version__})"


def symbols_mismatch(step: str, detail: str = "") -> LicMismatchError:
    """The one-line error when a step's decoded symbols differ from the encoder's."""
    why = f": {detail}" if detail else ""
    return LicMismatchError(
        f"this file is intact (its CRC32 is correct) but this machine computed different entropy "
        f"parameters than the encoder did — the symbols of {step} do not match the file's "
        f"check{why}; no picture is shown; {_report()}")


def picture_mismatch(decoder: str) -> LicMismatchError:
    """The one-line error when the decoded picture differs from the encoder's."""
    return LicMismatchError(
        f"this file is intact (its CRC32 and symbol checks are correct) but this machine "
        f"computed a different '{decoder}' picture than the encoder did; no picture is shown; "
        f"{_report()}")
