"""Reproducible arithmetic for everything a decoder must reproduce (issue 11; docs/bitstream.md,
"Reproducible decoding").

* :mod:`.dmath` — exp, log, erfc, GELU, sigmoid, softplus, tanh, sin/cos, atan from IEEE
  basic operations only;
* :mod:`.fixed` — activation grids (integers in float64) and linear layers evaluated as exact
  integer sums (< 2^53);
* :mod:`.nets` — exact norms, window attention, Transformer and residual blocks, resampling;
* :mod:`.entropy` — :class:`ExactEntropyParameters` (LGEM: ẑ → scale indices and means) and
  :class:`ExactMeanScaleHyperprior` (HiFiC);
* :mod:`.synthesis` — :class:`ExactSynthesis` (ELIC g_s: ŷ → uint8 picture);
* :mod:`.rng` — a counter-based Gaussian noise generator from integer ops (diffusion decoder);
* :mod:`.tables` — the frozen 64-entry scale table;
* :mod:`.guard` — a TorchFunctionMode that rejects non-reproducible ops (used by the tests).

Layering: this package sits below the quantizers and above the entropy models (it mirrors the
networks of ``entropy_model`` and ``transform``); the networks of upper layers get their exact
mirrors next to them (``models/hific_exact.py``, ``decoder/diffusion/exact.py``,
``models/compressai_compat/google_exact.py`` for added CompressAI models).
"""
from .entropy import ExactEntropyParameters, ExactMeanScaleHyperprior, exact_gain, exact_gains
from .nets import DEFAULT_CONFIG, ExactConfig
from .synthesis import ExactSynthesis
from .tables import SCALE_TABLE_64, scale_index, table_std

__all__ = ["DEFAULT_CONFIG", "ExactConfig", "ExactEntropyParameters", "ExactMeanScaleHyperprior",
           "ExactSynthesis", "SCALE_TABLE_64", "exact_gain", "exact_gains", "scale_index",
           "table_std"]
