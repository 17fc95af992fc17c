"""BD-rate of our measured classical curves vs the published Kodak anchors.

    PYTHONPATH=. python benchmarks/results/classical/bd_report.py [RESULTS_DIR]

Reads the classical curves RESULTS_DIR/*.json (written by `lic eval`), compares each with the
anchors named in PAIRS (lic_core/assets/anchors/kodak), VTM and BPG, and writes
bd_vs_anchors.json / .md next to them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from lic_core.evaluation.anchors import load_anchors, load_curve
from lic_core.evaluation.compare import bd_rate_curves

HERE = Path(__file__).resolve().parent
# our codec → same-codec published anchor
PAIRS = {"jpeg": "jpeg", "jpeg-444": "jpeg", "webp": "webp", "j2k": "jpeg2000", "avif": "av1",
         "jxl": None, "hevc": "bpg444"}
METRICS = ("psnr", "ms-ssim")


def main(results_dir: Path) -> None:
    rows = []
    for path in sorted(results_dir.glob("*.json")):
        if path.name.startswith("bd_") or \
                json.loads(path.read_text()).get("meta", {}).get("family") != "classical":
            continue  # the learned curves kept here have their own reports
        ours = load_curve(path)
        codec = path.stem
        for metric in METRICS:
            if not ours.has(metric):
                continue
            refs = {}
            same = PAIRS.get(codec)
            for aid in ([same] if same else []) + ["vtm", "bpg444"]:
                found = load_anchors("kodak", metric, names=[aid])
                if found:
                    refs[aid] = round(bd_rate_curves(ours, found[0], metric), 2)
            rows.append({"codec": codec, "metric": metric, "images": json.loads(
                path.read_text())["meta"]["images"], "bd_rate_percent": refs,
                "bpp_range": [round(min(ours.bpp), 3), round(max(ours.bpp), 3)]})
    (results_dir / "bd_vs_anchors.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["# BD-rate of our classical codecs vs published Kodak anchors", "",
             "Negative = ours needs fewer bits for the same quality. Anchors: "
             "lic_core/assets/anchors/kodak (CompressAI Pillow 7.1.2 JPEG/WebP, ffmpeg J2K, "
             "aomenc AV1, VTM, BPG 0.9.8).", "",
             "| codec | metric | vs same-codec anchor | vs VTM | vs BPG444 |", "|---|---|---|---|---|"]
    for r in rows:
        bd = r["bd_rate_percent"]
        same = PAIRS.get(r["codec"])
        fmt = lambda v: "n/a" if v is None else f"{v:+.1f} %"
        lines.append(f"| {r['codec']} | {r['metric']} | "
                     f"{fmt(bd.get(same)) + (f' ({same})' if same else '')} | "
                     f"{fmt(bd.get('vtm'))} | {fmt(bd.get('bpg444'))} |")
    (results_dir / "bd_vs_anchors.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
