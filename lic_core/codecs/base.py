"""One interface over every codec the studio and ``lic eval`` can use.

Learned codecs (our LGEM codec, HiFiC) and classical ones (JPEG, WebP, ...) all implement
:class:`Codec`. The GUI builds its codec list from :mod:`lic_core.codecs.registry`, so adding a
codec touches no GUI code (CompressAI's registry pattern).

Images cross this boundary as ``numpy.uint8`` arrays of shape ``H×W×3`` (RGB).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

#: diffusion sampler steps when neither the user nor the decoder's config says (the CPU-sized
#: decoder's default, docs/diffusion.md: a 768×512 decode in ≤ 15 s on a 2-core CPU)
DEFAULT_DIFFUSION_STEPS = 6

# progress(fraction in [0,1], message) -> None.  Raise lic_core.errors.CancelledError inside it
# (or return False from a cancel check) to stop work early.
ProgressFn = Callable[[float, str], None]


@dataclass
class EncodeParams:
    """What the user chose for one encoding.

    ``rate`` is the codec's own rate knob: the slider u in [0, 1] for learned codecs (continuous
    rate, docs/methods.md §5), the quality setting for classical codecs (see ``Codec.rate_range``).
    """

    rate: float
    quantizer: str = "round"
    quantizer_params: dict = field(default_factory=dict)
    decoder: str = "mse"  # "mse" | "diffusion" | "gan" (learned codecs only)
    #: sampler steps written into the file (0: the diffusion decoder's own default)
    diffusion_steps: int = 0
    seed: int = 0
    extra: dict = field(default_factory=dict)  # codec-specific (e.g. JPEG subsampling)
    #: learned codecs: also return the :class:`Inspection` (full-size latent maps: about 20 bytes
    #: per pixel; a command-line encode of a big photo turns it off, issue 28)
    inspect: bool = True


@dataclass
class Inspection:
    """The insides of a learned encoding, for the studio's analysis views.

    Arrays are numpy, batch dimension removed.  Shapes: ``y_hat``, ``means``, ``scales``,
    ``bits_y``: ``M×h×w`` (latent grid, h = ceil(H/64)*4 ...); ``bits_z``: ``N×hz×wz``.
    ``group_bits`` maps ``"g{k}/anchor"`` / ``"g{k}/non-anchor"`` to estimated bits.
    ``channel_groups`` lists the group sizes so views can label channels.
    """

    y_hat: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    bits_y: np.ndarray
    bits_z: np.ndarray
    channel_groups: list[int]
    group_bits: dict[str, float]
    header_bytes: int
    z_bytes: int
    y_bytes: int
    estimated_bits: float
    clamped_symbols: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class EncodeResult:
    """Bytes plus what the decoder will produce from them."""

    data: bytes
    reconstruction: np.ndarray  # H×W×3 uint8, exactly what decode(data) returns
    bpp: float  # from the real byte count: 8*len(data)/(H*W)
    params: EncodeParams
    codec: str
    file_extension: str  # ".lic", ".jpg", ...
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "encode", "decode", ...
    inspection: Optional[Inspection] = None


@dataclass
class DecodeResult:
    reconstruction: np.ndarray  # H×W×3 uint8
    codec: str
    info: dict[str, Any] = field(default_factory=dict)  # header fields for display
    timings: dict[str, float] = field(default_factory=dict)
    inspection: Optional[Inspection] = None


class Codec(abc.ABC):
    """A codec the studio can run. Subclasses register with ``@register_codec(name)``."""

    #: registry name, e.g. "lic-lgem", "jpeg", "hific-small"
    name: str = ""
    #: "learned" or "classical"
    family: str = "classical"
    #: human label for the rate knob and its range (GUI slider)
    rate_label: str = "quality"
    rate_range: tuple[float, float] = (0.0, 100.0)
    default_rate: float = 75.0
    #: True when larger `rate` means more bits (bisection in target-bpp search relies on it)
    rate_increasing: bool = True
    quantizers: tuple[str, ...] = ()
    decoders: tuple[str, ...] = ()
    file_extension: str = ".bin"

    @abc.abstractmethod
    def encode(self, image: np.ndarray, params: EncodeParams,
               progress: Optional[ProgressFn] = None) -> EncodeResult:
        """Compress an H×W×3 uint8 RGB image."""

    @abc.abstractmethod
    def decode(self, data: bytes, progress: Optional[ProgressFn] = None) -> DecodeResult:
        """Decompress bytes produced by :meth:`encode`."""

    def available(self) -> tuple[bool, str]:
        """(True, "") when the codec can run here, else (False, one-line reason)."""
        return True, ""

    def describe(self) -> dict[str, Any]:
        """Provenance for the GUI's 'about this model' card (model card fields)."""
        return {"name": self.name, "family": self.family}
