"""Decoders of ŷ beyond a model's own synthesis transform: synthesis fine-tuned per quantizer
(:mod:`.finetuned`, docs/methods.md §4.5), the GAN decoder (:mod:`.gan`: g_s retrained with HiFiC's
objective, issue 26) and the blur-dissipated diffusion decoder (:mod:`.diffusion`, §7).
"""
