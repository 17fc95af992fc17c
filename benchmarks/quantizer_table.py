"""Merge fine-tuning export cards into the Kodak quantizer table (issue 16's table).

``tools/campaign.sh --stage finetune-<q> export`` measures, on Kodak with real bitstreams, the
quantizer with the base decoder (``<q>/before``), with the fine-tuned decoder (``<q>/after``)
and rounding; the curves go on the export's card (``runs/campaign/export/<codec>-ft-<q>.json``).
This script merges those curves into ``benchmarks/results/quantizer_kodak_<codec>.json`` (the
same format as ``<codec>.quantizers.json``: curves, BD-rate vs ``round/before``), records where
each row came from under ``sources`` and how long each decoder trained under ``finetuned``, so
the table holds every quantizer × before/after whether or not its decoder was shipped.

    python benchmarks/quantizer_table.py runs/campaign/export/lic-lgem-cpu-ft-round.json [...]
        [--table benchmarks/results/quantizer_kodak_lic-lgem-cpu.json]

Cards measured on other base weights, images or slider points than the table are refused (a
BD-rate across them would compare different things); nothing is measured here.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def merge_card(table_path: Path, card_path: Path) -> dict:
    """Merge one export card's Kodak curves into the table at ``table_path``; returns the table.

    Raises ``ValueError`` (one line) when the card does not fit the table."""
    from lic_core.evaluation.quantizers import merge_quantizer_table
    from lic_core.fileio import write_bytes_atomic

    card = json.loads(card_path.read_text())
    ev = card.get("eval")
    q = card.get("quantizer")
    if not isinstance(ev, dict) or not q or "curves" not in ev:
        raise ValueError(f"{card_path} is not a measured fine-tuning export card")
    if table_path.is_file():
        old = json.loads(table_path.read_text())
        for key, mine in (("base_weights_hash", card.get("base_weights_hash")),
                          ("us", ev.get("us")), ("images", ev.get("images"))):
            if old.get(key) != mine:
                raise ValueError(f"{card_path.name}: its {key} differs from {table_path.name}'s; "
                                 "not merged")
    # round/before is re-measured by every export; the table keeps the first (they are equal to
    # the bit: encoding is deterministic), so a card only adds its own quantizer's rows
    curves = {k: v for k, v in ev["curves"].items()
              if k.startswith(f"{q}/") or not table_path.is_file()}
    table = merge_quantizer_table(table_path, card["base_weights_hash"], ev["us"],
                                  ev["images"], curves)
    table.setdefault("sources", {})[f"{q}/before, {q}/after"] = (
        f"tools/campaign.sh --stage finetune-{q} export ({card.get('exported')}): decoder "
        f"fine-tuned {card.get('total_steps')} steps, {card.get('cpu_hours', 0):.2f} CPU-h")
    table.setdefault("quantizer_params", {})[q] = card.get("quantizer_params") or {}
    table.setdefault("finetuned", {})[q] = {
        "steps": card.get("total_steps"), "cpu_hours": card.get("cpu_hours"),
        "bd_vs_own_base_decoder_percent": ev.get("bd_vs_own_base_decoder_percent"),
        "status": card.get("status"), "exported": card.get("exported")}
    write_bytes_atomic(table_path, (json.dumps(table, indent=1, sort_keys=True) + "\n").encode(),
                       True)
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cards", nargs="+", help="export cards (<codec>-ft-<q>.json)")
    ap.add_argument("--table", default=None,
                    help="default: benchmarks/results/quantizer_kodak_<card's base model>.json")
    args = ap.parse_args(argv)
    for c in args.cards:
        card_path = Path(c)
        try:
            base_model = json.loads(card_path.read_text()).get("base_model") or "lic-lgem-cpu"
            table_path = Path(args.table) if args.table else (
                ROOT / "benchmarks" / "results" / f"quantizer_kodak_{base_model}.json")
            table = merge_card(table_path, card_path)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"merged {card_path.name} into {table_path}")
    print("BD-rate (PSNR) vs rounding with the base decoder:")
    for key, bd in sorted(table.get("bd_vs_round_percent", {}).items()):
        print(f"  {key:22s} " + ("   n/a" if bd is None else f"{bd:+7.2f} %"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
