"""The ``.lic`` container (docs/methods.md §6.5; byte layout in docs/bitstream.md)."""
from .format import (
    DECODER_CODES,
    FORMAT_VERSION,
    MAGIC,
    MAX_FORMAT_VERSION,
    MAX_SIDE,
    FileLayout,
    LicHeader,
    PictureCheck,
    layout,
    pack,
    peek_header,
    unpack,
)

__all__ = ["DECODER_CODES", "FORMAT_VERSION", "MAGIC", "MAX_FORMAT_VERSION", "MAX_SIDE", "FileLayout", "LicHeader",
           "PictureCheck", "layout", "pack", "peek_header", "unpack"]
