"""Why rate-reducing quantizers lose on the campaign codec (issue 16, item 4; docs/quantizers.md).

Three measurements on held-back training photos (never Kodak, so choosing encoder parameters
here does not tune on the test set): centre crops 512×512 of every 17th photo of
``../shared/data/train`` (4 photos), slider points u = 0.2, 0.5, 0.8, real bitstreams.

1. ``sweep`` — encoder-only parameters: TCQ's λ factor c and step Δ_u, RDOQ's c; BD-rate (PSNR)
   against rounding.
2. ``latent`` — at u = 0.5, the latent-domain MSE (gained units, Δ = 1) of each quantizer beside
   the image PSNR the synthesis makes of it, without entropy coding: does lower latent error
   give a better picture?
3. ``steps`` — RDOQ applied at some (channel group, checkerboard pass) steps only, rounding at
   the others: does a decision hurt through the entropy parameters of the steps after it?
4. ``sensitivity`` — the first-order sensitivity w_c of the synthesis to each latent channel
   (image SSE per unit² of random ±ε error in that channel, gained units), the λ factor it
   implies for the model's own trade-off, c_c = 3 / (λ_s·255²·w_c), and RDOQ (c = 0.03) with
   its distortion weighted by w_c / median(w): does a channel-weighted distortion rescue it?

    python benchmarks/quantizer_diagnostics.py [--codec lic-lgem-cpu]
        [--only sweep,latent,steps,sensitivity]

Writes benchmarks/results/quantizer_diagnostics_<codec>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SWEEP = {
    "round": ("round", {}),
    "rdoq c=0.1155": ("rdoq", {"c": 0.1155}),
    "rdoq c=0.03": ("rdoq", {"c": 0.03}),
    "tcq c=0.1155": ("tcq", {"c": 0.1155}),
    "tcq c=0.03": ("tcq", {"c": 0.03}),
    "tcq c=0": ("tcq", {"c": 0.0}),
    "tcq Δu=0.5 c=0.03": ("tcq", {"delta_u": 0.5, "c": 0.03}),
    "tcq Δu=0.65 c=0.03": ("tcq", {"delta_u": 0.65, "c": 0.03}),
}
US = (0.2, 0.5, 0.8)


def held_back_crops(folder: Path, n: int = 4, size: int = 512) -> tuple[list, list[str]]:
    from lic_core.image import load_image

    files = [f for f in sorted(folder.iterdir())
             if f.suffix.lower() in (".jpg", ".jpeg", ".png")][::17][:n]
    crops = []
    for f in files:
        im = load_image(f)
        h, w = im.shape[:2]
        y0, x0 = (h - size) // 2, (w - size) // 2
        crops.append(np.ascontiguousarray(im[y0:y0 + size, x0:x0 + size]))
    return crops, [f.name for f in files]


def sweep(codec, images) -> dict:
    from lic_core.evaluation.quantizers import bd_table, quantizer_curve

    curves = {}
    for name, (q, params) in SWEEP.items():
        curves[name] = quantizer_curve(codec, images, q, US, params)
        print(f"sweep {name:20s} " + " ".join(
            f"{b:.4f}/{p:.2f}" for b, p in zip(curves[name]["bpp"], curves[name]["psnr"])),
            flush=True)
    return {"curves": curves, "bd_vs_round_percent": {
        k: v["bd_rate_percent"] for k, v in bd_table(curves, "round").items()}}


def latent(model, images) -> dict:
    import torch

    from lic_core.codecs.learned import _analyse, quantized_latents
    from lic_core.quantizer import build_quantizer

    out = {}
    for name in ("round", "rdoq c=0.03", "tcq c=0", "tcq c=0.03", "tcq c=0.1155"):
        q, params = SWEEP[name]
        quant = build_quantizer(q, **params)
        lat_mse, img_mse = [], []
        for img in images:
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
            lat = quantized_latents(model, x, 0.5, quant)
            with torch.no_grad():
                y_bar, _ = _analyse(model, x, lat["gains"])
                x_hat = model.synthesize(lat["y_hat_gained"].float(),
                                         {"G_inv": lat["gains"]["G_inv"].float()}).clamp(0, 1)
            lat_mse.append(float(((lat["y_hat_gained"].float() - y_bar.float()) ** 2).mean()))
            img_mse.append(float(((x_hat - x) ** 2).mean()))
        out[name] = {"latent_mse": float(np.mean(lat_mse)),
                     "image_psnr": float(np.mean([-10 * np.log10(m) for m in img_mse]))}
        print(f"latent {name:14s} latent MSE {out[name]['latent_mse']:.4f}  image PSNR "
              f"{out[name]['image_psnr']:.2f} dB", flush=True)
    return out


def steps(codec, images, n_steps: int) -> dict:
    """RDOQ (c = 0.1155) at chosen (group, pass) steps only; the quantizer is swapped in for the
    encoder's, which calls ``quantize`` once per step in coding order."""
    import lic_core.codecs.learned as learned
    from lic_core.codecs import EncodeParams
    from lic_core.metrics import psnr
    from lic_core.quantizer.scalar import RdoqQuantizer, RoundQuantizer

    class Selective(RoundQuantizer):
        def __init__(self, chosen):
            self.chosen, self.k, self.rdoq = set(chosen), 0, RdoqQuantizer(0.1155)

        def quantize(self, residual, index):
            k, self.k = self.k, self.k + 1
            if k in self.chosen:
                return self.rdoq.quantize(residual, index)
            return super().quantize(residual, index)

    configs = {"round everywhere": [], "RDOQ everywhere": list(range(n_steps)),
               "RDOQ at the last step only": [n_steps - 1],
               "RDOQ at the anchor passes": list(range(0, n_steps, 2)),
               "RDOQ at the non-anchor passes": list(range(1, n_steps, 2)),
               "RDOQ in the first group only": [0, 1],
               "RDOQ in the last group only": [n_steps - 2, n_steps - 1]}
    out = {}
    original = learned.build_quantizer
    try:
        for name, chosen in configs.items():
            bpp, ps = [], []
            for img in images:
                learned.build_quantizer = lambda *a, chosen=chosen, **k: Selective(chosen)
                r = codec.encode(img, EncodeParams(rate=0.5))
                bpp.append(r.bpp)
                ps.append(psnr(img, r.reconstruction))
            out[name] = {"bpp": float(np.mean(bpp)), "psnr": float(np.mean(ps))}
            print(f"steps {name:32s} {out[name]['bpp']:.4f} bpp {out[name]['psnr']:.3f} dB",
                  flush=True)
    finally:
        learned.build_quantizer = original
    ref = out["round everywhere"]
    for v in out.values():  # dB given up per bpp saved (compare: the slider's own slope)
        db, bits = ref["psnr"] - v["psnr"], ref["bpp"] - v["bpp"]
        v["db_per_bpp_saved"] = float(db / bits) if bits > 1e-9 else None
    return out


