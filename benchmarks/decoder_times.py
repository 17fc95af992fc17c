"""Decode time of one file through our three decoders (issue 26: "the decode times"): the MSE
synthesis g_s, the GAN decoder and the diffusion decoder, exact paths (format v2, what files
decode with), on one ``.lic`` file of a Kodak picture coded by the installed ``lic-lgem-cpu``.

    python benchmarks/decoder_times.py [--threads 1 2] [--repeat 3] [--rates 0,0.5]
        [--image PATH] [--out benchmarks/results/decoder_times.json]

Best of ``--repeat`` decodes after one warm-up decode per decoder (which builds its exact
networks); wall seconds and process CPU seconds, per megapixel too; the load average before and
after (another job on the machine makes every figure slower: the JSON says so). The GAN and
diffusion rows name their weights (the GAN decoder's trunk depth adds multiply-adds to g_s).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# idle OpenMP workers that spin make small ops slow beside another job; no result changes
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "decoder_times.json"
CODEC = "lic-lgem-cpu"


def _image(path: str | None) -> tuple[np.ndarray, str]:
    from PIL import Image

    from lic_core.paths import shared_dir

    if path is None:
        shared = shared_dir() or Path(os.environ.get("LIC_SHARED_DIR", ROOT.parent / "shared"))
        path = str(Path(shared) / "data" / "kodak" / "kodim01.png")
    if not Path(path).is_file():
        raise SystemExit(f"error: no image {path} (--image PATH)")
    return np.asarray(Image.open(path).convert("RGB")), Path(path).name


def _best(fn, repeat: int) -> tuple[float, float]:
    """(best wall s, its CPU s) over ``repeat`` calls."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        t, c = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, (t, c))
    return best


def main(argv=None) -> int:
    from lic_core.codecs import EncodeParams
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.paths import diffusion_weights_path, gan_weights_path
    from lic_core.weights import read_weights_card, read_weights_hash

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rates", default="0,0.5")
    p.add_argument("--image", default=None)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    a = p.parse_args(argv)
    codec = LearnedCodec(CODEC)
    ok, why = codec.available()
    if not ok:
        print(f"error: {CODEC}: {why}", file=sys.stderr)
        return 2
    decoders = ["mse"] + [d for d in ("gan", "diffusion") if d in codec.decoders]
    img, name = _image(a.image)
    mp = img.shape[0] * img.shape[1] / 1e6
    about = {}
    for d, path in (("gan", gan_weights_path(CODEC)), ("diffusion", diffusion_weights_path(CODEC))):
        if path.is_file():
            card = read_weights_card(path)
            about[d] = {"file": path.name, "weights_hash": read_weights_hash(path),
                        "g_s_extra_blocks": card.get("train", {}).get("extra_blocks"),
                        "sampling_steps": card.get("sampling_steps")}
    load0 = [round(v, 2) for v in os.getloadavg()]
    rows = []
    for u in [float(s) for s in a.rates.split(",")]:
        torch.set_num_threads(max(a.threads))
        data = codec.encode(img, EncodeParams(rate=u)).data
        bpp = len(data) * 8 / (img.shape[0] * img.shape[1])
        for th in a.threads:
            torch.set_num_threads(th)
            for d in decoders:
                # as `lic decompress` does: no latent maps (the studio's inspect=True keeps them)
                codec.decode(data, decoder=d, inspect=False)  # warm-up: builds the exact nets
                wall, cpu = _best(lambda d=d, f=data: codec.decode(f, decoder=d, inspect=False),
                                  a.repeat)
                rows.append({"u": u, "bpp": round(bpp, 4), "threads": th, "decoder": d,
                             "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                             "wall_s_per_mp": round(wall / mp, 3)})
                print(f"u={u:g} ({bpp:.3f} bpp) {th} thread(s) {d:<9} {wall:6.2f} s wall "
                      f"({wall / mp:.2f} s/MP), {cpu:6.2f} s CPU", flush=True)
    out = {"codec": CODEC, "codec_weights_hash": read_weights_hash(codec_weights(CODEC)),
           "image": name, "pixels": int(img.shape[0] * img.shape[1]), "repeat": a.repeat,
           "decoders": about, "rows": rows, "torch": torch.__version__,
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "load_average_before": load0,
           "load_average_after": [round(v, 2) for v in os.getloadavg()],
           "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    from lic_core.fileio import write_bytes_atomic

    write_bytes_atomic(Path(a.out), (json.dumps(out, indent=1) + "\n").encode(), True)
    print(f"wrote {a.out}")
    return 0


def codec_weights(name: str) -> Path:
    from lic_core.paths import weights_path

    return weights_path(name)


if __name__ == "__main__":
    sys.exit(main())
