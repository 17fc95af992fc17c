"""Quantizers on Kodak: BD-rate of {round, dead-zone, RDOQ, TCQ} × {before, after fine-tuning}.

Issue "TCQ + fine-tuning" benchmark: every quantizer at the same slider points with real
bitstreams (``lic_core.evaluation.quantizers``), BD-rate (PSNR, pchip) against plain rounding
before fine-tuning, plus the encode time TCQ adds on this machine's CPU threads (and on GPU when
one is present — the trellis itself runs in NumPy on the CPU).

    python benchmarks/quantizer_kodak.py [--codec lic-lgem-cpu] [--limit 24]
        [--rates 0,0.2,0.4,0.6,0.8,1] [--threads 2] [--param tcq:c=0.05 ...]
        [--finetuned-dir DIR]

"after fine-tuning" rows appear for every quantizer with a fine-tuned decoder
``<codec>-ft-<q>.safetensors`` in the weights folder (or ``--finetuned-dir``) that was tuned on
the weights shipped now. TCQ codes with the designed rate tables shipped for the codec's weights
when there are some (``<codec>.tcq-tables.json``, docs/quantizers.md); the variant ``tcq-gauss``
in ``--quantizers`` is TCQ with the Gaussian tables of docs/methods.md §4.4, for the comparison.
Writes benchmarks/results/quantizer_kodak_<codec>.json (``--tag`` adds
a suffix).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _params(items: list[str]) -> dict[str, dict[str, float]]:
    """``["tcq:c=0.05", "rdoq:c=0.08"]`` → ``{"tcq": {"c": 0.05}, "rdoq": {"c": 0.08}}``."""
    out: dict[str, dict[str, float]] = {}
    for item in items:
        q, _, kv = item.partition(":")
        k, _, v = kv.partition("=")
        if not (q and k and v):
            raise SystemExit(f"--param expects QUANTIZER:KEY=VALUE, got {item!r}")
        out.setdefault(q, {})[k] = float(v)
    return out


#: quantizer variants by label: (registry name, parameters it adds)
VARIANTS = {"tcq-gauss": ("tcq", {"tables": 0})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    ap.add_argument("--codec", default=None, help="default: the best shipped learned codec")
    ap.add_argument("--rates", default="0,0.2,0.4,0.6,0.8,1")
    ap.add_argument("--quantizers", default="round,deadzone,rdoq,tcq")
    ap.add_argument("--param", action="append", default=[], metavar="Q:KEY=VALUE",
                    help="quantizer parameter, e.g. tcq:c=0.05 (repeatable)")
    ap.add_argument("--finetuned-dir", default=None)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="", help="suffix of the output file name")
    ap.add_argument("--install-table", action="store_true",
                    help="also merge the curves into <weights dir>/<codec>.quantizers.json "
                         "(the studio's quantizer tooltips; needs the full Kodak set)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--merge", action="store_true",
                    help="keep the curves of quantizers not measured now from the output file "
                         "(when it has the same weights, images and rates); they are marked in "
                         "'merged_from_previous_run'")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from lic_core.codecs import PREFERRED_LEARNED
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.evaluation.quantizers import bd_table, quantizer_curve
    from lic_core.fileio import write_bytes_atomic
    from lic_core.image import load_image
    from lic_core.paths import weights_path

    codec_name = args.codec or next(
        n for n in PREFERRED_LEARNED if weights_path(n).is_file())
    files = sorted(Path(args.kodak).glob("*.png"))[: args.limit or None]
    if not files:
        print(f"no images under {args.kodak}", file=sys.stderr)
        return 2
    images = [load_image(p) for p in files]
    us = [float(r) for r in args.rates.split(",")]
    params = _params(args.param)
    ft_dir = Path(args.finetuned_dir) if args.finetuned_dir else None
    base = LearnedCodec(codec_name, use_finetuned=False)
    tuned = LearnedCodec(codec_name, finetuned_dir=ft_dir)
    curves: dict[str, dict] = {}
    finetuned: dict[str, str] = {}
    for label in args.quantizers.split(","):
        q, extra = VARIANTS.get(label, (label, {}))
        qparams = {**params.get(q, {}), **extra}

        def say(msg: str, key: str = f"{label}/before") -> None:
            print(f"{key:16s} {msg}", flush=True)

        curves[f"{label}/before"] = quantizer_curve(base, images, q, us, qparams, say)
        if tuned._finetuned_hash(q) != tuned.weights_hash:  # a current fine-tuned decoder
            finetuned[q] = tuned._finetuned_hash(q).hex()
            curves[f"{label}/after"] = quantizer_curve(
                tuned, images, q, us, qparams, lambda m, k=label: say(m, f"{k}/after"))
    merged: list[str] = []
    name = f"quantizer_kodak_{codec_name}{('_' + args.tag) if args.tag else ''}.json"
    previous = Path(args.out) / name
    if args.merge and previous.is_file():
        old = json.loads(previous.read_text())
        # this script's own files say weights_hash/rates; tables merged from fine-tuning export
        # cards (benchmarks/quantizer_table.py) say base_weights_hash/us
        if ((old.get("weights_hash") or old.get("base_weights_hash")) == base.weights_hash.hex()
                and (old.get("rates") or old.get("us")) == us
                and old.get("images") == [p.name for p in files]):
            for key, c in old.get("curves", {}).items():
                if key not in curves:
                    curves[key] = c
                    merged.append(key)
        else:
            print(f"--merge: {previous.name} has other weights, images or rates; not merged")
    table = bd_table(curves, "round/before") if "round/before" in curves else {}
    tcq_extra = None
    if "tcq/before" in table and "round/before" in table:
        tcq_extra = table["tcq/before"]["mean_encode_s"] - table["round/before"]["mean_encode_s"]
    result = {"codec": codec_name, "weights_hash": base.weights_hash.hex(),
              "images": [p.name for p in files], "rates": us, "threads": args.threads,
              "quantizer_params": dict(params), "finetuned_decoders": finetuned,
              "tcq_rate_tables": base.tcq_rate_tables(),
              "merged_from_previous_run": merged,
              "stale_finetuned_decoders": tuned.stale_finetuned,
              "cuda": torch.cuda.is_available(), "curves": curves, "bd_vs_round_before": table,
              "tcq_added_encode_s": tcq_extra,
              # the keys of <codec>.quantizers.json, so benchmarks/quantizer_table.py can merge
              # fine-tuning export cards into this file
              "base_weights_hash": base.weights_hash.hex(), "us": us,
              "bd_vs_round_percent": {k: v["bd_rate_percent"] for k, v in table.items()}}
    if merged:  # the kept rows' parameters, where they came from, how long decoders trained
        kept_q = {k.split("/")[0] for k in merged}
        old_params = old.get("quantizer_params") or {}
        for q in kept_q - set(args.quantizers.split(",")):
            if isinstance(old_params.get(q), dict):
                result["quantizer_params"][q] = old_params[q]
        result["finetuned"] = {q: v for q, v in (old.get("finetuned") or {}).items()
                               if q in kept_q}
        sources = {}
        for key, text in (old.get("sources") or {}).items():
            rows = [r.strip() for r in key.split(",") if r.strip() in merged]
            if rows:
                sources[", ".join(rows)] = text
        result["sources"] = sources
    result.setdefault("sources", {})[", ".join(k for k in curves if k not in merged)] = (
        f"benchmarks/quantizer_kodak.py ({dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / name, (json.dumps(result, indent=1) + "\n").encode(), True)
    print(f"\nBD-rate (PSNR) vs rounding before fine-tuning, {len(images)} Kodak images:")
    for key, row in table.items():
        bd = row["bd_rate_percent"]
        print(f"  {key:16s} " + ("    n/a  " if bd is None else f"{bd:+7.2f} %")
              + f"   encode {row['mean_encode_s']:.2f} s")
    if tcq_extra is not None:
        print(f"TCQ adds {tcq_extra:.2f} s per image on {args.threads} CPU threads")
    print(f"wrote {out / name}")
    if args.install_table:
        from lic_core.evaluation.quantizers import merge_quantizer_table, quantizer_table_path

        path = quantizer_table_path(codec_name)
        merge_quantizer_table(path, base.weights_hash.hex(), us, [p.name for p in files],
                              {k: v for k, v in curves.items() if k.split('/')[0] not in VARIANTS})
        print(f"merged into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
