"""``lic models [--json]``: registered codecs, whether they can run here, and their provenance.

``lic models add NAME compressai:ARCH CHECKPOINT [CHECKPOINT ...]`` records a CompressAI model
the user trained (several checkpoints: the rate points of one model; ``compressai:auto`` guesses
the architecture; ``--zoo-quality Q`` takes a zoo file already in the torch hub cache), ``lic
models remove NAME`` forgets it (:mod:`lic_core.codecs.user_models`).
"""
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
    p = subparsers.add_parser("models", help="list codecs (and models you added); add or "
                                             "remove your own CompressAI models")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=run)
    sub = p.add_subparsers(dest="models_action", metavar="ACTION")
    a = sub.add_parser("add", help="add your CompressAI model (one or more checkpoints)")
    a.add_argument("name", help="the name the model gets in lic and the studio")
    a.add_argument("spec", metavar="compressai:ARCH",
                   help="architecture: compressai:auto (guessed from the weights) or one of "
                        + ", ".join(_arch_names()))
    a.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="checkpoint files (examples/train.py's or update_model's); several = "
                        "the rate points of one model")
    a.add_argument("--zoo-quality", type=int, default=None, metavar="Q",
                   help="also take CompressAI's zoo weights of this quality from the torch hub "
                        "cache (never downloaded)")
    a.add_argument("--zoo-metric", default="mse", choices=("mse", "ms-ssim"))
    a.set_defaults(func=run_add)
    r = sub.add_parser("remove", help="forget a model you added (its files stay)")
    r.add_argument("name")
    r.set_defaults(func=run_remove)


def _arch_names() -> list[str]:
    from ..models.compressai_compat import architecture_names

    return architecture_names()


