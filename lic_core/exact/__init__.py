"""Reproducible arithmetic for everything a decoder must reproduce (issue 11; docs/determinism.md).

* :mod:`.dmath` — exp, log, erfc, GELU, sigmoid, softplus from IEEE basic operations only;
* :mod:`.fixed` — activation grids and linear layers evaluated as exact integer sums (< 2^53);
* :mod:`.nets` — exact LayerNorm, window attention, Transformer and residual blocks;
* :mod:`.entropy` — :class:`ExactEntropyParameters` (ẑ → scale indices and means);
* :mod:`.synthesis` — :class:`ExactSynthesis` (ŷ → uint8 picture);
* :mod:`.tables` — the frozen 64-entry scale table;
* :mod:`.guard` — a TorchFunctionMode that rejects non-reproducible ops (used by the tests).
"""
from .entropy import ExactEntropyParameters, exact_gain
from .nets import ExactConfig
from .synthesis import ExactSynthesis
from .tables import SCALE_TABLE_64, scale_index, table_std

__all__ = ["ExactConfig", "ExactEntropyParameters", "ExactSynthesis", "SCALE_TABLE_64",
           "exact_gain", "scale_index", "table_std"]
