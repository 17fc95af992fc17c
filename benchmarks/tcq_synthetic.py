"""Synthetic RD experiment for the y quantizers (docs/methods.md §4.2, §4.4 "What to expect").

Source: iid Laplacian latents ``r = σ·L`` (L a unit-variance Laplacian) with a *known* Gaussian
entropy model of scale σ, σ log-uniform in [0.3, 8] — the toy of docs/methods.md §4.4. Each
quantizer runs at several steps Δ_SQ (inputs divided by Δ, distortion multiplied by Δ²; that is
exactly how the gain units scale the latent in the codec). Rate = Σ ``Quantizer.bits`` (the ideal
code length under the pmf the coder uses; the real range coder lands within 0.1 % of it, see the
tests) per element; quality = SNR = 10·log10(E r² / MSE). Reports BD-rate vs rounding and the TCQ
run time for one 768×512-image-equivalent latent (320 channels × 32×48, groups [16,16,32,64,192],
two checkerboard passes, 2 threads).

    PYTHONPATH=. python benchmarks/tcq_synthetic.py            # full run → results/…json
    PYTHONPATH=. python benchmarks/tcq_synthetic.py --quick    # seconds
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
import torch

if __package__ in (None, ""):  # allow `python benchmarks/tcq_synthetic.py` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lic_core.entropy_model.gaussian import scale_index  # noqa: E402
from lic_core.quantizer import build_quantizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "tcq_synthetic.json"
STEPS = (0.35, 0.5, 0.7, 1.0, 1.4, 2.0)
#: (label, registry name, params)
CONFIGS = (
    ("round", "round", {}),
    ("deadzone", "deadzone", {"offset": 1.0 / 3.0}),
    ("rdoq", "rdoq", {"c": 0.1155}),
    ("tcq", "tcq", {"delta_u": 0.561, "c": 0.1155}),
)


def bd_rate(rate_a, quality_a, rate_b, quality_b) -> float:
    """BD-rate of curve b vs reference a in percent (negative = b needs fewer bits).

    The project's :func:`lic_core.evaluation.bdrate.bd_rate` (pchip, CTC convention) when it is
    there, else the classic VCEG-M33 cubic fit below.
    """
    try:
        from lic_core.evaluation.bdrate import bd_rate as project_bd_rate
    except ImportError:
        return bd_rate_poly(rate_a, quality_a, rate_b, quality_b)
    return project_bd_rate(rate_a, quality_a, rate_b, quality_b)


def bd_rate_poly(rate_a, quality_a, rate_b, quality_b) -> float:
    """Bjøntegaard delta rate (VCEG-M33: cubic fit of log R(Q), overlapping quality range)."""
    qa, qb = np.asarray(quality_a, float), np.asarray(quality_b, float)
    la, lb = np.log(np.asarray(rate_a, float)), np.log(np.asarray(rate_b, float))
    deg = min(3, len(qa) - 1, len(qb) - 1)
    pa, pb = np.polyfit(qa, la, deg), np.polyfit(qb, lb, deg)
    lo, hi = max(qa.min(), qb.min()), min(qa.max(), qb.max())
    if not hi > lo:
        raise ValueError("RD curves do not overlap in quality")
    ia, ib = np.polyint(pa), np.polyint(pb)
    avg_a = (np.polyval(ia, hi) - np.polyval(ia, lo)) / (hi - lo)
    avg_b = (np.polyval(ib, hi) - np.polyval(ib, lo)) / (hi - lo)
    return float((math.exp(avg_b - avg_a) - 1.0) * 100.0)


def make_source(channels: int, positions: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1×C×N block of Laplacian residuals and their (known) Gaussian-model scales."""
    g = torch.Generator().manual_seed(seed)
    log_sig = torch.empty(1, channels, positions, dtype=torch.float64).uniform_(
        math.log(0.3), math.log(8.0), generator=g)
    sigma = log_sig.exp()
    u = torch.rand(1, channels, positions, dtype=torch.float64, generator=g).clamp(1e-12, 1 - 1e-12)
    lap = -torch.sign(u - 0.5) * torch.log1p(-2 * (u - 0.5).abs()) / math.sqrt(2.0)  # unit variance
    return (sigma * lap).to(torch.float32), sigma.to(torch.float32)


