"""The longest GUI-thread stall while the studio opens and encodes a 24 MP photo (issue 28).

A 10 ms QTimer on the GUI thread records when it actually fires; the longest gap between two
ticks is the longest time the window could not answer (target ≤ 200 ms).  The run, in the real
studio window (1366×768, offscreen unless a display is set):

1. ``load``: File → Open of a synthetic 6000×4000 photo (smooth gradients, edges and noise,
   written as PNG first): read, hashed and previewed in a worker;
2. ``encode``: both panes encode it in workers — by default with the codecs the studio opens
   with (``services.default_codec_pair``: the learned codec and JPEG when the weights are
   there; ``--codecs`` names others) — PSNR with the encode;
3. ``score``: MS-SSIM of each result, scored after it shows (one at a time: 6–15 s and ~0.4 GB each at 24 MP);
4. ``interact``: zoom 1:1, pans, the split divider, a difference view, side by side, fit;
5. ``close``: File → Close, and the memory given back.

Also measured: resident memory before opening, at its peak, with the picture open and after
closing it.  Prints a table and writes benchmarks/results/gui_stall.json.

    python benchmarks/gui_stall.py [--size 6000x4000] [--codecs jpeg,webp] [--no-ms-ssim]
        [--timeout 900] [--profile] [--out PATH]

Known stalls outside the studio's code: Pillow's WebP and AVIF decoders hold the GIL while they
decode (measured at 24 MP: ~130–200 ms and ~320 ms), so a pane with those codecs stalls the
window that long when its decode runs; JPEG does not.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gui_stall.json"
TARGET_MS = 200.0
TICK_MS = 10


def synthetic_photo(height: int, width: int, seed: int = 0):
    """Smooth gradients, a few hard edges and sensor-like noise (uint8 H×W×3), row block by
    row block so making it needs little memory beyond the picture."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty((height, width, 3), np.uint8)
    x = np.arange(width, dtype=np.float32)[None, :]
    for y0 in range(0, height, 512):
        y = np.arange(y0, min(height, y0 + 512), dtype=np.float32)[:, None]
        r = 128 + 90 * np.sin(x / 300.0) * np.cos(y / 410.0)
        g = 255 * (y / height) * np.ones_like(x)
        b = 128 + 80 * np.cos((x + y) / 700.0)
        block = np.stack([r, g, b], -1)
        block[..., 0] += 60 * ((x // 800 + y // 800) % 2)  # hard edges
        block += rng.standard_normal(block.shape, dtype=np.float32) * 6
        out[y0:y0 + len(y)] = np.clip(block, 0, 255).astype(np.uint8)
    return out


def write_photo(path: Path, height: int, width: int) -> Path:
    from PIL import Image

    Image.fromarray(synthetic_photo(height, width)).save(path, compress_level=1)
    return path


class StallMonitor:
    """Ticks every :data:`TICK_MS` on the GUI thread; records the gaps per phase."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        from app.model import memory

        self.memory = memory
        self.phase = "idle"
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.gaps: list[tuple[float, float, str]] = []  # (gap ms, at s, phase)
        self.peak_rss = memory.rss()
        self._n = 0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)

    def start(self, phase: str) -> None:
        self.phase = phase
        self.last = time.perf_counter()
        self.timer.start()

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(((now - self.last) * 1000.0, now - self.t0, self.phase))
        self.last = now
        self._n += 1
        if self._n % 10 == 0:
            self.peak_rss = max(self.peak_rss, self.memory.rss())

    def summary(self) -> dict:
        phases: dict[str, dict] = {}
        for gap, at, phase in self.gaps:
            p = phases.setdefault(phase, {"max_stall_ms": 0.0, "ticks": 0, "at_s": 0.0})
            p["ticks"] += 1
            if gap > p["max_stall_ms"]:
                p["max_stall_ms"], p["at_s"] = round(gap, 1), round(at, 2)
        worst = sorted(self.gaps, reverse=True)[:10]
        return {"phases": phases,
                "worst": [{"ms": round(g, 1), "at_s": round(a, 2), "phase": p}
                          for g, a, p in worst]}


def run(args) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY")
                          else os.environ.get("QT_QPA_PLATFORM", "xcb"))
    w, h = (int(v) for v in args.size.lower().split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="gui_stall_"))
    t = time.perf_counter()
    path = write_photo(tmp / "photo.png", h, w)
    print(f"wrote {w}×{h} synthetic photo ({path.stat().st_size / 1e6:.0f} MB PNG) in "
          f"{time.perf_counter() - t:.1f} s", flush=True)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from app.model import memory, services
    from app.model.session import SessionModel
    from app.qt_main_window import QtMainWindow

    codecs = args.codecs.split(",") if args.codecs else services.default_codec_pair()[:2]
    win = QtMainWindow(SessionModel(codecs=codecs + codecs[-1:] * (3 - len(codecs))),
                       persist=False)
    win.confirm_overwrite = lambda p: True
    errors = win.error_log  # (title, message) of every error dialog
    win.resize(1366, 768)
    win.show()
    s, c = win.session, win.controller
    s.view.compute_ms_ssim = not args.no_ms_ssim
    app.processEvents()
    memory.release(background=False)

    def run_until(cond, timeout: float) -> bool:
        loop = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: loop.quit() if cond() else None)
        poll.start(20)
        QTimer.singleShot(int(timeout * 1000), loop.quit)
        loop.exec()
        poll.stop()
        return bool(cond())

    def wait(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    mon = StallMonitor()
    rss_before = memory.rss()
    times: dict[str, float] = {}

    def phase(name: str, cond, timeout: float) -> bool:
        mon.phase = name
        t0 = time.perf_counter()
        ok = run_until(cond, timeout)
        times[name] = round(time.perf_counter() - t0, 2)
        print(f"{name}: {times[name]:.1f} s{'' if ok else ' (timed out)'}", flush=True)
        return ok

    mon.start("load")
    win.open_path(path)
    phase("load", lambda: s.image is not None, args.timeout)
    rss_loaded = memory.rss()
    shown = lambda: all(p.encoding is not None for p in s.active_panes)  # noqa: E731
    phase("encode", lambda: shown() or bool(errors), args.timeout)
    phase("score", lambda: c.is_idle() and (args.no_ms_ssim or all(
        "ms_ssim" in p.encoding.metrics for p in s.active_panes if p.encoding)), args.timeout)
    rss_open = memory.rss()

    mon.phase = "interact"
    t0 = time.perf_counter()
    cv = win.compare
    steps = [lambda: cv.zoom_to(1.0, (w / 2, h / 2))]
    for k in range(1, 6):
        steps.append(lambda k=k: cv.zoom_to(1.0, (w / 2 + 300 * k, h / 2 + 150 * k)))
    steps += [lambda: setattr(s.view, "split_pos", 0.45), lambda: setattr(s.view, "split_pos", 0.6),
              lambda: setattr(s.view, "diff_mode", "a-orig"),
              lambda: cv.zoom_to(4.0, (w / 3, h / 3)),
              lambda: setattr(s.view, "diff_mode", "off"),
              lambda: setattr(s.view, "compare_mode", "side"), cv.fit,
              lambda: setattr(s.view, "compare_mode", "split")]
    for step in steps:
        step()
        wait(0.15)
    times["interact"] = round(time.perf_counter() - t0, 2)

    mon.phase = "close"
    t0 = time.perf_counter()
    c.close_image()
    run_until(c.is_idle, args.timeout)
    wait(1.0)  # the views drop their pictures; malloc_trim runs
    times["close"] = round(time.perf_counter() - t0, 2)
    mon.timer.stop()
    memory.release(background=False)
    rss_after = memory.rss()
    if prof is not None:
        import pstats

        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)

    summ = mon.summary()
    in_work = [p for name, p in summ["phases"].items() if name in ("load", "encode", "score")]
    result = {
        "image": f"{w}x{h}", "megapixels": round(w * h / 1e6, 1), "codecs": codecs,
        "ms_ssim": not args.no_ms_ssim,
        "max_stall_ms_load_encode": max((p["max_stall_ms"] for p in in_work), default=None),
        "max_stall_ms_all": round(max(g for g, _, _ in mon.gaps), 1) if mon.gaps else None,
        "target_ms": TARGET_MS, "tick_ms": TICK_MS, "seconds": times,
        "rss_mb": {"before_open": round(rss_before / 2**20), "loaded": round(rss_loaded / 2**20),
                   "open_and_encoded": round(rss_open / 2**20),
                   "peak_sampled": round(mon.peak_rss / 2**20),
                   "after_close": round(rss_after / 2**20)},
        "errors": [f"{t}: {m}" for t, m in errors], **summ,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": [round(v, 2) for v in os.getloadavg()],
                    "qt_platform": os.environ.get("QT_QPA_PLATFORM")},
        "note": "GUI-thread gaps of a 10 ms timer; load/encode/score = the picture opening and "
                "its encodes and metrics running in workers",
    }
    win.controller.cancel_all()
    win.controller.pool.wait(60000)
    win.close()
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="6000x4000", help="W×H of the synthetic photo")
    ap.add_argument("--codecs", default="", help="pane codecs, comma-separated (default: the "
                    "studio's own first two)")
    ap.add_argument("--no-ms-ssim", action="store_true", help="skip the MS-SSIM scoring")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per phase")
    ap.add_argument("--profile", action="store_true", help="cProfile the GUI thread")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    res = run(args)
    print(f"\nlongest GUI stall while loading and encoding {res['image']} "
          f"({', '.join(res['codecs'])}): {res['max_stall_ms_load_encode']:.0f} ms "
          f"(target ≤ {TARGET_MS:.0f} ms)")
    for name, p in res["phases"].items():
        print(f"  {name:9s} {p['max_stall_ms']:7.1f} ms  ({p['ticks']} ticks)")
    r = res["rss_mb"]
    print(f"RSS: before {r['before_open']} MB · open {r['open_and_encoded']} MB · peak "
          f"{r['peak_sampled']} MB · after close {r['after_close']} MB")
    if res["errors"]:
        print("errors:", *res["errors"], sep="\n  ")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
