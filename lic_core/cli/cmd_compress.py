"""``lic compress IN [OUT] --codec NAME --rate R ...``: encode one image with any registered codec.

Only the codec interface (``lic_core.codecs``) and the image/bitstream modules are used, so a new
codec needs no change here.  Also holds the small helpers the other codec sub-commands share.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

from ..codecs import PREFERRED_LEARNED, Codec, EncodeParams, get_codec, list_codecs
from ..errors import CodecUnavailableError, LicError
from ..fileio import write_bytes_atomic
from ..image import DEFAULT_MAX_PIXELS, load_image

#: learned codecs in order of preference for the default ``--codec``
PREFERRED_CODECS = PREFERRED_LEARNED


def default_codec_name() -> str:
    """The best available learned codec: a preferred one, else the first learned one registered."""
    learned: list[tuple[str, bool]] = []
    for name in list_codecs():
        try:
            codec = get_codec(name)
        except LicError:
            continue
        if codec.family == "learned":
            learned.append((name, bool(codec.available()[0])))
    for pref in PREFERRED_CODECS:
        if (pref, True) in learned:
            return pref
    for name, ok in learned:
        if ok:
            return name
    if learned:
        return learned[0][0]
    raise LicError("no learned codec is installed; choose one with --codec (see `lic models`)")


def require_available(codec: Codec) -> None:
    ok, why = codec.available()
    if not ok:
        raise CodecUnavailableError(f"codec '{codec.name}' cannot run here: {why}")


def parse_param(text: str) -> tuple[str, object]:
    """``key=value`` with value an int, a float, true/false (stored as 1/0)."""
    if "=" not in text:
        raise LicError(f"--quantizer-param expects key=value, got '{text}'")
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key:
        raise LicError(f"--quantizer-param has an empty key: '{text}'")
    low = raw.lower()
    if low in ("true", "false"):
        return key, int(low == "true")
    try:
        return key, int(raw)
    except ValueError:
        pass
    try:
        val = float(raw)
    except ValueError:
        raise LicError(f"--quantizer-param {key}: '{raw}' is not a number") from None
    if val != val or val in (float("inf"), float("-inf")):
        raise LicError(f"--quantizer-param {key}: value must be finite")
    return key, val


def check_choice(value: Optional[str], choices: tuple[str, ...], what: str, codec: Codec) -> None:
    if value is not None and choices and value not in choices:
        raise LicError(f"codec '{codec.name}' has no {what} '{value}' "
                       f"(choose from: {', '.join(choices)})")
    if value is not None and not choices:
        raise LicError(f"codec '{codec.name}' has no {what} choice")


def check_output(path: Path, force: bool) -> None:
    """Fail before the (slow) work when the output exists and --force is not given."""
    if path.is_dir():
        raise LicError(f"'{path}' is a folder, not a file name")
    if path.exists() and not force:
        raise LicError(f"'{path}' already exists (use --force to overwrite it)")


def stderr_progress(quiet: bool):
    """A progress callback that draws one updating line on a terminal (nothing otherwise)."""
    if quiet or not sys.stderr.isatty():
        return None

    def progress(fraction: float, message: str) -> None:
        sys.stderr.write(f"\r{100 * fraction:5.1f}% {message[:60]:<60}")
        sys.stderr.flush()
        if fraction >= 1.0:
            sys.stderr.write("\r" + " " * 68 + "\r")

    return progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compress", help="compress an image with a codec (default: the best learned codec)",
        description="Compress one image. Transparent areas are composited on white, EXIF "
                    "orientation is applied, 16-bit images are scaled to 8 bits.")
    p.add_argument("input", help="image file (PNG, JPEG, WebP, TIFF, ...)")
    p.add_argument("output", nargs="?", default=None,
                   help="output file (default: INPUT with the codec's extension, e.g. .lic)")
    p.add_argument("--codec", default=None,
                   help="codec name (see `lic models`); default: the best available learned codec")
    p.add_argument("--rate", type=float, default=None,
                   help="rate knob: slider u in [0,1] for learned codecs, quality for classical "
                        "ones (default: the codec's default)")
    p.add_argument("--target-bpp", type=float, default=None, metavar="B",
                   help="search the rate whose file is closest to B bits per pixel (instead of "
                        "--rate) and say what it got")
    p.add_argument("--quantizer", default=None,
                   help="learned codecs: round | deadzone | rdoq | tcq (default: round)")
    p.add_argument("--quantizer-param", action="append", default=[], metavar="KEY=VALUE",
                   help="quantizer parameter (repeatable), e.g. --quantizer-param offset=0.2")
    p.add_argument("--decoder", default=None, help="learned codecs: mse | diffusion | gan")
    p.add_argument("--steps", type=int, default=None, help="diffusion decoder steps, written into the file "
                                                          "(default: the decoder's own, 6 for the "
                                                          "CPU-sized decoder)")
    p.add_argument("--seed", type=int, default=None, help="diffusion decoder seed (default 0)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse larger images (default {DEFAULT_MAX_PIXELS}; 0 = no limit)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = args.codec or default_codec_name()
    codec = get_codec(name)
    try:
        require_available(codec)
    except CodecUnavailableError as exc:
        if args.codec:
            raise
        raise CodecUnavailableError(f"{exc}; no learned codec is ready, choose another with "
                                    "--codec (see `lic models`)") from None
    out = Path(args.output) if args.output else Path(args.input).with_suffix(codec.file_extension)
    check_output(out, args.force)

    if args.target_bpp is not None and args.rate is not None:
        raise LicError("give --rate or --target-bpp, not both")
    if args.target_bpp is not None and not (0 < args.target_bpp < 1e3):
        raise LicError(f"--target-bpp must be a positive number of bits per pixel, got "
                       f"{args.target_bpp:g}")
    rate = codec.default_rate if args.rate is None else float(args.rate)
    lo, hi = codec.rate_range
    if not lo <= rate <= hi:
        raise LicError(f"--rate {rate:g} is outside {codec.name}'s range [{lo:g}, {hi:g}] "
                       f"({codec.rate_label})")
    check_choice(args.quantizer, codec.quantizers, "quantizer", codec)
    check_choice(args.decoder, codec.decoders, "decoder", codec)
    if args.quantizer_param and not codec.quantizers:
        raise LicError(f"codec '{codec.name}' takes no quantizer parameters")
    if args.steps is not None and args.steps < 1:
        raise LicError("--steps must be at least 1")
    if args.seed is not None and not 0 <= args.seed < 2 ** 64:
        raise LicError("--seed must be in [0, 2^64)")
    if args.max_pixels is not None and args.max_pixels < 0:
        raise LicError("--max-pixels must be ≥ 0 (0 = no limit)")

    quantizer = args.quantizer or ("round" if "round" in codec.quantizers or not codec.quantizers
                                   else codec.quantizers[0])
    decoder = args.decoder or ("mse" if "mse" in codec.decoders or not codec.decoders
                               else codec.decoders[0])
    # inspect=False: a file needs no latent maps (about 20 bytes per pixel for a big photo)
    params = EncodeParams(rate=rate, quantizer=quantizer,
                          quantizer_params=dict(parse_param(t) for t in args.quantizer_param),
                          decoder=decoder, inspect=False)
    if args.steps is not None:
        params.diffusion_steps = args.steps
    if args.seed is not None:
        params.seed = args.seed

    image = load_image(args.input, max_pixels=args.max_pixels or None)
    h, w = image.shape[:2]
    t0 = time.perf_counter()
    if args.target_bpp is not None:
        from ..evaluation.target_bpp import encode_at_target_bpp

        result, _ = encode_at_target_bpp(codec, image, args.target_bpp, params_template=params,
                                         progress=stderr_progress(args.quiet))
        rate = result.params.rate
    else:
        # hand the photo over: with no reference left here, the codec can free it once it has
        # read it (the learned codec does, before its decoder runs: 3 bytes per pixel).  This
        # relies on CPython ≥ 3.11 moving a call's arguments into the called frame; on older
        # versions the call's argument stack keeps the photo alive, as before.
        photo = [image]
        del image
        result = codec.encode(photo.pop(), params, progress=stderr_progress(args.quiet))
    elapsed = time.perf_counter() - t0
    write_bytes_atomic(out, result.data, overwrite=args.force)
    if not args.quiet:
        bpp = 8 * len(result.data) / (h * w)
        print(f"{out}: {len(result.data)} bytes, {bpp:.4f} bpp ({w}×{h}, {codec.name}, "
              f"rate {rate:g}" + (f", {quantizer}" if codec.quantizers else "")
              + f") in {elapsed:.2f} s"
              + (f"; target {args.target_bpp:g} bpp, closest file "
                 f"{100 * (bpp / args.target_bpp - 1):+.1f} %" if args.target_bpp else ""))
    return 0
