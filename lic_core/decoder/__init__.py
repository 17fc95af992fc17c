"""Decoders of ŷ beyond a model's own synthesis transform: synthesis fine-tuned per quantizer
(:mod:`.finetuned`, METHODS §1.5), the GAN decoder (:mod:`.gan`: g_s retrained with HiFiC's
objective, issue 26) and the blur-dissipated diffusion decoder (:mod:`.diffusion`, §3).
"""
