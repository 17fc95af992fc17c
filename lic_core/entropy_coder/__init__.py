"""Entropy-coding primitives on ``constriction`` (docs/methods.md §6.2, §6.3).

z (factorized prior): :func:`encode_z` / :func:`decode_z`.  y symbol coding with the Gaussian
tables lives with the quantizers (``lic_core.quantizer``); the word/bytes helpers are shared.
"""
from .words import bytes_to_words, words_to_bytes
from .zcoder import decode_z, encode_z, z_bits

__all__ = ["bytes_to_words", "decode_z", "encode_z", "words_to_bytes", "z_bits"]
