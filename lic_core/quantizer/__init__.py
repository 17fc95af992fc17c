"""lic_core.quantizer: scalar quantizers and trellis-coded quantization of y (METHODS §1, §6.3).

Public API: :class:`Quantizer`, :func:`build_quantizer`, :data:`QUANTIZERS` (GUI labels,
tooltips and defaults) and the concrete classes (imported lazily to keep imports light).
"""
from lic_core.quantizer.base import QUANTIZERS, Quantizer, QuantizerInfo, build_quantizer

__all__ = ["QUANTIZERS", "Quantizer", "QuantizerInfo", "build_quantizer", "RoundQuantizer",
           "DeadZoneQuantizer", "RdoqQuantizer", "TcqQuantizer"]


def __getattr__(name: str):
    if name in ("RoundQuantizer", "DeadZoneQuantizer", "RdoqQuantizer"):
        from lic_core.quantizer import scalar

        return getattr(scalar, name)
    if name == "TcqQuantizer":
        from lic_core.quantizer.tcq import TcqQuantizer

        return TcqQuantizer
    raise AttributeError(name)
