"""``lic info IN.lic [--json]``: every header field, section sizes and bits per pixel."""
from __future__ import annotations

import argparse
import dataclasses
import json

from ..bitstream import layout, unpack
from ..fileio import read_bytes


def describe_file(data: bytes) -> dict:
    """The header fields plus byte accounting of a (verified) .lic file, JSON-able."""
    header, _ = unpack(data)
    lay = layout(data)
    fields = dataclasses.asdict(header)
    fields["weights_hash"] = header.weights_hash.hex()
    fields["rate"] = header.rate
    return {
        "format_version": header.format_version,
        "header": fields,
        "total_bytes": lay.total_bytes,
        "header_bytes": lay.header_bytes,
        "section_bytes": lay.section_bytes,
        "crc_bytes": lay.crc_bytes,
        "bpp": 8 * lay.total_bytes / (header.height * header.width),
    }


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="show the header and sizes of a .lic file",
                              description="Print every header field, section sizes and bpp.")
    p.add_argument("input", help=".lic file")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = describe_file(read_bytes(args.input, what=".lic file"))
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    h = info["header"]
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in sorted(h["quantizer_params"].items())) or "-"
    rows = [
        ("file", args.input),
        ("format", f"LIC v{info['format_version']} (written by LIC Studio {h['lic_version']})"),
        ("model", h["model"]),
        ("weights hash", h["weights_hash"]),
        ("image size", f"{h['width']}×{h['height']} (padded {h['padded_width']}×"
                       f"{h['padded_height']})"),
        ("rate", f"u = {h['rate']:.5f} (u16 {h['rate_u16']})"),
        ("quantizer", f"{h['quantizer']} ({params})"),
        ("decoder", h["decoder"]),
        ("diffusion", f"steps {h['diffusion_steps']}, seed {h['diffusion_seed']}"
                      + (f", tiled sampler {h['diffusion_tile']} px tiles, overlap "
                         f"{h['diffusion_overlap']}" if h["diffusion_tile"] else "")),
        ("checks", f"{len(h['symbol_crcs'])} symbol CRC32s; picture CRC32s: "
                   + (", ".join(p["decoder"] + (f" ({p['steps']} steps, seed {p['seed']})"
                                                if p["decoder"] == "diffusion" else "")
                                for p in h["picture_crcs"]) or "none")),
        ("header", f"{info['header_bytes']} bytes"),
    ]
    from ..codecs.compressai_codec import is_added_model_header

    if is_added_model_header(h["model"]):  # an added model (issue 32), on either path (25)
        from ..codecs.compressai_codec import (
            EXACT_PATH_NOTE,
            EXACT_PREFIX,
            FLOAT_PATH_NOTE,
            codec_names_of,
        )
        from ..codecs.user_models import find_by_hash

        exact = h["model"].startswith(EXACT_PREFIX)
        hit = find_by_hash(h["model"].split(":", 1)[1], h["weights_hash"])
        codec = next((n for n, e in codec_names_of(hit[0]).items() if e == exact), "") \
            if hit else ""
        rows[3] = ("weights hash", h["weights_hash"] + (
            f" (added model '{hit[0].name}', rate point {hit[1] + 1}; decoded by codec "
            f"'{codec}')" if hit else " (no added model has this checkpoint)"))
        rows[5] = ("rate", f"rate point {h['rate_u16'] + 1} of the model that made it")
        rows.append(("decoding", EXACT_PATH_NOTE if exact else FLOAT_PATH_NOTE))
    for i, n in enumerate(info["section_bytes"]):
        rows.append((f"section {i}", f"{n} bytes"))
    rows += [("crc32", f"{info['crc_bytes']} bytes"),
             ("total", f"{info['total_bytes']} bytes, {info['bpp']:.4f} bpp")]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
