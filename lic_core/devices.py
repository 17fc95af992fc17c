"""Which device the codecs compute on (CPU by default; CUDA on request).

The coding arithmetic is exact (lic_core.exact), so the device changes the speed, never the
bits: a file encoded on a CPU decodes to the same picture on a GPU and the reverse.
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from .errors import CodecUnavailableError


def coding_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``None``/"cpu" → CPU; "cuda[:N]" → that GPU, or a one-line error when torch sees none."""
    dev = torch.device(device or "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CodecUnavailableError(f"device '{device}' was requested but torch sees no CUDA "
                                    "device on this machine (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise CodecUnavailableError(f"unsupported device '{device}' (use cpu or cuda)")
    return dev
