"""The exact engine: reproducible arithmetic for everything a decoder must reproduce (issue 11;
docs/bitstream.md, "Reproducible decoding").  It holds no network of ours — each network's exact
forward pass sits beside its float network and is built from these parts.

* :mod:`.dmath` — exp, log, erfc, GELU, sigmoid, softplus, tanh, sin/cos, atan from IEEE
  basic operations only;
* :mod:`.fixed` — activation grids (integers in float64), linear layers evaluated as exact
  integer sums (< 2^53), and the uint8 picture of exact real values;
* :mod:`.kernels` — cache-blocked exact convolutions with the rounding fused in;
* :mod:`.nets` — exact layers and blocks: norms, window attention, Transformer and residual
  blocks, Cheng's attention block, resampling;
* :mod:`.gains` — the gains of a u16 slider code (deterministic interpolation);
* :mod:`.tables` — the frozen 64-entry scale table, σ·G → index;
* :mod:`.rng` — a counter-based Gaussian noise generator from integer ops (diffusion decoder);
* :mod:`.cache` — build an exact network once per weights;
* :mod:`.guard` — a TorchFunctionMode that rejects non-reproducible ops (used by the tests).

The exact networks, each beside its float network: ``models/lgem_exact/`` (LGEM: entropy
parameters, tiles, g_s), ``models/hific_exact.py`` (HiFiC: G, mean-scale hyperprior),
``models/compressai_compat/*_exact.py`` (added CompressAI models), ``decoder/diffusion/exact.py``
(the diffusion decoder).

Layering: this package sits below the quantizers (TCQ's coded pmfs use its erfc, the scalar
quantizers its table) and above the entropy models and transforms whose layers it mirrors.
"""
from .gains import exact_gain, exact_gains
from .nets import DEFAULT_CONFIG, ExactConfig
from .tables import SCALE_TABLE_64, scale_index, sigma_index, table_std

__all__ = ["DEFAULT_CONFIG", "ExactConfig", "SCALE_TABLE_64", "exact_gain", "exact_gains",
           "scale_index", "sigma_index", "table_std"]
