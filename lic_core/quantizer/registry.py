"""Quantizers by name: the factory that rebuilds one from a .lic header, and the GUI's labels.

Kept apart from :mod:`.base` so the interface module imports no implementation (no circle).
"""
from __future__ import annotations

from typing import Any

from ..errors import LicError, LicFormatError
from .base import Quantizer
from .scalar import DeadZoneQuantizer, RdoqQuantizer, RoundQuantizer
from .tcq import TcqQuantizer


class QuantizerInfo:
    """What the GUI shows for one quantizer: label, tooltip, default parameters and, per
    parameter, a ``(minimum, maximum, step)`` range for its spin box."""

    __slots__ = ("name", "label", "tooltip", "defaults", "ranges")

    def __init__(self, name: str, label: str, tooltip: str, defaults: dict[str, Any],
                 ranges: dict[str, tuple[float, float, float]] | None = None) -> None:
        self.name, self.label, self.tooltip, self.defaults = name, label, tooltip, dict(defaults)
        self.ranges = dict(ranges or {})

    def __repr__(self) -> str:
        return f"QuantizerInfo({self.name!r}, {self.label!r}, defaults={self.defaults!r})"


#: Quantizers in GUI order. Defaults are the docs/methods.md §4.2–4.4 starting values, except the λ
#: factor c of RDOQ and TCQ: 0.03 instead of the high-rate slope ln2/6 ≈ 0.1155, chosen on
#: held-back training photos for the campaign codec (docs/quantizers.md; c is encoder-only).
QUANTIZERS: list[QuantizerInfo] = [
    QuantizerInfo("round", "Rounding",
                  "Round the mean-removed latent to the nearest integer (CompressAI compress).", {}),
    QuantizerInfo("deadzone", "Dead-zone",
                  "Rounding offset f < 1/2 widens the zero bin: a little more distortion for "
                  "less rate. f = 1/2 is plain rounding. Same decoder.", {"offset": 1.0 / 3.0},
                  {"offset": (0.0, 0.5, 0.01)}),
    QuantizerInfo("rdoq", "RDOQ",
                  "Per element pick round(r), round(r) - sign or 0 minimising "
                  "(r - q)^2 + c * bits(q). Same decoder as rounding.", {"c": 0.03},
                  {"c": (0.0, 1.0, 0.005)}),
    QuantizerInfo("tcq", "Trellis-coded (DQ)",
                  "4-state dependent quantization as in VVC: a Viterbi search along the channels "
                  "(by ascending sigma with the shipped rate tables) picks indices minimising "
                  "D + lambda R; finer reconstruction grid.",
                  {"delta_u": 0.561, "c": 0.03},
                  {"delta_u": (0.3, 1.0, 0.001), "c": (0.0, 1.0, 0.005)}),
]


_CLASSES: dict[str, type[Quantizer]] = {"round": RoundQuantizer, "deadzone": DeadZoneQuantizer,
                                         "rdoq": RdoqQuantizer, "tcq": TcqQuantizer}


def build_quantizer(name: str, **params: Any) -> Quantizer:
    """Build a quantizer from its registry name and (header) parameters.

    Unknown names or parameters raise :class:`lic_core.errors.LicError` subclasses, because they
    come from user input (CLI flags, GUI) or from a .lic header.
    """
    classes = _CLASSES
    if name not in classes:
        raise LicError(f"unknown quantizer {name!r} (choose from {', '.join(classes)})")
    try:
        return classes[name](**params)
    except TypeError as exc:
        raise LicFormatError(f"bad parameters for quantizer {name!r}: {exc}") from None
    except ValueError as exc:
        raise LicError(f"bad parameters for quantizer {name!r}: {exc}") from None
