"""The Kodak table of the generative decoders (issues 13, 26): bpp, PSNR, MS-SSIM, LPIPS per
slider point for our MSE, GAN and diffusion decoders on the **same bitstreams** (one file per
image and slider point, three pictures), for hific-small at matched rates, and the published
Kodak points of HiFiC (Mentzer et al. 2020) and MS-ILLM (Muckley et al. 2023) as anchors — with
the installed weights.

    python benchmarks/generative_kodak.py [--kodak ../shared/data/kodak] [--limit N]
        [--rates 0,0.2,0.4,0.6,0.8,1] [--codec lic-lgem-cpu] [--threads 1]
        [--rows mse,gan,diffusion,hific] [--reuse benchmarks/results/generative_kodak.json]
        [--from-cards] [--out benchmarks/results/generative_kodak.json]

Each row that has no weights here is skipped with the reason (the campaign's ``--stage
diffusion`` / ``--stage gan`` / ``--stage hific`` train them, docs/training.md). ``--rows``
measures only some rows; ``--reuse`` keeps the other rows of an earlier result file (the JSON
says which rows were reused and from where; only do so for unchanged weights: e.g. after the GAN
decoder is installed, ``--rows mse,gan --reuse ...`` skips the slow diffusion decodes).
``--from-cards`` takes our three rows from the installed GAN and diffusion decoder cards, whose
exports decoded the same files of the installed weights (checked: the same weights, images and
slider points, and MSE rows that agree exactly; the JSON names the cards). Writes
the JSON and a markdown table beside it (``.md``). The same evaluation fills the campaign's model
cards (:func:`lic_core.evaluation.generative.evaluate_decoders`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "generative_kodak.json"


def main(argv=None) -> int:
    from lic_core.codecs import get_codec
    from lic_core.evaluation.generative import (
        DEFAULT_US,
        evaluate_decoders,
        kodak_table_md,
        published_anchors,
        published_hific,
    )
    from lic_core.paths import shared_dir
    from lic_core.threads import apply_threads

    shared = shared_dir() or Path(os.environ.get("LIC_SHARED_DIR", ROOT.parent / "shared"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kodak", default=str(Path(shared) / "data" / "kodak"))
    p.add_argument("--limit", type=int, default=None, help="first N images (default all)")
    p.add_argument("--rates", default=",".join(f"{u:g}" for u in DEFAULT_US))
    p.add_argument("--codec", default=None,
                   help="our learned codec (default: the first shipped one with a diffusion "
                        "decoder, else the first shipped one)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rows", default=",".join(ROWS),
                   help="rows to measure: mse, gan, diffusion (our decoders, one file each), "
                        "hific ('none': measure nothing, only rewrite the table with --reuse)")
    p.add_argument("--reuse", default=None,
                   help="an earlier result JSON whose rows are kept where not measured now")
    p.add_argument("--from-cards", action="store_true",
                   help="take our MSE, GAN and diffusion rows from the installed decoders' cards "
                        "instead of decoding again: each card measured the same files (our "
                        "encoder is deterministic) on these weights; refused unless the cards "
                        "name the installed codec weights, the same images and slider points, "
                        "and their MSE rows agree")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    apply_threads(args.threads)
    us = [float(v) for v in args.rates.split(",")]
    want = set() if args.rows == "none" else {r.strip() for r in args.rows.split(",") if r}
    if want - set(ROWS):
        p.error(f"--rows: unknown {', '.join(sorted(want - set(ROWS)))} (choose {', '.join(ROWS)})")
    if want and not Path(args.kodak).is_dir():
        print(f"Kodak folder not found: {args.kodak}")
        return 0
    rows, skipped, meta = {}, {}, {}
    if args.codec is None:
        from lic_core.codecs import PREFERRED_LEARNED

        avail = [n for n in PREFERRED_LEARNED if get_codec(n).available()[0]]
        with_diffusion = [n for n in avail if "diffusion" in get_codec(n).decoders]
        args.codec = (with_diffusion or avail or list(PREFERRED_LEARNED))[0]
    ours = get_codec(args.codec)
    ok, why = ours.available()
    if not ok:
        skipped[args.codec] = why
    elif args.from_cards:
        try:
            got, m = rows_from_cards(args.codec, us)
        except ValueError as e:
            print(f"error: --from-cards: {e}", file=sys.stderr)
            return 2
        rows.update({k: v for k, v in got.items()})
        meta[args.codec] = m
    elif want & {"mse", "gan", "diffusion"}:
        # the MSE decoder makes the files; the GAN and diffusion decoders decode those bytes
        decs = ["mse"] + [d for d in ("gan", "diffusion") if d in want and d in ours.decoders]
        for d in ("gan", "diffusion"):
            if d in want and d not in ours.decoders:
                skipped[f"{args.codec} {d} decoder"] = (
                    f"no trained {d} decoder for these weights (tools/campaign.sh --stage {d})")
        t0 = time.perf_counter()
        ev = evaluate_decoders(ours, args.kodak, us, decs, args.limit)
        meta[args.codec] = {"images": ev["images"], "steps": ev["steps"], "seed": ev["seed"],
                            "decoders": decs, "seconds": round(time.perf_counter() - t0, 1)}
        for d in decs:
            rows[f"{args.codec} {LABELS[d]}"] = ev["points"][d]
    hific = get_codec("hific-small")
    ok, why = hific.available()
    if "hific" not in want:
        pass
    elif not ok:
        skipped["hific-small"] = why
    else:
        t0 = time.perf_counter()
        ev = evaluate_decoders(hific, args.kodak, us, ("gan",), args.limit)
        meta["hific-small"] = {"images": ev["images"], "seconds": round(time.perf_counter() - t0, 1)}
        rows["hific-small"] = ev["points"]["gan"]
    reused = _reuse(args.reuse, rows, meta) if args.reuse else {}
    rows = {k: rows[k] for k in sorted(rows, key=lambda k: _order(k, args.codec))}
    pub = published_hific()
    anchors = published_anchors()
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    table = kodak_table_md(rows, (), anchors)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "published_hific": pub, "published": anchors,
                               "skipped": skipped, "meta": meta, "reused": reused,
                               "rates": us}, indent=1) + "\n")
    out.with_suffix(".md").write_text(table)
    print(f"wrote {out} and {out.with_suffix('.md').name}")
    return 0


ROWS = ("mse", "gan", "diffusion", "hific")
LABELS = {"mse": "MSE decoder", "gan": "GAN decoder", "diffusion": "diffusion decoder"}


def _order(label: str, codec: str) -> tuple[int, str]:
    """Table order: our MSE, GAN, diffusion rows, then hific-small, then anything else."""
    for i, d in enumerate(("mse", "gan", "diffusion")):
        if label == f"{codec} {LABELS[d]}":
            return i, label
    return (3 if label.startswith("hific") else 4), label


def rows_from_cards(codec: str, us: list) -> tuple[dict, dict]:
    """Our three rows from the installed GAN and diffusion decoder cards: ``(rows, meta)``.

    Each card's export decoded the same bitstreams with the MSE decoder and with its own, so the
    two MSE rows must agree to the last digit (the encoder is exact); anything else — other codec
    weights than those installed, other images or slider points — raises ``ValueError``."""
    from lic_core.paths import diffusion_weights_path, gan_weights_path, weights_path
    from lic_core.weights import read_weights_card, read_weights_hash

    base = read_weights_hash(weights_path(codec))
    cards = {}
    for d, path in (("gan", gan_weights_path(codec)), ("diffusion", diffusion_weights_path(codec))):
        if not path.is_file():
            raise ValueError(f"no installed {d} decoder ({path.name})")
        card = read_weights_card(path)
        h = card.get("base_weights_hash") or card.get("codec_weights_hash")
        if h != base:
            raise ValueError(f"{path.name} was measured on {codec} {h}, installed is {base}")
        cards[d] = (path, card)
    ev = {d: c["eval"] for d, (_, c) in cards.items()}
    if ev["gan"]["images"] != ev["diffusion"]["images"]:
        raise ValueError("the two cards were measured on different images")
    mse = {d: e["rows"]["MSE decoder (g_s)"] for d, e in ev.items()}
    for d, pts in mse.items():
        if [round(float(p["u"]), 6) for p in pts] != [round(u, 6) for u in us]:
            raise ValueError(f"the {d} card's slider points are not {us}")
    if mse["gan"] != mse["diffusion"]:
        raise ValueError("the cards' MSE rows differ: they did not decode the same files")
    rows = {f"{codec} {LABELS['mse']}": mse["gan"],
            f"{codec} {LABELS['gan']}": ev["gan"]["rows"]["GAN decoder"],
            f"{codec} {LABELS['diffusion']}": ev["diffusion"]["rows"]["diffusion decoder"]}
    meta = {"images": ev["gan"]["images"], "decoders": ["mse", "gan", "diffusion"],
            "from_cards": {d: {"file": p.name, "weights_hash": read_weights_hash(p),
                               "exported": c.get("exported")} for d, (p, c) in cards.items()},
            "steps": ev["diffusion"].get("steps"), "seed": ev["diffusion"].get("seed")}
    return rows, meta


def _reuse(path: str, rows: dict, meta: dict) -> dict:
    """Copy the rows (and their meta) of an earlier result file that were not measured now;
    returns ``{row label: file}`` of what was reused."""
    old = json.loads(Path(path).read_text())
    reused = {}
    for label, pts in (old.get("rows") or {}).items():
        if label not in rows:
            rows[label] = pts
            reused[label] = str(path)
    for key, m in (old.get("meta") or {}).items():
        meta.setdefault(key, m)
    return reused


if __name__ == "__main__":
    raise SystemExit(main())