def run_add(args: argparse.Namespace) -> int:
    from ..codecs.registry import builtin_codecs
    from ..codecs.user_models import add_model

    m = add_model(args.name, args.spec, args.checkpoints, zoo_quality=args.zoo_quality,
                  zoo_metric=args.zoo_metric, reserved=builtin_codecs())
    if m.guessed:
        print(f"architecture guessed: {m.guessed}")
    print(f"added {m.name}: CompressAI {m.arch}, {m.parameters / 1e6:.2f} M parameters, "
          f"{len(m.points)} rate point{'s' if len(m.points) != 1 else ''} (bpp on the sample "
          f"photo: {', '.join(f'{p.bpp:.3f}' for p in m.points)})")
    print(f"use it: lic compress IMAGE --codec {m.name} --rate 1..{len(m.points)}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from ..codecs.user_models import remove_model

    m = remove_model(args.name)
    print(f"removed {m.name} ({len(m.points)} checkpoint(s) left on disk)")
    return 0


def _rate_text(r: dict) -> str:
    lo, hi = r["rate_range"]
    return f"{r['rate_label']} {lo:g}..{hi:g} (default {r['default_rate']:g})"


def describe_block(r: dict) -> list[str]:
    """Readable lines for one codec row: a title line, then aligned ``field  value`` lines."""
    from ..weights import msssim_bd_line, weights_provenance

    desc = r.get("describe", {}) or {}
    state = "available" if r["available"] else f"unavailable: {r['reason']}"
    lines = [f"{r['name']}  ({r['family']}, {state})"]
    fields: list[tuple[str, str]] = []
    if desc.get("label"):
        fields.append(("what", str(desc["label"])))
    if desc.get("kind") == "added model":
        fields += _added_fields(desc)
    elif r["family"] == "learned" and r["available"]:
        # the studio's codec chooser and About card say the same (weights_provenance)
        prov = weights_provenance(desc)
        fields.append(("weights", prov.line))
        if msssim_bd_line(desc):
            fields.append(("ms-ssim", msssim_bd_line(desc)))
        if desc.get("weights_hash"):
            fields.append(("hash", str(desc["weights_hash"])))
        if prov.preview:
            fields.append(("note", prov.words))
    elif desc.get("paper"):
        fields.append(("paper", str(desc["paper"])))
    for key in ("encoder", "decoder", "settings"):  # a classical codec's libraries and set-up
        if desc.get(key) and desc.get("kind") != "added model":
            fields.append((key, str(desc[key])))
    if "rate_range" in r:
        fields.append(("rate", _rate_text(r)))
        if r["quantizers"]:
            fields.append(("quantizers", ", ".join(r["quantizers"])))
        fields += _finetuned_fields(r["name"], desc)
        if r["decoders"]:
            fields.append(("decoders", ", ".join(r["decoders"])))
        if desc.get("gan_decoder"):  # our codec's GAN decoder (issue 26), not HiFiC's
            fields.append(("gan", _gan_text(r["name"])))
        elif desc.get("stale_gan_decoder"):
            fields.append(("gan", f"{desc['stale_gan_decoder']} ignored (trained on other "
                                  "weights; tools/campaign.sh release re-derives it)"))
        if "diffusion" in (r["decoders"] or ()):
            fields.append(("diffusion", _diffusion_text(r["name"])))
        elif desc.get("stale_diffusion_decoder"):
            fields.append(("diffusion", f"{desc['stale_diffusion_decoder']} ignored (conditioned "
                                        "on other weights; tools/campaign.sh release re-derives "
                                        "it)"))
        if "gan" in (r["decoders"] or ()) and isinstance(desc.get("card"), dict):
            fields += _hific_fields(desc["card"])
        fields.append(("file", r["file_extension"]))
    width = max([10] + [len(k) for k, _ in fields])  # same column in every block
    lines += [f"    {k:<{width}}  {v}" for k, v in fields]
    return lines


def _added_fields(desc: dict) -> list[tuple[str, str]]:
    """An added CompressAI model: architecture, size, each checkpoint, which path this codec
    codes on (exact: the same picture everywhere; float: CompressAI's) and its twin."""
    out = [("arch", f"compressai:{desc['architecture']} — {desc.get('paper', '')}".rstrip(" —")),
           ("parameters", f"{desc.get('parameters', 0) / 1e6:.2f} M")]
    if desc.get("guessed"):
        out.append(("guessed", desc["guessed"]))
    for i, c in enumerate(desc.get("checkpoints", []), 1):
        zoo = f", zoo {c['zoo']}" if c.get("zoo") else ""
        out.append((f"point {i}", f"{c['hash']}  {c['bpp_sample']:.3f} bpp on the sample  "
                                  f"{c['path']}{zoo}"))
    out.append(("decoding", desc.get("determinism", "")))
    if desc.get("other_path"):  # the exact and the float path of one model (issue 25)
        other = "float" if desc.get("path") == "exact" else "exact"
        out.append((f"{other} path", f"codec {desc['other_path']}"))
    out.append(("added", f"{desc.get('added', '')}; lic models remove "
                         f"{desc.get('added_model', desc['name'])} forgets it"))
    return out


def _diffusion_text(name: str) -> str:
    """The diffusion decoder's provenance and Kodak LPIPS beside the MSE decoder (its card)."""
    from ..evaluation.generative import diffusion_card_line
    from ..paths import diffusion_weights_path, weights_path
    from ..weights import read_weights_card

    path = diffusion_weights_path(name)
    try:
        card = read_weights_card(path)
    except Exception:  # noqa: BLE001 - an unreadable card is said, not raised
        return f"{path.name}: no readable model card"
    from ..weights import read_weights_hash

    try:
        now = read_weights_hash(weights_path(name))
    except Exception:  # noqa: BLE001 - no codec hash: no staleness check
        now = None
    return diffusion_card_line(card, now) if card else f"{path.name}: no model card"


def _gan_text(name: str) -> str:
    """The GAN decoder's provenance, Kodak LPIPS beside the MSE decoder and its CPU budget."""
    from ..evaluation.generative import gan_card_line
    from ..paths import gan_weights_path, weights_path
    from ..weights import read_weights_card, read_weights_hash

    path = gan_weights_path(name)
    try:
        card = read_weights_card(path)
        now = read_weights_hash(weights_path(name))
    except Exception:  # noqa: BLE001 - an unreadable card is said, not raised
        return f"{path.name}: no readable model card"
    return gan_card_line(card, now) if card else f"{path.name}: no model card"


def _hific_fields(card: dict) -> list[tuple[str, str]]:
    """HiFiC's Kodak figures (its card) and whether it had our diffusion decoder's budget."""
    from ..evaluation.generative import hific_card_line, installed_budget_line

    line = hific_card_line(card)
    kodak = line.split(" · Kodak ", 1)[1] if " · Kodak " in line else "no Kodak table on the card"
    return [("kodak", kodak), ("budget", installed_budget_line()[1])]


def _finetuned_fields(name: str, desc: dict) -> list[tuple[str, str]]:
    """``fine-tuned`` lines: decoders tuned on a quantizer's real latents (docs/methods.md §4.5),
    with what they measured on Kodak, and the ones ignored because they were tuned on other weights;
    a ``tcq tables`` line when designed TCQ rate tables ship for these weights."""
    from ..evaluation.quantizers import quantizer_report

    out = []
    report = quantizer_report(name) if desc.get("finetuned_decoders") else {}
    for q in desc.get("finetuned_decoders") or {}:
        r = report.get(q, {})
        gain = ""
        if r.get("bd_before") is not None and r.get("bd_after") is not None:
            gain = (f" (Kodak: {r['bd_before']:+.1f} % → {r['bd_after']:+.1f} % BD-rate vs "
                    "rounding)")
        out.append(("fine-tuned", f"{q}: decoder tuned on its real quantized latents{gain}"))
    for q, file in (desc.get("stale_finetuned_decoders") or {}).items():
        out.append(("fine-tuned", f"{q}: {file} ignored (tuned on other weights)"))
    tables = (quantizer_report(name).get("tcq") or {}).get("rate_tables")
    if tables:
        order = ", ascending-σ stream order" if tables.get("order") == 1 else ""
        out.append(("tcq tables", f"rate tables designed on {tables.get('crops') or '?'} training "
                                  f"crops (id {tables['id']}{order}), used by default for TCQ"))
    return out


def run(args: argparse.Namespace) -> int:
    rows = codec_table()
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return 0
    if not rows:
        print("no codecs registered")
        return 0
    # learned codecs first (what this tool is about), then classical, each alphabetical
    rows.sort(key=lambda r: (r["family"] != "learned", r["name"]))
    for k, r in enumerate(rows):
        if k:
            print()
        print("\n".join(describe_block(r)))
    print("\nFull model cards: `lic models --json`, the .md cards in lic_core/assets/weights/, "
          "or the studio's About dialog.")
    return 0
