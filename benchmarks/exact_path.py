"""The reproducible entropy-parameter path (lic_core.exact) against today's float path (issue 11).

Four measurements on the shipped preview weights (docs/determinism.md):

1. ``cause``  — float path: a file's (group, pass) scale indices, means and Φ_h computed with 1
   torch thread vs 2 and 4 threads (same symbols replayed, i.e. what a decoder sees), with and
   without oneDNN; plus real .lic files encoded on 1 thread and decoded on 2.
2. ``exact``  — separate processes with 1, 2, 4 threads: digests of the exact path (Φ_h, scale
   indices, means, ŷ, symbols, uint8 picture) and of the float path (Φ_h, σ, g_s picture).
3. ``cost``   — estimated bits (Σ −log2 p of the coded symbols under the table pmf, + z bits) and
   PSNR of exact vs float on the first Kodak images at several rates; BD-rate; timing of the
   parameter path and of g_s on ``--threads`` threads.
4. ``sweep``  — rate/PSNR change and index agreement for other precisions (F, weight bits).

    python benchmarks/exact_path.py [--kodak ../shared/data/kodak] [--images 6]
        [--rates 0.1,0.5,0.9] [--threads 2] [--parts cause,exact,cost,sweep]

Prints tables and writes benchmarks/results/exact_path_<model>.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lic_core.codecs.learned import quantized_latents  # noqa: E402
from lic_core.entropy_coder import z_bits  # noqa: E402
from lic_core.entropy_model.gaussian import scale_index as float_scale_index  # noqa: E402
from lic_core.exact import ExactConfig, ExactEntropyParameters, ExactSynthesis  # noqa: E402
from lic_core.exact.fingerprint import exact_fingerprint  # noqa: E402
from lic_core.exact.tables import table_std as exact_table_std  # noqa: E402
from lic_core.image.io import load_image  # noqa: E402
from lic_core.image.tensor import crop, pad_to_multiple, to_tensor, to_uint8  # noqa: E402
from lic_core.metrics.psnr import psnr  # noqa: E402
from lic_core.models import load_model  # noqa: E402
from lic_core.quantizer import build_quantizer  # noqa: E402
from lic_core.quantizer.scalar import SYMBOL_BOUND, gaussian_bits, table_std  # noqa: E402

CAUSE_IMAGES = ("kodim01.png", "kodim19.png", "kodim23.png")


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def _image(path: Path) -> tuple[np.ndarray, torch.Tensor]:
    img = load_image(path)
    x, _ = pad_to_multiple(to_tensor(img), 64)
    return img, x


def _float_encode(model, x, u):
    """Float path, rounding: per-(g, p) symbols, scale indices, float σ·G and μ·G."""
    steps = {}

    def hook(g, p, idx, scale):
        steps[(g, p)] = {"q": idx.clone(), "index": float_scale_index(scale), "scale": scale.clone()}

    out = quantized_latents(model, x, u, build_quantizer("round"), step_hook=hook)
    return out, steps


def _float_replay(model, out, steps, u):
    """Float parameter path as a decoder runs it (symbols replayed)."""
    gains = model._gains(u, 1, "cpu")
    z_hat = out["z_symbols"].float() + model.prior.medians()[None, :, None, None]
    phi = model.hyper_features(z_hat, gains)
    seen = {}

    def step(g, p, res, scale):
        seen[(g, p)] = {"index": float_scale_index(scale), "scale": scale.clone()}
        return steps[(g, p)]["q"].float()

    res = model.latent_passes(phi, gains, step)
    return phi, seen, res


# -- 1. cause ---------------------------------------------------------------------------------
def part_cause(args, model) -> dict:
    from lic_core.codecs import EncodeParams
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.errors import LicError

    rows = []
    for onednn in (True, False):
        for name in CAUSE_IMAGES:
            _, x = _image(Path(args.kodak) / name)
            with torch.backends.mkldnn.flags(enabled=onednn):
                torch.set_num_threads(1)
                out, steps = _float_encode(model, x, 0.5)
                phi1, _, _ = _float_replay(model, out, steps, 0.5)
                for threads in (2, 4):
                    torch.set_num_threads(threads)
                    phi, seen, res = _float_replay(model, out, steps, 0.5)
                    per = {f"g{g}p{p}": int((seen[(g, p)]["index"] != s["index"]).sum())
                           for (g, p), s in steps.items()}
                    n = sum(s["index"].numel() for s in steps.values())
                    row = {"image": name, "onednn": onednn, "threads": threads,
                           "index_diffs": sum(per.values()), "symbols": n,
                           "index_diffs_per_step": {k: v for k, v in per.items() if v},
                           "scale_float_diffs": sum(int((seen[k]["scale"] != s["scale"]).sum())
                                                    for k, s in steps.items()),
                           "mean_float_diffs": int((res["means"] != out["means"]).sum()),
                           "phi_float_diffs": int((phi != phi1).sum()), "phi_elems": phi.numel(),
                           "max_rel_scale_diff": max(float(((seen[k]["scale"] - s["scale"]).abs()
                                                            / s["scale"]).max()) for k, s in steps.items())}
                    rows.append(row)
                    print(f"cause {name} oneDNN={onednn} 1→{threads} threads: "
                          f"{row['index_diffs']}/{n} indices differ, "
                          f"{row['scale_float_diffs']} σ·G and {row['mean_float_diffs']} μ·G floats "
                          f"differ, Φ_h {row['phi_float_diffs']}/{row['phi_elems']}", flush=True)
    # real files: encode on 1 thread, decode on 2 and 4 (same process)
    codec = LearnedCodec("lic-lgem-preview", model=model)
    files = []
    for name in CAUSE_IMAGES:
        img, _ = _image(Path(args.kodak) / name)
        torch.set_num_threads(1)
        data = codec.encode(img, EncodeParams(rate=0.5, quantizer="round")).data
        ref = None
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            try:
                dec = codec.decode(data)
                pic, y_hat = dec.reconstruction, dec.inspection.y_hat
                if ref is None:
                    ref, ref_y, status = pic, y_hat, "ok"
                else:
                    bad = int((pic != ref).any(axis=2).sum())
                    bad_y = int(np.sum(np.abs(y_hat - ref_y) > 0.25))  # other symbol (step 1)
                    status = "ok, same picture" if bad == 0 else (
                        f"no error but a different picture: {bad} pixels differ from the 1-thread "
                        f"decode; {bad_y} latents decoded to other symbols")
            except LicError as exc:
                status = f"error: {exc}"
            files.append({"image": name, "encode_threads": 1, "decode_threads": threads,
                          "status": status})
            print(f"file {name} enc 1 thread → dec {threads}: {status}", flush=True)
    torch.set_num_threads(args.threads)
    return {"rows": rows, "files": files}


# -- 2. exact ---------------------------------------------------------------------------------
def _worker(args) -> None:
    torch.set_num_threads(args.worker_threads)
    model = load_model(args.model)
    eng = ExactEntropyParameters.from_model(model)
    syn = ExactSynthesis.from_model(model)
    data = torch.load(args.worker_input)
    out = {}
    for name, d in data.items():
        fp = exact_fingerprint(eng, syn, d["y"], d["z_hat"], 0.5)
        with torch.no_grad():
            gains = model._gains(0.5, 1, "cpu")
            phi = model.hyper_features(d["z_hat"], gains)
            seen = []

            def step(g, p, res, scale, d=d):
                seen.append(scale)
                return d["q"][f"{g},{p}"].float()

            r = model.latent_passes(phi, gains, step)
            pic = torch.round(model.synthesize(d["y_hat_gained"], gains).clamp(0, 1) * 255)
        fp.update(float_phi=_digest(phi), float_scales=_digest(torch.cat([s.reshape(-1) for s in seen])),
                  float_means=_digest(r["means"]), float_picture=_digest(pic.to(torch.uint8)))
        out[name] = fp
    print("RESULT " + json.dumps({"threads": torch.get_num_threads(), "digests": out}))


def part_exact(args, model) -> dict:
    data = {}
    torch.set_num_threads(1)
    for name in CAUSE_IMAGES:
        _, x = _image(Path(args.kodak) / name)
        out, steps = _float_encode(model, x, 0.5)
        data[name] = {"y": out["y"], "y_hat_gained": out["y_hat_gained"],
                      "z_hat": out["z_symbols"].float() + model.prior.medians()[None, :, None, None],
                      "q": {f"{g},{p}": s["q"] for (g, p), s in steps.items()}}
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "latents.pt"
        torch.save(data, path)
        results = {}
        for threads in (1, 2, 4):
            r = subprocess.run([sys.executable, __file__, "--worker-threads", str(threads),
                                "--worker-input", str(path), "--model", args.model],
                               capture_output=True, text=True, cwd=ROOT)
            if r.returncode != 0:
                raise SystemExit(r.stderr[-3000:])
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1]
            results[threads] = json.loads(line[7:])["digests"]
    summary = {}
    keys = list(results[1][CAUSE_IMAGES[0]].keys())
    for k in keys:
        same = all(results[t][n][k] == results[1][n][k] for t in (2, 4) for n in CAUSE_IMAGES)
        summary[k] = "identical on 1/2/4 threads" if same else "DIFFERS across threads"
        print(f"exact/float digest {k:26s}: {summary[k]}", flush=True)
    return {"summary": summary, "digests": results}


# -- 3. cost ----------------------------------------------------------------------------------
def _exact_encode(eng, syn, model, out, u, time_it=False):
    gains = eng.gains(u)
    z_hat = out["z_symbols"].float() + model.prior.medians()[None, :, None, None]
    qs, idxs = {}, {}

    def enc_step(g, p, res, idx):
        q = torch.round(res).clamp(-SYMBOL_BOUND, SYMBOL_BOUND)
        qs[(g, p)], idxs[(g, p)] = q, idx
        return q

    phi = eng.hyper(z_hat, gains)
    res = eng.latent_passes(phi, gains, enc_step, y=out["y"])
    bits = sum(float(gaussian_bits(qs[k], exact_table_std(idxs[k])).sum()) for k in qs)
    timing = {}
    if time_it:  # decoder-side parameter path: Φ_h + 10 passes with the symbols replayed
        t = []
        for _ in range(args_repeat):
            t0 = time.perf_counter()
            g2 = eng.gains(u)
            eng.latent_passes(eng.hyper(z_hat, g2), g2, lambda g, p, r, i: qs[(g, p)])
            t.append(time.perf_counter() - t0)
        timing["params_exact_s"] = min(t)
    t0 = time.perf_counter()
    pic = syn.picture(res["y_hat_gained"], u) if syn is not None else None
    timing["gs_exact_s"] = time.perf_counter() - t0
    return bits, pic, res, timing, idxs


args_repeat = 3


def _float_bits(steps) -> float:
    return sum(float(gaussian_bits(s["q"].clamp(-SYMBOL_BOUND, SYMBOL_BOUND), table_std(s["scale"])).sum())
               for s in steps.values())


def part_cost(args, model) -> dict:
    from lic_core.evaluation.bdrate import bd_psnr, bd_rate

    torch.set_num_threads(args.threads)
    rates = [float(r) for r in args.rates.split(",")]
    paths = sorted(Path(args.kodak).glob("*.png"))[: args.images]
    eng = ExactEntropyParameters.from_model(model)
    syn = ExactSynthesis.from_model(model)
    pmf, offset, length = model.prior.tables()
    rows = []
    for path in paths:
        img, x = _image(path)
        H, W = img.shape[:2]
        for u in rates:
            time_it = abs(u - 0.5) < 1e-9
            out, steps = _float_encode(model, x, u)
            bz = float(z_bits(out["z_symbols"][0].numpy(), pmf, offset, length).sum())
            fb = _float_bits(steps)
            tg = []
            for _ in range(args_repeat if time_it else 1):
                t0 = time.perf_counter()
                xf = model.synthesize(out["y_hat_gained"], out["gains"])
                tg.append(time.perf_counter() - t0)
            fpsnr = psnr(img, to_uint8(crop(xf, H, W)))
            row = {"image": path.name, "u": u, "pixels": H * W, "z_bits": bz,
                   "float_y_bits": fb, "float_psnr": fpsnr, "gs_float_s": min(tg)}
            if time_it:
                t = []
                for _ in range(args_repeat):
                    t0 = time.perf_counter()
                    _float_replay(model, out, steps, u)
                    t.append(time.perf_counter() - t0)
                row["params_float_s"] = min(t)
            eb, pic, _, timing, idxs = _exact_encode(eng, syn, model, out, u, time_it)
            agree = sum(int((idxs[k] == steps[k]["index"]).sum()) for k in steps)
            n = sum(v.numel() for v in idxs.values())
            epsnr = psnr(img, np.ascontiguousarray(pic[0, :, :H, :W].permute(1, 2, 0).numpy()))
            row.update(exact_y_bits=eb, exact_psnr=epsnr, index_agreement=agree / n, **timing)
            row["rate_change_pct"] = 100.0 * (eb - fb) / (fb + bz)
            rows.append(row)
            print(f"cost {path.name} u={u}: bpp float {(fb + bz) / (H * W):.4f} exact "
                  f"{(eb + bz) / (H * W):.4f} ({row['rate_change_pct']:+.3f} %), PSNR float "
                  f"{fpsnr:.3f} exact {epsnr:.3f}, indices equal {100 * agree / n:.3f} %"
                  + (f", params {row['params_float_s']:.2f}s→{row['params_exact_s']:.2f}s, g_s "
                     f"{row['gs_float_s']:.2f}s→{row['gs_exact_s']:.2f}s" if time_it else ""), flush=True)
    per_rate = []
    for u in rates:
        rs = [r for r in rows if r["u"] == u]
        px = sum(r["pixels"] for r in rs)
        fbits = sum(r["float_y_bits"] + r["z_bits"] for r in rs)
        ebits = sum(r["exact_y_bits"] + r["z_bits"] for r in rs)
        per_rate.append({"u": u, "float_bpp": fbits / px, "exact_bpp": ebits / px,
                         "rate_change_pct": 100.0 * (ebits - fbits) / fbits,
                         "float_psnr": float(np.mean([r["float_psnr"] for r in rs])),
                         "exact_psnr": float(np.mean([r["exact_psnr"] for r in rs])),
                         "index_agreement": float(np.mean([r["index_agreement"] for r in rs]))})
    summary = {"per_rate": per_rate}
    if len(rates) >= 2:
        fb = [p["float_bpp"] for p in per_rate]
        fp = [p["float_psnr"] for p in per_rate]
        eb = [p["exact_bpp"] for p in per_rate]
        ep = [p["exact_psnr"] for p in per_rate]
        summary["bd_rate_pct"] = bd_rate(fb, fp, eb, ep)
        summary["bd_psnr_db"] = bd_psnr(fb, fp, eb, ep)
    timed = [r for r in rows if "params_exact_s" in r]
    for k in ("params_float_s", "params_exact_s", "gs_float_s", "gs_exact_s"):
        summary[f"mean_{k}"] = float(np.mean([r[k] for r in timed])) if timed else None
    summary["threads"] = args.threads
    for p in per_rate:
        print(f"u={p['u']}: bpp {p['float_bpp']:.4f} → {p['exact_bpp']:.4f} "
              f"({p['rate_change_pct']:+.3f} %), PSNR {p['float_psnr']:.3f} → {p['exact_psnr']:.3f}, "
              f"indices equal {100 * p['index_agreement']:.3f} %")
    if "bd_rate_pct" in summary:
        print(f"BD-rate exact vs float: {summary['bd_rate_pct']:+.3f} %, BD-PSNR "
              f"{summary['bd_psnr_db']:+.4f} dB")
    print(f"time on {args.threads} threads (u=0.5, min of {args_repeat}): parameter path "
          f"{summary['mean_params_float_s']:.2f}s float → {summary['mean_params_exact_s']:.2f}s exact; "
          f"g_s {summary['mean_gs_float_s']:.2f}s → {summary['mean_gs_exact_s']:.2f}s")
    return {"rows": rows, "summary": summary, "bounds": eng.bound_report()["max_acc_bound_log2"]}


# -- 4. sweep ---------------------------------------------------------------------------------
SWEEP = [
    {"frac_bits": 8}, {"frac_bits": 12}, {}, {"max_weight_bits": 12}, {"max_weight_bits": 16},
    {"range_bits": 14}, {"softmax_bits": 12},
]


def part_sweep(args, model) -> dict:
    torch.set_num_threads(args.threads)
    paths = sorted(Path(args.kodak).glob("*.png"))[: max(1, min(args.images, 2))]
    cases = []
    for path in paths:
        img, x = _image(path)
        out, steps = _float_encode(model, x, 0.5)
        pmf, offset, length = model.prior.tables()
        bz = float(z_bits(out["z_symbols"][0].numpy(), pmf, offset, length).sum())
        xf = model.synthesize(out["y_hat_gained"], out["gains"])
        H, W = img.shape[:2]
        cases.append((img, out, steps, bz, psnr(img, to_uint8(crop(xf, H, W)))))
    rows = []
    for over in SWEEP:
        cfg = ExactConfig(**over)
        try:
            eng = ExactEntropyParameters.from_model(model, cfg)
            syn = ExactSynthesis.from_model(model, cfg)
        except ValueError as exc:
            rows.append({"config": over, "error": str(exc)})
            print(f"sweep {over}: {exc}")
            continue
        rep = eng.bound_report()
        fb = eb = 0.0
        agree = n = 0
        dps = []
        for img, out, steps, bz, fpsnr in cases:
            bits, pic, _, _, idxs = _exact_encode(eng, syn, model, out, 0.5)
            H, W = img.shape[:2]
            dps.append(psnr(img, np.ascontiguousarray(pic[0, :, :H, :W].permute(1, 2, 0).numpy())) - fpsnr)
            fb += _float_bits(steps) + bz
            eb += bits + bz
            agree += sum(int((idxs[k] == steps[k]["index"]).sum()) for k in steps)
            n += sum(v.numel() for v in idxs.values())
        row = {"config": over, "rate_change_pct": 100 * (eb - fb) / fb,
               "psnr_change_db": float(np.mean(dps)), "index_agreement": agree / n,
               "min_weight_bits": rep["min_weight_bits"],
               "min_weight_bits_gs": min(lin.weight_bits for lin in syn.linears())}
        rows.append(row)
        print(f"sweep {over or 'default'}: rate {row['rate_change_pct']:+.3f} %, PSNR "
              f"{row['psnr_change_db']:+.4f} dB, indices equal {100 * row['index_agreement']:.3f} %, "
              f"min weight bits {row['min_weight_bits']}/{row['min_weight_bits_gs']}", flush=True)
    return {"images": [p.name for p in paths], "u": 0.5, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", default=os.environ.get("LIC_KODAK", str(ROOT.parent / "shared" / "data" / "kodak")))
    ap.add_argument("--model", default="lic-lgem-preview")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--rates", default="0.1,0.5,0.9")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="cause,exact,cost,sweep")
    ap.add_argument("--out", default=None)
    ap.add_argument("--merge", action="store_true", help="keep the other parts of an existing JSON")
    ap.add_argument("--worker-threads", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-input", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_threads:
        _worker(args)
        return
    if not Path(args.kodak).is_dir():
        raise SystemExit(f"Kodak folder not found: {args.kodak} (use --kodak)")
    model = load_model(args.model)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"exact_path_{args.model}.json"
    previous = json.loads(out.read_text()) if args.merge and out.is_file() else {}
    result = {**previous, "model": args.model, "torch": torch.__version__,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "onednn_available": torch.backends.mkldnn.is_available(),
              "config": ExactConfig().__dict__}
    parts = {"cause": part_cause, "exact": part_exact, "cost": part_cost, "sweep": part_sweep}
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        result[name] = parts[name](args, model)
        result[name]["wall_s"] = time.perf_counter() - t0
        result[name]["load_average_after"] = os.getloadavg()
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
