"""Blur-dissipated diffusion decoder (METHODS §3): blurring diffusion in a DCT basis, conditioned
on the quantized latent ŷ and the synthesis transform's intermediate features ("texture latents").

Modules: :mod:`.dct` (orthonormal DCT-II), :mod:`.schedules` (blur + cosine-logSNR schedules),
:mod:`.blurring` (forward process, loss, exact posterior sampler), :mod:`.unet` (conditional U-Net),
:mod:`.decoder` (:class:`DiffusionDecoder`, the object the codec calls).
"""
from .blurring import diffuse, eps_loss, posterior_step, sample, x0_estimate
from .dct import dct2, dct_matrix, idct2
from .schedules import BlurSchedule

__all__ = ["BlurSchedule", "dct2", "dct_matrix", "diffuse", "eps_loss", "idct2",
           "posterior_step", "sample", "x0_estimate"]
