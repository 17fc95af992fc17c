"""lic_core.quantizer: scalar quantizers and trellis-coded quantization of y (docs/methods.md §4,
§6.3).

Quantizers choose symbols and describe their pmfs; they never code (the entropy coder does).
Public API: :class:`Quantizer`, :func:`build_quantizer`, :data:`QUANTIZERS` (GUI labels,
tooltips and defaults) and the concrete classes.
"""
from .base import Quantizer
from .registry import QUANTIZERS, QuantizerInfo, build_quantizer
from .scalar import DeadZoneQuantizer, RdoqQuantizer, RoundQuantizer
from .tcq import TcqQuantizer

__all__ = ["QUANTIZERS", "DeadZoneQuantizer", "Quantizer", "QuantizerInfo", "RdoqQuantizer",
           "RoundQuantizer", "TcqQuantizer", "build_quantizer"]
