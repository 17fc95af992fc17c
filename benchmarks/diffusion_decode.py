"""Decode time of the diffusion decoder at 768×512, exact and float, beside the MSE decode.

What users run is the exact path (format v2): ``LearnedCodec.decode(data, decoder="diffusion")``
= entropy decoding + the exact g_s (contexts and the MSE picture) + N exact network evaluations,
DCT posterior steps and Philox noise. This script times, on the same ``.lic`` file of a 768×512
Kodak image coded with the shipped codec weights (``lic-lgem-cpu`` with its trained diffusion
decoder when that is installed; else ``lic-lgem-preview`` with random diffusion weights):

* the **MSE decode** (``decode(data)`` of the file, exact g_s);
* the **exact diffusion decode** at the decoder's default step count (and ``--steps``);
* the **float diffusion sampler** (training previews; not what files decode with) on the same ŷ.

Issue 13's limits: the exact diffusion decode ≤ 15 s on 2 CPU threads and ≤ 30× the MSE decode
of the same file. The cost of a decode does not depend on the weights' values (random weights
time the same), the picture does.

    python benchmarks/diffusion_decode.py [--threads 1 2] [--steps 4 6 8] [--repeat 2]
        [--config cpu|full] [--image PATH] [--out PATH]

Results go to benchmarks/results/diffusion_decode.json (the full-resolution U-Net's earlier
numbers are kept there under ``full_size_unet``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# OpenMP threads that spin while they wait make every small op ~30× slower at 2 threads when
# another process holds a core (tests/core/test_reproducible_decoding.py); waiting passively
# changes no result. Set before torch starts its thread pool; recorded in the JSON.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lic_core.codecs import EncodeParams  # noqa: E402
from lic_core.codecs.learned import LearnedCodec  # noqa: E402
from lic_core.decoder.diffusion import DiffusionConfig, DiffusionDecoder, config_for_codec  # noqa: E402
from lic_core.decoder.diffusion.unet import FULL_SIZE  # noqa: E402
from lic_core.models import load_model  # noqa: E402
from lic_core.paths import shared_dir  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "diffusion_decode.json"
TRAINED_CODEC, FALLBACK_CODEC = "lic-lgem-cpu", "lic-lgem-preview"
LIMIT_S, LIMIT_RATIO = 15.0, 30.0


def _image(path: str | None) -> tuple[np.ndarray, str]:
    from PIL import Image

    if path:
        return np.asarray(Image.open(path).convert("RGB")), Path(path).name
    shared = shared_dir() or Path(os.environ.get("LIC_SHARED_DIR", ROOT.parent / "shared"))
    kodim = Path(shared) / "data" / "kodak" / "kodim01.png"
    if kodim.is_file():
        return np.asarray(Image.open(kodim).convert("RGB")), kodim.name
    rng = np.random.default_rng(0)  # a stand-in of the same size (timing only)
    yy, xx = np.mgrid[0:512, 0:768]
    img = np.stack([128 + 90 * np.sin(xx / (5 + c)) * np.cos(yy / (7 + c)) for c in range(3)], -1)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8), "synthetic"


def _decoder(model, preset: str) -> DiffusionDecoder:
    torch.manual_seed(0)
    over = {} if preset == "cpu" else dict(FULL_SIZE)
    dec = DiffusionDecoder(config_for_codec(model, **over)).eval()
    with torch.no_grad():  # the output layers start at zero: give them values (timing only)
        for name, p in dec.named_parameters():
            if name.endswith(("out.weight", "head_out.weight")):
                p.normal_(0.0, 0.02)
    return dec


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, nargs="*", default=None,
                   help="step counts to time (default: the decoder's default)")
    p.add_argument("--repeat", type=int, default=2, help="best of N runs")
    p.add_argument("--config", choices=("cpu", "full"), default="cpu")
    p.add_argument("--image", default=None, help="a 768×512 image (default Kodak kodim01)")
    p.add_argument("--no-float", action="store_true", help="skip the float sampler")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)

    from lic_core.paths import diffusion_weights_path

    trained = args.config == "cpu" and diffusion_weights_path(TRAINED_CODEC).is_file()
    codec_name = TRAINED_CODEC if trained else FALLBACK_CODEC
    model = load_model(codec_name)
    dec = (DiffusionDecoder.load(diffusion_weights_path(codec_name)) if trained
           else _decoder(model, args.config))
    cfg: DiffusionConfig = dec.config
    steps_list = args.steps or [cfg.steps]
    codec = LearnedCodec(codec_name, model=model, diffusion=dec, use_finetuned=False)
    img, img_name = _image(args.image)
    h, w = img.shape[:2]
    load0 = [round(v, 2) for v in os.getloadavg()]
    torch.set_num_threads(max(args.threads))
    files = {s: codec.encode(img, EncodeParams(rate=0.5, decoder="mse", diffusion_steps=s,
                                               seed=0)).data for s in steps_list}
    # ŷ and the float contexts for the float sampler (the same latents the exact path decodes)
    from lic_core.codecs.learned import quantized_latents
    from lic_core.image.tensor import pad_to_multiple, to_tensor
    from lic_core.quantizer import build_quantizer

    x, _ = pad_to_multiple(to_tensor(img), 64)
    lat = quantized_latents(model, x, 0.5, build_quantizer("round"))
    y_hat = (lat["y_hat_gained"] * lat["gains"]["G_inv"]).float()  # what g_s is fed (ŷ_G ⊙ G')

    runs = []
    for th in args.threads:
        torch.set_num_threads(th)
        first = files[steps_list[0]]
        t0 = time.perf_counter()
        codec.decode(first, decoder="diffusion")  # the first decode also builds the exact nets
        t_cold = time.perf_counter() - t0
        t_mse = _best(lambda d=first: codec.decode(d), args.repeat)
        print(f"{th} thread(s): MSE decode {t_mse:.2f} s; first diffusion decode (cold, "
              f"{steps_list[0]} steps) {t_cold:.2f} s", flush=True)
        for steps in steps_list:
            data = files[steps]
            t_exact = _best(lambda d=data: codec.decode(d, decoder="diffusion"), args.repeat)
            rec = {"threads": th, "steps": steps, "mse_decode_s": round(t_mse, 3),
                   "exact_diffusion_decode_s": round(t_exact, 3),
                   "ratio_to_mse": round(t_exact / t_mse, 2),
                   "meets_limits": bool(t_exact <= LIMIT_S and t_exact / t_mse <= LIMIT_RATIO)}
            if steps == steps_list[0]:
                rec["first_decode_cold_s"] = round(t_cold, 3)
            if not args.no_float:
                def float_decode(n=steps):
                    with torch.no_grad():
                        feats = model.g_s.forward_features(y_hat)
                        dec.decode(y_hat, feats, steps=n, seed=0, device="cpu")
                rec["float_diffusion_decode_s"] = round(_best(float_decode, args.repeat), 3)
            runs.append(rec)
            print(f"{th} thread(s), {steps} steps: exact diffusion {t_exact:.2f} s "
                  f"({t_exact / t_mse:.1f}× the MSE decode)"
                  + (f", float sampler {rec['float_diffusion_decode_s']:.2f} s"
                     if "float_diffusion_decode_s" in rec else ""), flush=True)

    out = Path(args.out)
    old = json.loads(out.read_text()) if out.is_file() else {}
    results = {"full_size_unet": old.get("full_size_unet")
               or {k: old[k] for k in ("note", "config", "parameters", "runs", "cpu_note")
                   if k in old}}
    if not results["full_size_unet"]:
        results.pop("full_size_unet")
    key = "cpu_decoder" if args.config == "cpu" else "full_decoder_768x512"
    results.update({k: v for k, v in old.items() if k in ("cpu_decoder", "full_decoder_768x512")})
    results[key] = {
        "note": "exact = what .lic files decode with (entropy decoding + exact g_s + exact "
                "network, DCT and noise); "
                + (f"the installed trained {codec_name}-diffusion weights" if trained else
                   "random diffusion weights (timing only)")
                + f"; file coded with the shipped {codec_name} weights at u = 0.5",
        "limits": {"exact_seconds": LIMIT_S, "ratio_to_mse_decode": LIMIT_RATIO},
        "image": img_name, "width": w, "height": h, "config": cfg.to_dict(),
        "parameters": dec.num_parameters(), "torch": torch.__version__,
        "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "load_average_at_start": load0,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()], "runs": runs}
    if torch.cuda.is_available():
        gcodec = LearnedCodec(codec_name, model=model, diffusion=dec, use_finetuned=False,
                              device="cuda")
        data = files[steps_list[0]]
        gcodec.decode(data, decoder="diffusion")
        results[key]["cuda"] = {
            "gpu": torch.cuda.get_device_name(0), "steps": steps_list[0],
            "exact_diffusion_decode_s": round(
                _best(lambda: gcodec.decode(data, decoder="diffusion"), args.repeat), 3)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
