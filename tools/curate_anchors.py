"""Regenerate lic_core/assets/anchors/kodak/*.json from the team's copy of the published files.

    python tools/curate_anchors.py [/path/to/shared/anchors]

Each output is one RD curve in CompressAI's results format plus a ``source`` field naming the
file it was copied from (verbatim numbers; only MS-SSIM given in dB is converted back to the
linear scale with ms = 1 - 10^(-dB/10)).  Nothing here is measured by this project.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "lic_core" / "assets" / "anchors"
CAI_COMMIT = "InterDigitalInc/CompressAI@869a9f5d4126d015b7de8f203fe60ee9e1608193"
ELIC_COMMIT = "JiangWeibeta/ELIC@b240a4ca3163a82f9e4c6cce403229d7534d3263"
TFC_COMMIT = "tensorflow/compression@dda8cb4c4364e657d13491227e886ff8014f7243"
ILLM_COMMIT = "facebookresearch/NeuralCompression@3f122808255a2278eea049119367eb3abc434862"

# (output id, CompressAI file, label, family)
COMPRESSAI_KODAK = [
    ("jpeg", "jpeg.json", "JPEG (Pillow 7.1.2, CompressAI)", "classical"),
    ("webp", "webp.json", "WebP (Pillow 7.1.2, CompressAI)", "classical"),
    ("jpeg2000", "jpeg2000.json", "JPEG 2000 (ffmpeg 3.4.6, CompressAI)", "classical"),
    ("bpg444", "bpg_444_x265_ycbcr.json", "BPG 4:4:4 (x265, CompressAI)", "classical"),
    ("av1", "av1.json", "AV1 intra 4:4:4 (aomenc, CompressAI)", "classical"),
    ("hm", "hm.json", "HEVC HM intra 4:4:4 (CompressAI)", "classical"),
    ("vtm", "vtm.json", "VVC VTM intra 4:4:4 (CompressAI)", "classical"),
    ("bmshj2018-factorized", "compressai-bmshj2018-factorized_mse_cuda.json",
     "bmshj2018-factorized (CompressAI, MSE)", "learned"),
    ("bmshj2018-hyperprior", "compressai-bmshj2018-hyperprior_mse_cuda.json",
     "bmshj2018-hyperprior (CompressAI, MSE)", "learned"),
    ("mbt2018-mean", "compressai-mbt2018-mean_mse_cuda.json",
     "mbt2018-mean (CompressAI, MSE)", "learned"),
    ("mbt2018", "compressai-mbt2018_mse_cuda.json", "mbt2018 (CompressAI, MSE)", "learned"),
    ("cheng2020-anchor", "compressai-cheng2020-anchor_mse_cuda.json",
     "cheng2020-anchor (CompressAI, MSE)", "learned"),
    ("minnen2020-cc10", "paper-minnen2020-cc10_mse.json", "minnen2020 channel-AR (paper)",
     "learned"),
    ("cheng2020-checkerboard-6M", "paper-cheng2020-checkerboard-6M_mse.json",
     "checkerboard 6M (He 2021, paper)", "learned"),
]


def _ms_from_db(values):
    return [1.0 - 10.0 ** (-v / 10.0) for v in values]


def _write(curve: dict) -> None:
    out = HERE / "kodak" / f"{curve['id']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cid = curve.pop("id")
    out.write_text(json.dumps(curve, indent=2) + "\n")
    print("wrote", out.relative_to(HERE), cid, len(curve["results"]["bpp"]), "points")


def main(shared: Path) -> None:
    kodak = shared / "compressai" / "image" / "kodak"
    for cid, fname, label, family in COMPRESSAI_KODAK:
        src = json.loads((kodak / fname).read_text())
        res = src["results"]
        keep = {k: res[k] for k in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time",
                                    "decoding_time") if k in res}
        if "ms-ssim-db-rgb" in res and "ms-ssim-rgb" not in res:
            keep["ms-ssim-rgb"] = _ms_from_db(res["ms-ssim-db-rgb"])
        _write({"id": cid, "name": label, "description": src.get("description", ""),
                "source": f"{CAI_COMMIT}:results/image/kodak/{fname}",
                "meta": {"dataset": "kodak", "family": family, "kind": "anchor",
                         "published": True, **({"url": src["meta"]["url"]}
                                               if "meta" in src and src["meta"].get("url")
                                               else {})},
                "results": keep})

    # ELIC official 10 points (columns: MS-SSIM, PSNR, bpp; no header).
    rows = [list(map(float, r)) for r in csv.reader(
        (shared / "elic" / "JiangWeibeta_ELIC_elic_official_kodak.csv").read_text().split())]
    rows.sort(key=lambda r: r[2])
    _write({"id": "elic", "name": "ELIC (He 2022, official points)",
            "description": "official ELIC Kodak results shipped by the ELIC reimplementation repo",
            "source": f"{ELIC_COMMIT}:results/elic_official_kodak.csv",
            "meta": {"dataset": "kodak", "family": "learned", "kind": "anchor",
                     "published": True, "url": "https://arxiv.org/abs/2203.10886"},
            "results": {"bpp": [r[2] for r in rows], "psnr-rgb": [r[1] for r in rows],
                        "ms-ssim-rgb": [r[0] for r in rows]}})

    # HiFiC paper metrics on Kodak (tensorflow/compression models/hific/data.csv).
    with open(shared / "hific" / "tfc_models_hific_data.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "kodak"]
    rows.sort(key=lambda r: float(r["bpp"]))
    _write({"id": "hific", "name": "HiFiC (Mentzer 2020, paper)",
            "description": "HiFiC lo/mi/hi on Kodak, paper metrics",
            "source": f"{TFC_COMMIT}:models/hific/data.csv",
            "meta": {"dataset": "kodak", "family": "generative", "kind": "anchor",
                     "published": True, "url": "https://arxiv.org/abs/2006.09965"},
            "results": {"bpp": [float(r["bpp"]) for r in rows],
                        "psnr-rgb": [float(r["PSNR"]) for r in rows],
                        "ms-ssim-rgb": [float(r["MS-SSIM"]) for r in rows],
                        "lpips": [float(r["LPIPS"]) for r in rows]}})

    # MS-ILLM paper metrics on Kodak (NeuralCompression projects/illm/results.csv, ANCHORS.md
    # §3.5); the shipped kodak/ms-illm.json stays when this copy of the sources lacks the file
    illm = shared / "illm" / "NeuralCompression_projects_illm_results.csv"
    if illm.is_file():
        with open(illm) as f:
            rows = [r for r in csv.DictReader(f)
                    if r["model"] == "MS-ILLM" and r["dataset"] == "kodak"]
        rows.sort(key=lambda r: float(r["bpp"]))
        _write({"id": "ms-illm", "name": "MS-ILLM (Muckley 2023, paper)",
                "description": "MS-ILLM on Kodak, the paper's metrics (no FID on Kodak); "
                               "HiFiC's autoencoder with a latent-conditioned discriminator",
                "source": f"{ILLM_COMMIT}:projects/illm/results.csv (rows MS-ILLM,kodak; "
                          "../shared/anchors/ANCHORS.md §3.5)",
                "meta": {"dataset": "kodak", "family": "generative", "kind": "anchor",
                         "published": True, "url": "https://arxiv.org/abs/2301.11189"},
                "results": {"bpp": [float(r["bpp"]) for r in rows],
                            "psnr-rgb": [float(r["psnr"]) for r in rows],
                            "ms-ssim-rgb": [float(r["ms_ssim"]) for r in rows],
                            "lpips": [float(r["lpips"]) for r in rows]}})
    else:
        print(f"kept kodak/ms-illm.json ({illm.relative_to(shared)} is not in {shared})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "anchors")
