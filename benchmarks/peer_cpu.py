"""Run the peer anchor (``../shared/tools/peer_compressai_cpu.py``: CompressAI 1.2.8's own recipe,
mbt2018-mean, Adam 1e-4, batch 8, crop 128, one λ) on this machine and book its training time in
CPU seconds, like our campaign does, so the two are compared at equal CPU time (issue 12).

Needs compressai in a separate venv (it pins numpy < 2)::

    python -m venv --system-site-packages /tmp/cai && /tmp/cai/bin/pip install compressai==1.2.8
    STEPS=1500 nice -n 19 /tmp/cai/bin/python benchmarks/peer_cpu.py OUT.json

Every line the peer prints is prefixed with the process's CPU seconds so far; its ``step N`` lines
are printed before any Kodak evaluation, so the CPU time at the last step line is training only.
"""
from __future__ import annotations

import builtins
import json
import os
import resource
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIC_SHARED_DIR", ROOT.parent / "shared"))


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "runs" / "peer.json")
    steps_cpu: list[tuple[int, float]] = []
    real_print = builtins.print

    def print_with_cpu(*args, **kw):
        text = " ".join(str(a) for a in args)
        if text.startswith("step "):
            steps_cpu.append((int(text.split()[1]), cpu_s()))
        real_print(f"[cpu {cpu_s():8.1f}s]", *args, **kw)

    builtins.print = print_with_cpu
    sys.argv = [str(SHARED / "tools" / "peer_compressai_cpu.py"), str(SHARED / "data" / "train"),
                str(SHARED / "data" / "kodak"), "100000", "0.0067", "mbt2018-mean", "128", out]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        builtins.print = real_print
    d = json.loads(Path(out).read_text())
    d["train_cpu_s_at_step"] = steps_cpu
    d["train_cpu_s"] = steps_cpu[-1][1] if steps_cpu else None
    Path(out).write_text(json.dumps(d, indent=1))
    print(f"peer: {d['steps']} steps, {d['train_cpu_s']:.0f} CPU-s of training, "
          f"Kodak {d['kodak_bpp']:.4f} bpp {d['kodak_psnr']:.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
