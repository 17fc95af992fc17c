"""What the exact path costs for added CompressAI models (issue 25; docs/compressai.md): Kodak
through CompressAI's own float ``compress``/``decompress``, our float path (``NAME:float``: the
same arithmetic, our range coder and ``.lic`` file) and our exact path (``NAME``: the picture is
the same on every machine).

For every added model named (one per architecture: ``bmshj2018-hyperprior``, ``mbt2018-mean``,
``mbt2018``), every checkpoint (rate point) and every image: bits per pixel — CompressAI's
strings, our streams (the z and y sections) and our whole file (header and check values
included) —, PSNR of the 8-bit picture, encode and decode time (``--threads``, default 1 as
CompressAI's ``eval_model`` on the CPU).  The image is padded as ``eval_model`` pads (centred
zeros to a multiple of 64); bpp counts the original pixels.

BD-rate of the exact path against CompressAI's float ``compress`` (PSNR, Kodak means per rate
point): with two or more checkpoints the Bjøntegaard rate (pchip, ``lic_core.evaluation.bdrate``);
with one checkpoint there is no curve, so the rate difference at equal PSNR is taken along the
slope d ln(bpp)/dPSNR of the architecture's published CompressAI Kodak curve
(``lic_core/assets/anchors/kodak/<arch>.json``) at the measured PSNR:
``ΔR = (bpp_exact / bpp_compressai)·exp(−slope·ΔPSNR) − 1`` (method ``"one point, anchor
slope"`` in the JSON).  Both on streams (the arithmetic and the coder) and on whole files.

    python benchmarks/byom_exact.py --models my-hp,my-mean,my-joint [--kodak ../shared/data/kodak]
        [--limit N] [--threads 1] [--out benchmarks/results/byom_exact.json]

Needs compressai (the test environment's).  Prints a table and writes JSON (default
``benchmarks/results/byom_exact.json``; ``--limit`` runs get ``_limitN`` in the name).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

#: our architecture names → CompressAI's classes
COMPRESSAI_CLASSES = {"bmshj2018-hyperprior": "ScaleHyperprior",
                      "mbt2018-mean": "MeanScaleHyperprior",
                      "mbt2018": "JointAutoregressiveHierarchicalPriors"}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def compressai_net(arch: str, path: str):
    """CompressAI's own model from a checkpoint, as ``eval_model -a ARCH checkpoint`` loads it:
    ``from_state_dict`` then ``update(force=True)``."""
    import compressai.models as cm

    obj = torch.load(path, map_location="cpu", weights_only=True)
    sd = obj
    for key in ("network", "state_dict"):
        if isinstance(obj, dict) and key in obj:
            sd = obj[key]
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    net = getattr(cm, COMPRESSAI_CLASSES[arch]).from_state_dict(sd).eval()
    net.update(force=True)
    return net


def _nbytes(strings) -> int:
    if isinstance(strings, (bytes, bytearray)):
        return len(strings)
    return sum(_nbytes(s) for s in strings)


def run_compressai(net, img: np.ndarray) -> dict:
    """CompressAI's float compress/decompress of one picture (its eval_model's padding)."""
    import torch.nn.functional as F

    from lic_core.image.tensor import to_tensor, to_uint8
    from lic_core.models.compressai_compat.base import centred_padding, crop

    h, w = img.shape[:2]
    pad = centred_padding(h, w)
    x = F.pad(to_tensor(img), pad, mode="constant", value=0)
    with torch.no_grad():
        t0 = time.perf_counter()
        enc = net.compress(x)
        t1 = time.perf_counter()
        dec = net.decompress(enc["strings"], enc["shape"])
        t2 = time.perf_counter()
    pic = to_uint8(crop(dec["x_hat"], pad))
    n = _nbytes(enc["strings"])
    return {"bytes": n, "bpp": 8.0 * n / (h * w), "psnr": psnr(img, pic),
            "encode_s": t1 - t0, "decode_s": t2 - t1}


def run_ours(codec, img: np.ndarray, point: int) -> dict:
    """Our codec (exact or float path): whole file and streams, the decoded picture."""
    from lic_core.bitstream import layout
    from lic_core.codecs import EncodeParams

    h, w = img.shape[:2]
    t0 = time.perf_counter()
    enc = codec.encode(img, EncodeParams(rate=float(point + 1)))
    t1 = time.perf_counter()
    dec = codec.decode(enc.data)
    t2 = time.perf_counter()
    if not np.array_equal(dec.reconstruction, enc.reconstruction):
        raise SystemExit(f"{codec.name}: the decoded picture is not the encoder's")
    lay = layout(enc.data)
    streams = sum(lay.section_bytes)
    return {"bytes": len(enc.data), "bpp": 8.0 * len(enc.data) / (h * w),
            "stream_bytes": streams, "stream_bpp": 8.0 * streams / (h * w),
            "psnr": psnr(img, dec.reconstruction), "encode_s": t1 - t0, "decode_s": t2 - t1}


def anchor_slope(arch: str, at_psnr: float) -> float:
    """d ln(bpp) / dPSNR of CompressAI's published Kodak curve of ``arch`` at ``at_psnr`` (the
    segment containing it; the end segments beyond the curve)."""
    d = json.loads((ROOT / "lic_core" / "assets" / "anchors" / "kodak" / f"{arch}.json")
                   .read_text())
    bpp = np.asarray(d["results"]["bpp"], dtype=np.float64)
    q = np.asarray(d["results"]["psnr-rgb"], dtype=np.float64)
    order = np.argsort(q)
    q, lb = q[order], np.log(bpp[order])
    i = int(np.clip(np.searchsorted(q, at_psnr) - 1, 0, len(q) - 2))
    return float((lb[i + 1] - lb[i]) / (q[i + 1] - q[i]))


def bd_rate(arch: str, ref: list[tuple[float, float]], test: list[tuple[float, float]]) -> dict:
    """BD-rate (%) of ``test`` against ``ref`` ((bpp, PSNR) per rate point; see the module
    docstring for the one-point case)."""
    from lic_core.evaluation.bdrate import BDRateError
    from lic_core.evaluation.bdrate import bd_rate as bjontegaard

    if len(ref) >= 2:
        try:
            v = bjontegaard([r for r, _ in ref], [q for _, q in ref],
                            [r for r, _ in test], [q for _, q in test])
            return {"bd_rate_pct": float(v), "method": "Bjøntegaard (pchip)"}
        except BDRateError as exc:
            return {"bd_rate_pct": None, "method": f"undefined ({exc})"}
    (r0, q0), (r1, q1) = ref[0], test[0]
    slope = anchor_slope(arch, q0)
    return {"bd_rate_pct": 100.0 * ((r1 / r0) * math.exp(-slope * (q1 - q0)) - 1.0),
            "method": "one point, anchor slope", "slope_ln_bpp_per_db": slope}


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def main(argv=None) -> int:
    from lic_core.paths import shared_dir

    kodak = os.environ.get("LIC_KODAK",
                           str((shared_dir() or ROOT.parent / "shared") / "data" / "kodak"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True,
                    help="added models (lic models add), comma-separated, one per architecture")
    ap.add_argument("--kodak", default=kodak)
    ap.add_argument("--limit", type=int, default=24, help="first N Kodak images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    from lic_core.codecs import get_codec
    from lic_core.codecs.compressai_codec import FLOAT_SUFFIX, has_exact_path, user_codecs
    from lic_core.image.io import load_image

    torch.set_num_threads(a.threads)
    images = sorted(Path(a.kodak).glob("*.png"))[: a.limit]
    if not images:
        raise SystemExit(f"byom_exact.py: no PNG images in {a.kodak} (use --kodak)")
    added = user_codecs()
    report = {"args": vars(a), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "load_average_before": os.getloadavg(), "images": [p.name for p in images],
              "models": {}}
    for name in [n for n in a.models.split(",") if n]:
        um = added.get(name)
        if um is None:
            raise SystemExit(f"byom_exact.py: no added model '{name}' (lic models add …)")
        if not has_exact_path(um.arch):
            raise SystemExit(f"byom_exact.py: {name} is {um.arch}, which has no exact path")
        exact, flt = get_codec(name), get_codec(name + FLOAT_SUFFIX)
        points = []
        for i, rp in enumerate(um.points):
            net = compressai_net(um.arch, rp.path)
            exact.engine(i)  # loading and quantizing are not coding time (nor is update())
            flt.engine(i)
            rows = []
            for path in images:
                img = load_image(path)
                row = {"image": path.name, "compressai": run_compressai(net, img),
                       "exact": run_ours(exact, img, i), "float": run_ours(flt, img, i)}
                rows.append(row)
                c, e = row["compressai"], row["exact"]
                print(f"{name} point {i + 1} {path.name}: CompressAI {c['bpp']:.4f} bpp "
                      f"{c['psnr']:.3f} dB | exact {e['stream_bpp']:.4f} bpp (file "
                      f"{e['bpp']:.4f}) {e['psnr']:.3f} dB | dec {c['decode_s']:.2f}s → "
                      f"{e['decode_s']:.2f}s", flush=True)
            means = {k: {m: _mean([r[k] for r in rows], m) for m in rows[0][k]}
                     for k in ("compressai", "exact", "float")}
            points.append({"point": i + 1, "checkpoint": rp.path, "hash": rp.model_hash,
                           "means": means, "rows": rows})
        ref = [(p["means"]["compressai"]["bpp"], p["means"]["compressai"]["psnr"]) for p in points]
        curves = {"exact_streams": [(p["means"]["exact"]["stream_bpp"], p["means"]["exact"]["psnr"])
                                    for p in points],
                  "exact_file": [(p["means"]["exact"]["bpp"], p["means"]["exact"]["psnr"])
                                 for p in points],
                  "float_streams": [(p["means"]["float"]["stream_bpp"], p["means"]["float"]["psnr"])
                                    for p in points]}
        report["models"][name] = {
            "architecture": um.arch, "points": points,
            "bd_rate_vs_compressai": {k: bd_rate(um.arch, ref, v) for k, v in curves.items()}}
    report["load_average_after"] = os.getloadavg()
    _print_table(report)
    tag = f"_limit{a.limit}" if a.limit < 24 else ""
    out = Path(a.out) if a.out else ROOT / "benchmarks" / "results" / f"byom_exact{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


def _print_table(report: dict) -> None:
    print(f"\nKodak ({len(report['images'])} images), {report['threads']} thread(s), "
          f"{report['cpu_capability']}; means per checkpoint")
    head = ("model", "pt", "CompressAI bpp", "dB", "exact bpp (file)", "dB", "float bpp", "dB",
            "enc s: CAI/exact", "dec s: CAI/exact/float")
    print(" | ".join(head))
    for name, m in report["models"].items():
        for p in m["points"]:
            c, e, f = (p["means"][k] for k in ("compressai", "exact", "float"))
            print(f"{name} ({m['architecture']}) | {p['point']} | {c['bpp']:.4f} | "
                  f"{c['psnr']:.3f} | {e['stream_bpp']:.4f} ({e['bpp']:.4f}) | {e['psnr']:.3f} | "
                  f"{f['stream_bpp']:.4f} | {f['psnr']:.3f} | {c['encode_s']:.2f}/"
                  f"{e['encode_s']:.2f} | {c['decode_s']:.2f}/{e['decode_s']:.2f}/"
                  f"{f['decode_s']:.2f}")
        for k, v in m["bd_rate_vs_compressai"].items():
            pct = "n/a" if v["bd_rate_pct"] is None else f"{v['bd_rate_pct']:+.3f} %"
            print(f"    BD-rate {k} vs CompressAI float: {pct} ({v['method']})")


if __name__ == "__main__":
    sys.exit(main())
