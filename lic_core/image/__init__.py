"""Image I/O and tensor helpers at the codec boundary (docs/ARCHITECTURE.md conventions)."""
from ..fileio import write_bytes_atomic
from .io import (
                 DEFAULT_MAX_PIXELS,
                 load_image,
                 sample_image_path,
                 save_image_atomic,
                 save_png_atomic,
)
from .tensor import crop, pad_to_multiple, padded_size, to_tensor, to_uint8

__all__ = ["DEFAULT_MAX_PIXELS", "crop", "load_image", "pad_to_multiple", "padded_size",
           "sample_image_path", "save_image_atomic", "save_png_atomic", "to_tensor", "to_uint8",
           "write_bytes_atomic"]
