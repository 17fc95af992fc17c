"""Decoders of ŷ beyond a model's own synthesis transform: synthesis fine-tuned per quantizer
(:mod:`.finetuned`, METHODS §1.5) and the blur-dissipated diffusion decoder (:mod:`.diffusion`, §3).
"""
