"""The campaign's GPU path: hand the codec's weights to a lent device and take them back
(``tools/campaign.sh handoff|adopt``, tools/device_train.sh), and how much a device ``run`` can
still carry (tools/device_train.sh ``prepare``).

The lent device machine receives the working tree's tracked files plus the ``carry`` paths, 64 MiB
in all. The shipped weights take most of it, so the training photos are copied at the largest
size that still fits (:func:`lic_core.train.data.copy_training_data_within`)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

from .base import ROOT, Campaign, CampaignError

__all__ = ["handoff", "adopt", "carry_budget", "tracked_bytes"]

#: the device tool's upload limit
UPLOAD_BYTES = 64 * 2**20
#: headroom for files git does not ignore but that are not tracked yet, and for rounding
MARGIN_BYTES = 2**20


def handoff(src: Path | str, dst: Path | str) -> dict:
    """Write the newest checkpoint of ``src`` (a run folder or file) as a small weights-only
    checkpoint at ``dst``: the EMA weights when present (the better ones at a constant lr),
    fp32, no optimizer state — what fits a device upload (64 MiB with the data) and a device
    download (16 MiB per file). ``lic train --init`` takes it with a fresh optimizer."""
    import torch

    ck = load_checkpoint(src)
    state = ck["ema"]["shadow"] if ck.get("ema") else ck["model"]
    out = {"model": state, "ema": None, "step": int(ck["step"]), "model_name": ck.get("model_name"),
           "config": ck.get("config"), "train": ck.get("train", {}), "data": ck.get("data", {}),
           "cpu_s": float(ck.get("cpu_s", 0.0)), "wall_s": float(ck.get("wall_s", 0.0)),
           "device": ck.get("device", ""), "torch": str(torch.__version__), "handoff": True}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(out, tmp)
    os.replace(tmp, dst)
    return {"step": out["step"], "bytes": dst.stat().st_size, "device": out["device"]}


def adopt(c: Campaign, path: Path | str) -> str:
    """Continue the campaign from weights trained elsewhere (a device chunk's handoff file):
    the current run folder is archived, and the next ``start`` begins from ``path`` with a fresh
    optimizer; steps, CPU-hours and GPU-hours carry over into the card."""
    if c.pid():
        raise CampaignError("stop the campaign first (`tools/campaign.sh stop`)")
    dev = load_checkpoint(path)
    st = c.state()
    here = latest_checkpoint(c.run_dir)
    steps = int(st.get("init_steps", 0))
    cpu_h = float(st.get("init_cpu_hours", 0.0))
    if here is not None:
        ck = load_checkpoint(here)
        steps += int(ck["step"])
        cpu_h += float(ck.get("cpu_s", 0.0)) / 3600.0
        c.run_dir.rename(c.root / f"codec-until-{int(ck['step']):08d}")
    keep = c.root / "adopted"
    keep.mkdir(parents=True, exist_ok=True)
    dst = keep / Path(path).name
    if Path(path).resolve() != dst.resolve():
        shutil.copy2(path, dst)
    gpu_h = float(st.get("gpu_hours", 0.0))
    if not str(dev.get("device", "CPU")).startswith("CPU"):  # device_description(): GPU name
        gpu_h += float(dev.get("wall_s", 0.0)) / 3600.0
    else:
        cpu_h += float(dev.get("cpu_s", 0.0)) / 3600.0
    st.update({"init": str(dst), "init_steps": steps + int(dev["step"]), "init_cpu_hours": cpu_h,
               "gpu_hours": gpu_h})
    c.save_state(st)
    return (f"campaign will continue from {dst.name} ({st['init_steps']} steps, {cpu_h:.2f} CPU-h, "
            f"{gpu_h:.3f} GPU-h so far); run `tools/campaign.sh start`")


def tracked_bytes(root: Path = ROOT) -> int:
    """Bytes of the files git tracks under ``root`` (what every ``run`` uploads)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True,
                           capture_output=True).stdout.split(b"\0")
    return sum((root / n.decode()).stat().st_size for n in names
               if n and (root / n.decode()).is_file())


def _path_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def carry_budget(other_carried: Sequence[str] = (), root: Path = ROOT) -> int:
    """Bytes left for the training photos: the upload limit less the tracked files, the other
    carried paths (relative to ``root``) and a 1 MiB margin."""
    other = sum(_path_bytes(root / p) for p in other_carried)
    return UPLOAD_BYTES - tracked_bytes(root) - other - MARGIN_BYTES
