"""Small synthetic training photos and a wait for a launched stage process, shared by the
campaign and trainer tests (no test data from ../shared needed)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image


def striped_photos(folder: Path, n: int = 3, size: int = 96) -> Path:
    """``n`` size×size PNGs of modular stripes plus noise (seeded), written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        base = np.stack([(xx * (i + 1) + yy) % 256, (yy * 2 + i * 40) % 256,
                         (xx + yy * (i + 2)) % 256], -1).astype(np.float64)
        img = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
    return folder


def wait_stopped(stage, timeout: float = 240.0) -> None:
    """Wait until ``stage`` (a campaign stage) has no running process; fail after ``timeout``."""
    t0 = time.monotonic()
    while stage.pid() is not None:
        assert time.monotonic() - t0 < timeout, "stage process did not finish"
        time.sleep(0.3)
