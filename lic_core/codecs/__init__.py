"""Codec interface and registry shared by the CLI, ``lic eval`` and the studio."""
from .base import Codec, DecodeResult, EncodeParams, EncodeResult, Inspection, ProgressFn
from .registry import get_codec, list_codecs, register_codec

__all__ = ["Codec", "DecodeResult", "EncodeParams", "EncodeResult", "Inspection", "ProgressFn",
           "get_codec", "list_codecs", "register_codec"]
