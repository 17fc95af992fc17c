"""The campaign's GPU path: hand the codec's weights to a lent device and take them back
(``tools/campaign.sh handoff|adopt``, tools/device_train.sh). Split from :mod:`.campaign`."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .campaign_base import Campaign, CampaignError
from .checkpoint import latest_checkpoint

__all__ = ["handoff", "adopt"]


def handoff(src: Path | str, dst: Path | str) -> dict:
    """Write the newest checkpoint of ``src`` (a run folder or file) as a small weights-only
    checkpoint at ``dst``: the EMA weights when present (the better ones at a constant lr),
    fp32, no optimizer state — what fits a device upload (64 MiB with the data) and a device
    download (16 MiB per file). ``lic train --init`` takes it with a fresh optimizer."""
    import torch

    from .checkpoint import load_checkpoint

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
    from .checkpoint import load_checkpoint

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
