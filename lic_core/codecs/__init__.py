"""Codec interface and registry shared by the CLI, ``lic eval`` and the studio."""
from .base import Codec, DecodeResult, EncodeParams, EncodeResult, Inspection, ProgressFn
from .registry import (
    PREFERRED_LEARNED,
    best_first,
    codec_for_file,
    get_codec,
    list_codecs,
    register_codec,
)

__all__ = ["Codec", "DecodeResult", "EncodeParams", "EncodeResult", "Inspection", "ProgressFn",
           "PREFERRED_LEARNED", "best_first", "codec_for_file", "get_codec", "list_codecs",
           "register_codec"]
