"""The LGEM model's exact forward passes: what files of ``LicModel`` decode with (format v2,
docs/bitstream.md "Reproducible decoding"), beside the float network (:mod:`lic_core.models.lgem`).

* :mod:`.entropy` — :class:`ExactEntropyParameters`: ẑ → h_s → LGEM contexts → (scale index, μ·G)
  (mirrors ``LicModel``'s gains, ``h_s`` and ``LGEMContext``);
* :mod:`.entropy_tiles` — :class:`TiledEntropy`: the same, tile by tile (same bits, bounded memory);
* :mod:`.synthesis` — :class:`ExactSynthesis`: ELIC g_s, ŷ⊙G' → uint8 picture (also the g_s of the
  fine-tuned and GAN decoders and the diffusion decoder's conditioning);
* :mod:`.fingerprint` — hashes of everything the engine produces (thread/device comparisons).

They are built from the exact engine, :mod:`lic_core.exact` (grids, exact-sum layers, kernels,
deterministic math, gains, the scale table), and read the float networks by attribute.
"""
from .entropy import ExactEntropyParameters
from .entropy_tiles import TiledEntropy
from .synthesis import ExactSynthesis

__all__ = ["ExactEntropyParameters", "ExactSynthesis", "TiledEntropy"]
