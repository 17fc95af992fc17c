"""Peak memory and time of every stage of `lic compress` / `lic decompress` (issue 28).

Runs one CLI command in this process with the stages of the learned codec wrapped: at a stage's
entry the kernel's high-water mark is reset (``/proc/self/clear_refs`` ← 5, Linux), at its exit
``VmHWM`` is the stage's own peak.  Nested stages fold their peaks into the enclosing one.  For
each stage it prints the calls, seconds, **extra** peak (peak − resident memory at entry: what the
stage itself needs on top of what was already there) and what it leaves behind (resident at exit
− at entry), in MB, plus the process's peak.  Divide by megapixels and compare two sizes to see
what grows with the image (docs: issue 28's scaling table).

    python benchmarks/stage_memory.py compress photo.png out.lic --codec lic-lgem-cpu --rate 0.5
    python benchmarks/stage_memory.py decompress out.lic back.png --force
    [--json PATH] before the command writes the table as JSON.
"""
from __future__ import annotations

import ctypes
import functools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                "usmblks", "fsmblks", "uordblks", "fordblks",
                                                "keepcost")]


def heap_mb() -> tuple[float, float, float]:
    """(malloc'd and in use, free inside the heap, mmapped) MB from glibc's mallinfo2."""
    try:
        f = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return (float("nan"),) * 3
    f.restype = _Mallinfo2
    m = f()
    return m.uordblks / 1e6, m.fordblks / 1e6, m.hblkhd / 1e6


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


class Stages:
    """Per-stage (calls, seconds, max extra peak, retained) with nesting."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.stack: list[list] = []  # [name, rss at entry, running peak, t0]
        self.process_peak = 0

    def _fold(self) -> None:
        hwm = _status("VmHWM")
        self.process_peak = max(self.process_peak, hwm)
        for frame in self.stack:
            frame[2] = max(frame[2], hwm)

    def enter(self, name: str) -> None:
        self._fold()
        _reset_peak()
        rss = _status("VmRSS")
        self.stack.append([name, rss, rss, time.perf_counter()])

    def exit(self) -> None:
        self._fold()
        name, rss0, peak, t0 = self.stack.pop()
        rss1 = _status("VmRSS")
        row = self.rows.setdefault(name, {"calls": 0, "seconds": 0.0, "extra_peak_mb": 0.0,
                                          "retained_mb": 0.0, "rss_at_entry_mb": rss0 / 1e6,
                                          "heap_at_exit_mb": heap_mb()})
        row["calls"] += 1
        row["seconds"] += time.perf_counter() - t0
        row["extra_peak_mb"] = max(row["extra_peak_mb"], (peak - rss0) / 1e6)
        row["retained_mb"] += (rss1 - rss0) / 1e6
        _reset_peak()

    def wrap(self, owner, attr: str, name: str, per_call_label=None) -> None:
        fn = getattr(owner, attr)
        stages = self

        @functools.wraps(fn)
        def run(*a, **k):
            label = name if per_call_label is None else f"{name}{per_call_label(*a, **k)}"
            stages.enter(label)
            try:
                return fn(*a, **k)
            finally:
                stages.exit()

        setattr(owner, attr, run)


def instrument(stages: Stages) -> None:
    from lic_core.cli import cmd_compress, cmd_decompress
    from lic_core.codecs import learned
    from lic_core.entropy_coder.symbols import SymbolEncoder
    from lic_core.latent_codecs import base, hyperprior, parameters
    from lic_core.latent_codecs.checkerboard import CheckerboardGroupedCodec
    from lic_core.models.lgem_exact import ExactSynthesis

    stages.wrap(cmd_compress, "load_image", "load image")
    stages.wrap(cmd_compress, "write_bytes_atomic", "write .lic")
    stages.wrap(cmd_decompress, "save_image_atomic", "save image")
    stages.wrap(learned, "_analyse", "analysis g_a+h_a")
    stages.wrap(learned, "analysis_tiled", "  g_a tiled")
    stages.wrap(learned, "_hwc", "crop to HWC")
    stages.wrap(learned, "inspection", "inspection")
    stages.wrap(learned, "pack", "pack")
    stages.wrap(learned, "unpack", "unpack")
    H = hyperprior.HyperpriorLatentCodec
    stages.wrap(H, "compress", "latent coding")
    stages.wrap(H, "decompress", "latent coding")
    Z = hyperprior.FactorizedZCodec
    for attr in ("encode", "decode"):
        stages.wrap(Z, attr, f"  z {attr}")
    stages.wrap(CheckerboardGroupedCodec, "run", "  y steps")
    P = parameters.LgemExactParameters
    stages.wrap(P, "hyper", "    h_s")
    g = (lambda self, g, *a, **k: f" g{g}")
    stages.wrap(P, "group_context", "    context", g)
    stages.wrap(P, "anchor", "    anchor params", g)
    stages.wrap(P, "nonanchor", "    nonanchor params", g)
    stages.wrap(base.EncodeSteps, "__call__", "    quantize+code")
    stages.wrap(base.DecodeSteps, "__call__", "    decode symbols")
    stages.wrap(SymbolEncoder, "to_bytes", "  y to bytes")
    stages.wrap(ExactSynthesis, "picture", "synthesis g_s")
    stages.wrap(ExactSynthesis, "picture_hwc", "synthesis g_s")


def main() -> int:
    argv = sys.argv[1:]
    out_json = None
    if argv[:1] == ["--json"]:
        out_json, argv = argv[1], argv[2:]
    stages = Stages()
    instrument(stages)
    from lic_core.cli import main as lic_main

    stages.enter("whole command")
    rc = lic_main(argv)
    stages.exit()
    print(f"{'stage':34s} {'calls':>5s} {'s':>7s} {'extra peak MB':>13s} {'retained MB':>11s} "
          f"{'RSS in MB':>9s}  heap used/free/mmapped MB at first exit")
    for name, r in stages.rows.items():
        print(f"{name:34s} {r['calls']:5d} {r['seconds']:7.2f} {r['extra_peak_mb']:13.0f} "
              f"{r['retained_mb']:11.0f} {r['rss_at_entry_mb']:9.0f}  "
              + "/".join(f"{v:.0f}" for v in r["heap_at_exit_mb"]))
    print(f"process peak {stages.process_peak / 1e6:.0f} MB")
    if out_json:
        Path(out_json).write_text(json.dumps({"argv": argv, "stages": stages.rows,
                                              "process_peak_mb": stages.process_peak / 1e6},
                                             indent=1) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