def channel_sensitivity(model, image, level: int, eps: float = 0.3) -> np.ndarray:
    """w_c = ‖g_s(ŷ + ε·s_c) − g_s(ŷ)‖² / (n_c·ε²) for random signs s_c on channel c alone."""
    import torch

    from lic_core.codecs.learned import quantized_latents
    from lic_core.quantizer import build_quantizer

    x = torch.from_numpy(image[:256, :256].copy()).permute(2, 0, 1)[None].float() / 255
    u = level / (model.config.levels - 1)
    lat = quantized_latents(model, x, u, build_quantizer("round"))
    g_inv = {"G_inv": lat["gains"]["G_inv"].float()}
    yg = lat["y_hat_gained"].float()
    gen = torch.Generator().manual_seed(level)
    w = np.zeros(yg.shape[1])
    with torch.no_grad():
        base = model.synthesize(yg, g_inv)
        for c in range(yg.shape[1]):
            d = torch.zeros_like(yg)
            d[:, c] = eps * (torch.randint(0, 2, yg[:, c].shape, generator=gen).float() * 2 - 1)
            w[c] = float(((model.synthesize(yg + d, g_inv) - base) ** 2).sum()) / (
                yg[:, c].numel() * eps ** 2)
    return w


def sensitivity(codec, images) -> dict:
    import torch

    import lic_core.codecs.learned as learned
    from lic_core.codecs import EncodeParams
    from lic_core.evaluation.bdrate import bd_rate
    from lic_core.metrics import psnr
    from lic_core.quantizer.scalar import RoundQuantizer, gaussian_bits, table_std

    model = codec.model
    levels = model.config.levels
    w = {s: channel_sensitivity(model, images[0], s) for s in range(levels)}
    implied = {}
    for s, ws in w.items():
        cc = 3.0 / (model.config.lambdas[s] * 255 ** 2 * np.maximum(ws, 1e-12))
        implied[s] = {"median": float(np.median(cc)), "p10": float(np.percentile(cc, 10)),
                      "p90": float(np.percentile(cc, 90))}
        print(f"sensitivity level {s}: implied c median {implied[s]['median']:.3f} "
              f"(p10 {implied[s]['p10']:.3f}, p90 {implied[s]['p90']:.3f})", flush=True)
    offsets = np.cumsum((0,) + tuple(model.config.groups))

    def weights_at(u: float) -> np.ndarray:  # log-interpolated between the trained levels
        t = u * (levels - 1)
        lo = int(np.floor(t))
        hi = min(lo + 1, levels - 1)
        f = t - lo
        ws = np.exp((1 - f) * np.log(w[lo]) + f * np.log(w[hi]))
        return ws / np.median(ws)

    class WeightedRdoq(RoundQuantizer):
        def __init__(self, u: float, c: float = 0.03):
            self.c, self.k, self.w = c, 0, weights_at(u)

        def quantize(self, residual, index):
            g, self.k = self.k // 2, self.k + 1
            wg = torch.from_numpy(self.w[offsets[g]:offsets[g + 1]])[None, :, None]
            r = residual.detach().cpu().to(torch.float64)
            std = table_std(index)
            q0 = torch.round(r)
            best_q, best_j = q0, wg * (r - q0) ** 2 + self.c * gaussian_bits(q0, std)
            for cand in (q0 - torch.sign(q0), torch.zeros_like(q0)):
                j = wg * (r - cand) ** 2 + self.c * gaussian_bits(cand, std)
                better = j < best_j
                best_q, best_j = torch.where(better, cand, best_q), torch.where(better, j, best_j)
            return best_q.to(torch.int64)

    curve = {"bpp": [], "psnr": []}
    ref = {"bpp": [], "psnr": []}
    original = learned.build_quantizer
    try:
        for u in US:
            for key, make in (("w", lambda u=u: WeightedRdoq(u)), ("r", RoundQuantizer)):
                bpp, ps = [], []
                for img in images:
                    learned.build_quantizer = lambda *a, make=make, **k: make()
                    r = codec.encode(img, EncodeParams(rate=u))
                    bpp.append(r.bpp)
                    ps.append(psnr(img, r.reconstruction))
                target = curve if key == "w" else ref
                target["bpp"].append(float(np.mean(bpp)))
                target["psnr"].append(float(np.mean(ps)))
    finally:
        learned.build_quantizer = original
    bd = float(bd_rate(ref["bpp"], ref["psnr"], curve["bpp"], curve["psnr"]))
    print(f"sensitivity-weighted RDOQ c=0.03: {bd:+.2f} % BD-rate vs rounding", flush=True)
    return {"implied_c_per_level": implied, "weighted_rdoq_c0.03": curve, "round": ref,
            "weighted_rdoq_bd_vs_round_percent": bd}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", default=None, help="default: the best shipped learned codec")
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "train"))
    ap.add_argument("--only", default="sweep,latent,steps,sensitivity")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from lic_core.codecs import PREFERRED_LEARNED
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.paths import weights_path

    name = args.codec or next(
        n for n in PREFERRED_LEARNED if weights_path(n).is_file())
    if not Path(args.photos).is_dir():
        print(f"no photos under {args.photos}", file=sys.stderr)
        return 2
    images, names = held_back_crops(Path(args.photos))
    codec = LearnedCodec(name, use_finetuned=False)
    model = codec.model
    result = {"codec": name, "weights_hash": codec.weights_hash.hex(), "photos": names,
              "crop": 512, "us": list(US)}
    todo = args.only.split(",")
    if "sweep" in todo:
        result["sweep"] = sweep(codec, images)
    if "latent" in todo:
        result["latent"] = latent(model, images)
    if "steps" in todo:
        n_steps = 2 * len(model.config.groups)
        result["steps"] = steps(codec, images, n_steps)
        # the slider's own trade-off at u = 0.5 from the sweep's rounding curve, for comparison
        if "sweep" in result:
            r = result["sweep"]["curves"]["round"]
            result["steps"]["slider_db_per_bpp"] = float(
                (r["psnr"][2] - r["psnr"][0]) / (r["bpp"][2] - r["bpp"][0]))
    if "sensitivity" in todo:
        result["sensitivity"] = sensitivity(codec, images)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"quantizer_diagnostics_{name}.json"
    if path.is_file():  # --only refreshes some measurements of the same weights, keeps the rest
        old = json.loads(path.read_text())
        if old.get("weights_hash") == result["weights_hash"]:
            result = {**old, **result}
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
