"""Committed seeds of the long campaign stages: progress that survives a lost ``runs/``.

A generative stage needs 6–15 CPU-hours (docs/training.md), several sessions of one machine's
background time, but ``runs/`` lives only as long as that machine. At the end of a session whose
stage has not yet earned an install, ``tools/campaign.sh --stage diffusion|hific seed`` writes the
newest checkpoint's weights (diffusion: the EMA shadow, what an export would ship; hific: E/G/
hyperprior and, once the GAN stage began, D) in fp16 with its
step, CPU seconds and codec hash to ``campaign/seeds/<stage>.safetensors``, plus the stage's
training log (the learning curve and the CPU-hour booking) — a few MB that are committed. When
``start`` finds no run folder to resume, it continues the seed: the same step count and booked
CPU time, a fresh optimizer (the only state that is lost), the log carried on.

A seed is not a product: nothing loads it except the stage's trainer, and the codec never offers
it as a decoder (installed weights come from ``export --install`` alone).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

from .base import Campaign, CampaignError, now

FORMAT_TAG = "lic-campaign-seed/1"


#: the committed seeds: beside this package's code (``campaign/seeds/``)
SEEDS_DIR = Path(__file__).resolve().parent / "seeds"


def seeds_dir() -> Path:
    """``$LIC_CAMPAIGN_SEEDS_DIR`` or ``campaign/seeds`` of the checkout."""
    env = os.environ.get("LIC_CAMPAIGN_SEEDS_DIR")
    return Path(env) if env else SEEDS_DIR


def seed_paths(stage: str, folder: Optional[Path] = None) -> tuple[Path, Path]:
    """(weights, log) of a stage's seed."""
    d = Path(folder) if folder is not None else seeds_dir()
    return d / f"{stage}.safetensors", d / f"{stage}.log.jsonl"


def read_seed(stage: str, folder: Optional[Path] = None) -> Optional[dict]:
    """The seed's metadata (step, cpu_s, codec hash, …) without its tensors, or None."""
    from safetensors import safe_open

    path, _ = seed_paths(stage, folder)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - a torn seed is as good as none; say so at start
        return {"broken": True, "path": str(path)}
    if meta.get("format") != FORMAT_TAG or meta.get("stage") != stage:
        return {"broken": True, "path": str(path)}
    return {**meta, "path": str(path), "step": int(meta.get("step", 0)),
            "cpu_s": float(meta.get("cpu_s", 0.0))}


def installed_diffusion_seed(codec: str) -> Optional[dict]:
    """The installed diffusion decoder of ``codec`` as a seed (it holds the EMA weights in fp16
    with ``step`` and ``cpu_s``, which the trainer's ``--resume`` reads), or None."""
    from safetensors import safe_open

    from lic_core.paths import diffusion_weights_path

    path = diffusion_weights_path(codec)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        return {**meta, "path": str(path), "step": int(meta["step"]),
                "cpu_s": float(meta.get("cpu_s", 0.0))}
    except Exception:  # noqa: BLE001 - weights without a step are no seed
        return None


def write_seed(c: Campaign, folder: Optional[Path] = None) -> dict:
    """Write the stage's newest checkpoint as its seed (``c.seed``: the stages that have one
    say how; the others refuse); returns a summary."""
    return c.seed(folder)


def _half(v):
    return (v.detach().half() if v.is_floating_point() else v.detach()).cpu().contiguous()


def write_stage_seed(c, folder: Optional[Path] = None) -> dict:
    """The generative stages' seed: ``c.seed_tensors(checkpoint)`` in fp16 with step, CPU seconds
    and codec hash, plus the training log.

    When the installed weights are that very checkpoint (``c.installed_seed()``: the diffusion
    decoder after ``export --install`` of the same step), only the log is written: the shipped
    file is the seed (no second copy in git)."""
    from safetensors.torch import save_file

    ck_path = latest_checkpoint(c.run_dir)
    if ck_path is None:
        raise CampaignError(f"no checkpoint in {c.run_dir} to seed from")
    ck = load_checkpoint(ck_path)
    tensors = {k: _half(v) for k, v in c.seed_tensors(ck).items()}
    meta = {"format": FORMAT_TAG, "stage": c.stage, "step": str(int(ck["step"])),
            "cpu_s": str(float(ck.get("cpu_s", 0.0))), "codec": str(ck.get("codec", "")),
            "codec_weights_hash": str(ck.get("codec_weights_hash", "")),
            "config": json.dumps(ck.get("config") or {}, sort_keys=True),
            "weights": "EMA" if ck.get("ema") else "raw", "written": now(),
            "trainer_stage": str(ck.get("stage", c.stage)),
            "init_lineage": json.dumps(ck.get("init_lineage")) if ck.get("init_lineage") else "",
            "note": "campaign seed: training state for tools/campaign.sh, not a product"}
    path, log = seed_paths(c.stage, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    shipped = c.installed_seed()
    if shipped is not None and shipped["step"] == int(ck["step"]):
        path.unlink(missing_ok=True)  # an older seed: the installed weights supersede it
        path = Path(shipped["path"])
    else:
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)
    _copy_log(c, log)
    return {"path": str(path), "bytes": path.stat().st_size, "step": int(ck["step"]),
            "installed": shipped is not None and shipped["step"] == int(ck["step"]),
            "log": str(log),
            "cpu_hours": float(ck.get("cpu_s", 0.0)) / 3600.0, "checkpoint": ck_path.name}


