"""``lic models [--json]``: registered codecs, whether they can run here, and their provenance."""
from __future__ import annotations

import argparse
import json

from ..codecs import get_codec, list_codecs
from ..errors import LicError


def codec_table() -> list[dict]:
    """One JSON-able row per registered codec (availability + ``describe()`` provenance)."""
    rows = []
    for name in list_codecs():
        try:
            codec = get_codec(name)
            ok, why = codec.available()
            desc = dict(codec.describe())
        except LicError as exc:  # a codec that cannot even be built is listed, not fatal
            rows.append({"name": name, "family": "?", "available": False, "reason": str(exc)})
            continue
        rows.append({
            "name": name, "family": codec.family, "available": bool(ok), "reason": why or "",
            "rate_label": codec.rate_label, "rate_range": list(codec.rate_range),
            "default_rate": codec.default_rate, "quantizers": list(codec.quantizers),
            "decoders": list(codec.decoders), "file_extension": codec.file_extension,
            "describe": desc,
        })
    return rows


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list codecs, their availability and provenance")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = codec_table()
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return 0
    if not rows:
        print("no codecs registered")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        state = "available" if r["available"] else f"unavailable: {r['reason']}"
        print(f"{r['name']:<{width}}  {r['family']:<9}  {state}")
        if "rate_range" in r:
            lo, hi = r["rate_range"]
            extra = f"    {r['rate_label']} {lo:g}..{hi:g}"
            if r["quantizers"]:
                extra += f"; quantizers {', '.join(r['quantizers'])}"
            if r["decoders"]:
                extra += f"; decoders {', '.join(r['decoders'])}"
            print(" " * width + extra)
        shown = set(r) | {"rate_label", "rate_range"}
        prov = {k: v for k, v in r.get("describe", {}).items() if k not in shown}
        for k, v in sorted(prov.items()):
            print(" " * width + f"    {k}: {v}")
    return 0
