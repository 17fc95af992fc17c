"""Merge fine-tuning export cards into the Kodak quantizer table (issue 16's table).

``tools/campaign.sh --stage finetune-<q> export`` measures, on Kodak with real bitstreams, the
quantizer with the base decoder (``<q>/before``), with the fine-tuned decoder (``<q>/after``)
and rounding; the curves go on the export's card (``runs/campaign/export/<codec>-ft-<q>.json``).
This script merges those curves into ``benchmarks/results/quantizer_kodak_<codec>.json`` (the
same format as ``<codec>.quantizers.json``: curves, BD-rate vs ``round/before``, and vs
``round/after`` once rounding has a fine-tuned decoder — the fair comparison), records where
each row came from under ``sources`` and how long each decoder trained under ``finetuned``, so
the table holds every quantizer × before/after whether or not its decoder was shipped.

    python benchmarks/quantizer_table.py runs/campaign/export/lic-lgem-cpu-ft-round.json [...]
        [--table benchmarks/results/quantizer_kodak_lic-lgem-cpu.json]

Cards measured on other base weights, images or slider points than the table are refused (a
BD-rate across them would compare different things); nothing is measured here. Cards are merged
in the order given, each in one atomic write: an error stops at that card, the earlier ones stay
merged.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _card_fields(card_path: Path) -> tuple[dict, str, dict]:
    """(card, quantizer, eval) of a measured export card, else ``ValueError`` (one line)."""
    card = json.loads(card_path.read_text())
    ev = card.get("eval") if isinstance(card, dict) else None
    q = card.get("quantizer") if isinstance(card, dict) else None
    if not (isinstance(ev, dict) and isinstance(q, str) and isinstance(ev.get("curves"), dict)
            and isinstance(card.get("base_weights_hash"), str)
            and isinstance(ev.get("us"), list) and isinstance(ev.get("images"), list)):
        raise ValueError(f"{card_path} is not a measured fine-tuning export card "
                         "(quantizer, base_weights_hash, eval.curves/us/images)")
    return card, q, ev


def merge_card(table_path: Path, card_path: Path) -> dict:
    """Merge one export card's Kodak curves into the table at ``table_path`` (written once,
    atomically); returns the table. Raises ``ValueError`` (one line) when they do not fit."""
    import datetime as dt

    from lic_core.evaluation.quantizers import bd_table
    from lic_core.fileio import write_bytes_atomic

    card, q, ev = _card_fields(card_path)
    if table_path.is_file():
        try:
            table = json.loads(table_path.read_text())
        except ValueError as e:
            raise ValueError(f"{table_path} is not JSON ({e})") from None
        mine = {"base_weights_hash": card["base_weights_hash"], "us": ev["us"],
                "images": ev["images"]}
        for key, value in mine.items():
            if key not in table:
                raise ValueError(f"{table_path.name} has no '{key}' (not a quantizer table); "
                                 "not merged")
            if table[key] != value:
                raise ValueError(f"{card_path.name}: its {key} differs from {table_path.name}'s; "
                                 "not merged")
    else:
        table = {"base_weights_hash": card["base_weights_hash"], "us": ev["us"],
                 "images": ev["images"], "curves": {}}
    curves = table.setdefault("curves", {})
    # every export re-measures round/before; the table keeps the one it has (equal to the bit:
    # encoding is deterministic), so a card adds its own quantizer's rows
    new = {k: v for k, v in ev["curves"].items()
           if k.startswith(f"{q}/") or k not in curves}
    if "round/before" in curves:
        new.pop("round/before", None)
    curves.update(new)
    if "round/before" in curves:
        rows = bd_table(curves, "round/before")
        table["bd_vs_round_percent"] = {k: v["bd_rate_percent"] for k, v in rows.items()}
        if "bd_vs_round_before" in table:  # quantizer_kodak.py's fuller rows, kept in step
            table["bd_vs_round_before"] = rows
    if "round/after" in curves:  # the fair comparison: rounding with its own tuned decoder too
        table["bd_vs_round_after_percent"] = {
            k: v["bd_rate_percent"] for k, v in bd_table(curves, "round/after").items()}
    sources = table.setdefault("sources", {})
    for key in list(sources):  # rows this card replaces are no longer credited elsewhere
        kept = [r for r in (x.strip() for x in key.split(",")) if r not in new]
        if len(kept) != len(key.split(",")):
            text = sources.pop(key)
            if kept:
                sources[", ".join(kept)] = text
    hours = card.get("cpu_hours")
    if not new:
        raise ValueError(f"{card_path.name} has no {q}/… curves; nothing to merge")
    sources[", ".join(sorted(new))] = (
        f"tools/campaign.sh --stage finetune-{q} export ({card.get('exported')}): decoder "
        f"fine-tuned {card.get('total_steps')} steps"
        + (f", {float(hours):.2f} CPU-h" if isinstance(hours, (int, float)) else ""))
    table.setdefault("quantizer_params", {})[q] = card.get("quantizer_params") or {}
    table.setdefault("finetuned", {})[q] = {
        "steps": card.get("total_steps"), "cpu_hours": hours,
        "bd_vs_own_base_decoder_percent": ev.get("bd_vs_own_base_decoder_percent"),
        "status": card.get("status"), "exported": card.get("exported")}
    table["updated"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
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
            base_model = _card_fields(card_path)[0].get("base_model") or "lic-lgem-cpu"
            table_path = Path(args.table) if args.table else (
                ROOT / "benchmarks" / "results" / f"quantizer_kodak_{base_model}.json")
            table = merge_card(table_path, card_path)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"merged {card_path.name} into {table_path}")
    fair = table.get("bd_vs_round_after_percent") or {}
    print("BD-rate (PSNR) vs rounding with the base decoder"
          + (" | vs rounding with its fine-tuned decoder:" if fair else ":"))
    for key, bd in sorted(table.get("bd_vs_round_percent", {}).items()):
        print(f"  {key:22s} " + ("   n/a" if bd is None else f"{bd:+7.2f} %")
              + ("" if fair.get(key) is None else f"   | {fair[key]:+7.2f} %"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
