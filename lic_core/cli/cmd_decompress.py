"""``lic decompress IN.lic [OUT.png]``: decode a .lic file with the codec named in its header.

``--decoder/--steps/--seed`` re-decode the same bits with another decoder (e.g. the diffusion
decoder for a file encoded for MSE): the header is rewritten in memory (new CRC), the coded
sections are untouched.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import time
from pathlib import Path

from ..bitstream import pack, unpack
from ..codecs import codec_for_file
from ..errors import LicError
from ..fileio import read_bytes
from ..image import save_image_atomic
from .cmd_compress import check_choice, check_output, require_available, stderr_progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "decompress", help="decompress a .lic file to a lossless image (PNG by default)",
        description="Decode a .lic file; the codec is read from the file's header.")
    p.add_argument("input", help=".lic file")
    p.add_argument("output", nargs="?", default=None,
                   help="output image (.png, .bmp, .tif, .ppm, .webp lossless; default: "
                        "INPUT with .png)")
    p.add_argument("--decoder", default=None,
                   help="decode with this decoder instead of the one in the file "
                        "(mse | diffusion | gan)")
    p.add_argument("--steps", type=int, default=None, help="diffusion decoder steps")
    p.add_argument("--seed", type=int, default=None, help="diffusion decoder seed")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


_IMAGE_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                (b"RIFF", "a WebP image"),
                (b"\x00\x00\x00", "an AVIF/HEIF/JPEG XL/JPEG 2000 file"),
                (b"\xff\x0a", "a JPEG XL image"), (b"BM", "a BMP image"), (b"II*", "a TIFF image"),
                (b"MM\x00*", "a TIFF image"), (b"P6", "a PPM image"))


def check_is_lic(data: bytes, path: str) -> None:
    """A one-line "not a .lic file" (naming what it looks like) before any other check."""
    if data[:3] == b"LIC":
        return
    what = next((name for magic, name in _IMAGE_MAGIC if data.startswith(magic)), None)
    hint = (f" (it looks like {what}; `lic compress` makes a .lic from an image)" if what
            else " (it does not start with the LIC magic bytes)")
    raise LicError(f"'{path}' is not a .lic file{hint}")


def run(args: argparse.Namespace) -> int:
    # the input is checked first: a wrong input must not be reported as an output problem
    data = read_bytes(args.input, what=".lic file")
    check_is_lic(data, args.input)
    header, sections = unpack(data)  # CRC and structure first: clear message before model load
    out = Path(args.output) if args.output else Path(args.input).with_suffix(".png")
    if out.exists() and out.resolve() == Path(args.input).resolve():
        raise LicError(f"output '{out}' is the input file; give another output name")
    check_output(out, args.force)
    codec = codec_for_file(data, args.input)  # the header's model (the studio's rule too)
    require_available(codec)
    changes = {}
    if args.decoder is not None:
        check_choice(args.decoder, codec.decoders, "decoder", codec)
        changes["decoder"] = args.decoder
    if args.steps is not None:
        if args.steps < 1:
            raise LicError("--steps must be at least 1")
        changes["diffusion_steps"] = args.steps
    if args.seed is not None:
        changes["diffusion_seed"] = args.seed
    if changes:
        data = pack(dataclasses.replace(header, **changes), sections)
    t0 = time.perf_counter()
    kwargs = {}
    if "inspect" in inspect.signature(codec.decode).parameters:
        kwargs["inspect"] = False  # no latent maps: only the picture is written (issue 28)
    result = codec.decode(data, progress=stderr_progress(args.quiet), **kwargs)
    elapsed = time.perf_counter() - t0
    save_image_atomic(result.reconstruction, out, overwrite=args.force)
    if not args.quiet:
        h, w = result.reconstruction.shape[:2]
        dec = changes.get("decoder", header.decoder)
        print(f"{out}: {w}×{h} ({codec.name}, {dec} decoder) in {elapsed:.2f} s")
    return 0
