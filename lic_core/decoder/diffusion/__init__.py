"""Blur-dissipated diffusion decoder (docs/methods.md §7): blurring diffusion in a DCT basis,
conditioned on the quantized latent ŷ and the synthesis transform's intermediate features ("texture
latents").

Modules: :mod:`.dct` (orthonormal DCT-II), :mod:`.schedules` (blur + cosine-logSNR schedules),
:mod:`.blurring` (forward process, loss, exact posterior sampler), :mod:`.unet` (conditional U-Net),
:mod:`.decoder` (:class:`DiffusionDecoder`, the object the codec calls). See docs/diffusion.md.
"""
from .blurring import diffuse, eps_loss, posterior_step, sample, x0_estimate
from .dct import dct2, dct_matrix, idct2
from .decoder import DiffusionDecoder, config_for_codec, decode_latent, resolve_device
from .schedules import BlurSchedule
from .unet import CondUNet, DiffusionConfig

__all__ = ["BlurSchedule", "CondUNet", "DiffusionConfig", "DiffusionDecoder", "config_for_codec", "decode_latent",
           "dct2", "dct_matrix", "diffuse", "eps_loss", "idct2", "posterior_step",
           "resolve_device", "sample", "x0_estimate"]