def rd_curve(quantizer, r: torch.Tensor, sigma: torch.Tensor, steps=STEPS) -> dict:
    """Rate (bits/element) and SNR (dB) of one quantizer over the steps."""
    power = float((r.double() ** 2).mean())
    rates, snrs, mses = [], [], []
    for step in steps:
        rs, ss = r / step, sigma / step
        k = quantizer.quantize(rs, scale_index(ss))
        mse = float(((quantizer.dequantize(k).double() * step - r.double()) ** 2).mean())
        rate = float(quantizer.bits(k, scale_index(ss)).sum()) / r.numel()
        rates.append(rate)
        mses.append(mse)
        snrs.append(10 * math.log10(power / mse))
    return {"steps": list(steps), "bits_per_element": rates, "mse": mses, "snr_db": snrs}


def tcq_timing(threads: int = 2, seed: int = 1) -> dict:
    """Seconds for TCQ quantize / encode / decode of a 320×32×48 latent (768×512 image)."""
    from lic_core.entropy_coder.symbols import SymbolDecoder, SymbolEncoder

    torch.set_num_threads(threads)
    q = build_quantizer("tcq")
    _ = q.tables  # build the cached tables outside the timing
    groups, positions = (16, 16, 32, 64, 192), 32 * 48 // 2
    blocks = [(r, scale_index(s)) for r, s in (make_source(c, positions, seed + 10 * i + p)
                                               for i, c in enumerate(groups) for p in range(2))]
    t0 = time.perf_counter()
    ks = [q.quantize(r, s) for r, s in blocks]
    t1 = time.perf_counter()
    enc = SymbolEncoder()
    for k, (_, s) in zip(ks, blocks):
        enc.encode(q.symbol_plan(s, k))
    t2 = time.perf_counter()
    dec = SymbolDecoder(enc.to_bytes())
    ok = all(torch.equal(dec.decode(q.symbol_plan(s)), k) for k, (_, s) in zip(ks, blocks))
    t3 = time.perf_counter()
    return {"elements": 320 * 32 * 48, "threads": threads, "quantize_s": t1 - t0,
            "encode_s": t2 - t1, "decode_s": t3 - t2, "round_trip_ok": ok,
            # the 2-core dev machine is shared; a high load inflates multi-thread timings a lot
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def run(channels: int = 64, positions: int = 2048, seed: int = 0, timing: bool = True) -> dict:
    """The whole experiment; returns the JSON-able result dict."""
    r, sigma = make_source(channels, positions, seed)
    curves = {label: rd_curve(build_quantizer(name, **params), r, sigma)
              for label, name, params in CONFIGS}
    ref = curves["round"]
    bd = {label: bd_rate(ref["bits_per_element"], ref["snr_db"], c["bits_per_element"], c["snr_db"])
          for label, c in curves.items() if label != "round"}
    bd["tcq_poly_fit"] = bd_rate_poly(ref["bits_per_element"], ref["snr_db"],
                                      curves["tcq"]["bits_per_element"], curves["tcq"]["snr_db"])
    bd["tcq_vs_rdoq"] = bd_rate(curves["rdoq"]["bits_per_element"], curves["rdoq"]["snr_db"],
                                curves["tcq"]["bits_per_element"], curves["tcq"]["snr_db"])
    out = {"source": {"channels": channels, "positions": positions, "seed": seed,
                      "sigma_range": [0.3, 8.0], "distribution": "laplacian, gaussian model"},
           "configs": {label: {"name": name, "params": params} for label, name, params in CONFIGS},
           "curves": curves, "bd_rate_vs_round_percent": bd}
    if timing:
        best = {}
        for threads in (2, 1):
            runs = [tcq_timing(threads) for _ in range(2)]  # keep the faster of two (warm-up)
            best[f"threads_{threads}"] = min(runs, key=lambda t: t["quantize_s"])
        out["tcq_timing_768x512"] = best
        torch.set_num_threads(2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small source, no JSON written")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    res = run(channels=32, positions=512, timing=False) if args.quick else run()
    for label, c in res["curves"].items():
        pts = ", ".join(f"{b:.3f}b/{s:.2f}dB" for b, s in zip(c["bits_per_element"], c["snr_db"]))
        print(f"{label:9s} {pts}")
    for label, v in res["bd_rate_vs_round_percent"].items():
        print(f"BD-rate {label:12s} {v:+.2f} %")
    for t in res.get("tcq_timing_768x512", {}).values():
        print(f"TCQ 320x32x48 ({t['threads']} threads): quantize {t['quantize_s']:.3f} s, "
              f"encode {t['encode_s']:.3f} s, decode {t['decode_s']:.3f} s, "
              f"round trip {'ok' if t['round_trip_ok'] else 'FAILED'} "
              f"(load {t['load_average_1min']:.1f})")
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