def _copy_log(c: Campaign, log: Path) -> None:
    src_log = c.run_dir / "log.jsonl"
    if src_log.is_file():
        tmp = log.with_name(log.name + ".tmp")
        shutil.copyfile(src_log, tmp)
        tmp.replace(log)


def adopt_seed(c: Campaign, folder: Optional[Path] = None,
               codec: Optional[str] = None) -> Optional[tuple[list[str], str]]:
    """When the stage has nothing to resume in ``runs/`` and a seed exists (a committed seed, or
    the installed diffusion weights of ``codec`` when they are newer): put the seed's log in the
    run folder and return (trainer flags, how) to continue it; else None."""
    if latest_checkpoint(c.run_dir) is not None or c.resumes_without_checkpoint():
        return None
    meta = read_seed(c.stage, folder)
    if meta is not None and meta.get("broken"):
        raise CampaignError(f"{meta['path']} is not a readable campaign seed; move it aside "
                            "to start from scratch")
    shipped = c.installed_seed(codec)
    if shipped is not None and (meta is None or shipped["step"] >= meta["step"]):
        meta = shipped  # the installed weights are the newest state committed
    if meta is None:
        return None
    _, log = seed_paths(c.stage, folder)
    c.run_dir.mkdir(parents=True, exist_ok=True)
    run_log = c.run_dir / "log.jsonl"
    if log.is_file() and not run_log.exists():
        shutil.copyfile(log, run_log)
    how = (f"continuing the committed seed {Path(meta['path']).name} (step {meta['step']}, "
           f"{meta['cpu_s'] / 3600.0:.2f} CPU-h; fresh optimizer)")
    return ["--resume", meta["path"]], how


def write_codec_seed(c: Campaign, folder: Optional[Path] = None) -> dict:
    """The codec stage's seed: the newest checkpoint's EMA weights (fp16) with a card holding
    the lineage's total steps and CPU-hours (what ``lic train --init`` books) and the hash of
    the shipped weights the run started from (a later install makes the seed stale)."""
    from safetensors.torch import save_file

    from lic_core.paths import weights_path
    from lic_core.weights import read_weights_hash

    ck_path = latest_checkpoint(c.run_dir)
    if ck_path is None:
        raise CampaignError(f"no checkpoint in {c.run_dir} to seed from")
    ck = load_checkpoint(ck_path)
    st = c.state()
    state = ck["ema"]["shadow"] if ck.get("ema") else ck["model"]
    tensors = {k: _half(v) for k, v in state.items()}
    steps = int(st.get("init_steps", 0)) + int(ck["step"])
    cpu_h = float(ck.get("cpu_s", 0.0)) / 3600.0  # `lic train --init` booked the start's hours
    name = st.get("name") or "lic-lgem-cpu"
    try:
        base = read_weights_hash(weights_path(name)) or ""
    except Exception:  # noqa: BLE001 - no shipped weights: the seed is not bound to any
        base = ""
    card = {"steps": steps, "total_steps": steps, "cpu_hours": round(cpu_h, 4),
            "device": ck.get("device", ""), "seed_of": name}
    meta = {"format": FORMAT_TAG, "stage": "codec", "step": str(steps),
            "cpu_s": str(cpu_h * 3600.0), "base_weights_hash": base,
            "config": json.dumps(ck.get("config") or {}, sort_keys=True, default=str),
            "card": json.dumps(card), "weights": "EMA" if ck.get("ema") else "raw",
            "written": now(), "run_step": str(int(ck["step"])),
            "note": "campaign seed: training state for tools/campaign.sh, not a product"}
    path, log = seed_paths("codec", folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    _copy_log(c, log)
    return {"path": str(path), "bytes": path.stat().st_size, "step": steps, "installed": False,
            "log": str(log), "cpu_hours": cpu_h, "checkpoint": ck_path.name}


def codec_seed(name: str = "lic-lgem-cpu", folder: Optional[Path] = None) -> Optional[dict]:
    """The committed codec seed when it continues the weights shipped now (same base hash) and
    is ahead of them; else None.  ``{"path", "step", "cpu_s"}``."""
    from lic_core.paths import weights_path
    from lic_core.weights import read_weights_hash

    meta = read_seed("codec", folder)
    if meta is None or meta.get("broken"):
        return None
    try:
        shipped = read_weights_hash(weights_path(name)) or ""
    except Exception:  # noqa: BLE001
        shipped = ""
    if meta.get("base_weights_hash", "") != shipped:
        return None  # trained from weights that are no longer shipped: an install superseded it
    return meta
