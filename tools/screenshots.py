"""Regenerate the README's screenshots (docs/screenshots/*.png) with ``lic-studio --screenshot``.

Usage: ``PYTHONPATH=. python tools/screenshots.py [IMAGE]`` (default: the bundled sample photo).

Each shot is the whole studio window at 1366×768 (a common laptop screen) rendered offscreen by
``lic-studio --screenshot`` in its own process, exactly as a user or a bug report would make it;
the commands are printed.  The PNG is then palette-quantised (256 colours, no dithering) so the
repository stays small; the pixels a reader sees are otherwise the studio's own.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
SIZE = "1366x768"

#: name → extra ``lic-studio`` arguments (the image or .lic file is added at the end)
SHOTS = {
    "compare_split": [],
    "latent_browser": ["--view", "side", "--tab", "latents"],
    "entropy_heatmap": ["--tab", "entropy", "--overlay", "bits_y"],
    "rd_plot": ["--sweep", "--panes", "3", "--view", "side", "--tab", "rate"],
    "artifact_finder": ["--panes", "2", "--tab", "artifacts", "--artifacts", "original,A"],
}


def _quantize(png: bytes) -> bytes:
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGB")
    # octree keeps the few exact UI colours (curves, badges) that median cut merges away
    q = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    q.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _studio(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "app", *args]
    print("lic-studio " + " ".join(args))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(ROOT))
    from app.model import services
    from lic_core.fileio import write_bytes_atomic

    image = Path(argv[0]) if argv else services.sample_image_path()
    shots = dict(SHOTS)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        lic = Path(tmp) / f"{image.stem}.lic"
        from lic_core.cli import main as lic_main

        if lic_main(["compress", str(image), str(lic), "--quiet"]) == 0:
            shots["decoded_file"] = ["--original", str(image), "--tab", "file", "--panes", "2"]
        for name, extra in shots.items():
            raw = Path(tmp) / f"{name}.png"
            target = str(lic) if name == "decoded_file" else str(image)
            _studio(["--screenshot", str(raw), "--size", SIZE, *extra, target])
            out = OUT / f"{name}.png"
            write_bytes_atomic(out, _quantize(raw.read_bytes()), overwrite=True)
            print(f"  → {out.relative_to(ROOT)} ({out.stat().st_size / 1000:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
