"""Latent codecs: how a learned codec's latents become bits and back (CompressAI's
``latent_codecs`` layer, docs/methods.md §2.2, §3.4, §6.3).

Every learned codec of lic_core (the LGEM codec, its diffusion decoder path, HiFiC) runs the same
pipeline; a codec adapter (``lic_core.codecs.learned``, ``lic_core.codecs.hific``) only supplies
its network's analysis/synthesis and writes the ``.lic`` header::

    ȳ = y⊙G, z̄ = h_a(·)⊙H  (the model)
        │
        ▼
    HyperpriorLatentCodec ── z: FactorizedZCodec (round around medians, per-channel tables) ──► section 0
        │                         │ ẑ
        │                         ▼
        │                  entropy parameters (one replaceable engine: parameters.py)
        │                         │ per (group, pass): gained mean μ·G + int64 scale-table index
        ▼                         ▼
        y: CheckerboardGroupedCodec (LGEM, 5 groups × 2 passes) or GaussianConditionalCodec (HiFiC)
              each step: quantizer.quantize → quantizer.symbol_plan → entropy coder ──► section 1

The quantizer chooses symbols, the entropy coder (``lic_core.entropy_coder``) codes them, the
parameter engine is the only source of μ and the scale index.
"""
from .base import DecodeSteps, EncodeSteps, GainedLatent, LatentCoding, StepRunner
from .checkerboard import CheckerboardGroupedCodec
from .gaussian_conditional import GaussianConditionalCodec
from .hyperprior import FactorizedZCodec, HyperpriorLatentCodec
from .parameters import (
    GroupedEntropyParameters,
    HyperpriorEntropyParameters,
    LgemExactParameters,
    LgemFloatParameters,
    PassParams,
    ScaleHyperpriorExactParameters,
    ScaleHyperpriorFloatParameters,
)

__all__ = ["CheckerboardGroupedCodec", "DecodeSteps", "EncodeSteps", "FactorizedZCodec", "GainedLatent",
           "GaussianConditionalCodec", "GroupedEntropyParameters", "HyperpriorEntropyParameters",
           "HyperpriorLatentCodec", "LatentCoding", "LgemExactParameters", "LgemFloatParameters",
           "PassParams", "ScaleHyperpriorExactParameters", "ScaleHyperpriorFloatParameters",
           "StepRunner"]
