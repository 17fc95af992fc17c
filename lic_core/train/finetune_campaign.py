"""The campaign's fine-tuning stages (issue 16): ``finetune-round|deadzone|rdoq|tcq``.

``tools/campaign.sh --stage finetune-tcq start|status|stop|export`` retrains the synthesis g_s
and the inverse gains G' of the **shipped** codec weights on latents quantized exactly as
``compress()`` quantizes them with that quantizer (docs/methods.md §4.5,
:mod:`lic_core.train.finetune`), beside the codec stage and under the same rules (niced background
process, checkpoints at least every ``CKPT_MINUTES``, CPU-hours booked from the process's CPU time,
one stage at a time).

* ``start`` resumes the stage's newest checkpoint when it was tuned on the weights shipped now;
  when the shipped codec weights have moved on (a codec ``export --install``), the old run is
  set aside (``runs/campaign/finetune-<q>.stale-<hash>``) and the stage starts afresh from the
  new weights — a decoder tuned on other latents would decode these badly.
* ``export`` writes ``runs/campaign/export/<codec>-ft-<q>.{safetensors,md,json,curve.png}`` and
  measures it on Kodak with real bitstreams: the quantizer with the base decoder, with the
  fine-tuned one, and rounding (the default), at the same slider points; BD-rates (PSNR) against
  rounding and against the quantizer's own base decoder go on the card.
* ``--install`` copies the decoder into the weights folder when it saves at least
  :data:`MIN_SAVING_PCT` % BD-rate over the same quantizer with the base decoder; the codec then
  uses it for that quantizer on both sides (its hash is mixed into the file header), and the
  Kodak table is merged into ``<codec>.quantizers.json`` beside the weights (the studio's
  quantizer tooltips read it).
"""
from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import LicError
from .campaign_base import (
    CKPT_MINUTES,
    SHARED,
    Campaign,
    CampaignError,
    _now,
    launch,
    over_weights_budget,
    training_inputs,
)
from .checkpoint import latest_checkpoint, load_checkpoint
from .generative_campaign import _flag

#: a fine-tuned decoder ships only when it saves at least this much over the base decoder
MIN_SAVING_PCT = 0.5
#: slider points of the export's Kodak measurement
EVAL_US = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

#: ``lic finetune`` flags of the stage (docs/methods.md §4.5 step 5: stage-1 crops and batch;
#: lr 1e-4, above the 1e-5–3e-5 of a long GPU run, because a CPU run has a few thousand steps, not
#: 50k–200k — the shipped TCQ decoder was trained so)
RECIPE = ["--model", "lic-lgem-cpu", "--batch", "8", "--crop", "128", "--lr", "1e-4",
          "--threads", "0", "--log-every", "20"]


def stage_quantizer(c: Campaign) -> str:
    return c.stage.split("-", 1)[1]


def shipped_hash(model_name: str) -> Optional[str]:
    """The hash in the metadata of the shipped codec weights (None when there are none)."""
    from .generative_campaign import _shipped_codec_hash

    return _shipped_codec_hash(model_name)


def _ckpt_base(ck_path: Path) -> Optional[str]:
    return load_checkpoint(ck_path).get("base_weights_hash")


def start_finetune(c: Campaign, data: Optional[str] = None, recipe: Optional[Sequence[str]] = None,
                   extra: Sequence[str] = (), nice: int = 19) -> str:
    """Start or resume a fine-tuning stage in the background; returns a one-line message."""
    return start_bound_stage(c, "lic_core.train.finetune", ["--quantizer", stage_quantizer(c)],
                             RECIPE, data, recipe, extra, nice)


def start_bound_stage(c: Campaign, module: str, args: Sequence[str], default_recipe: Sequence[str],
                      data: Optional[str] = None, recipe: Optional[Sequence[str]] = None,
                      extra: Sequence[str] = (), nice: int = 19) -> str:
    """Start or resume, in the background, a stage that retrains a decoder on the frozen latents
    of the shipped codec weights (``python -m <module> ... --run-dir``): the fine-tuning stages
    and the GAN decoder stage (:mod:`.gan_campaign`). A run begun on other codec weights is set
    aside and the stage starts afresh. Returns a one-line message."""
    st = c.state()
    recipe = list(recipe or st.get("recipe") or default_recipe)
    data, _ = training_inputs(st, data, None)
    model_name = _flag(recipe, "--model", "lic-lgem-cpu") or "lic-lgem-cpu"
    now = shipped_hash(model_name)
    if now is None:
        raise CampaignError(f"no shipped {model_name} weights to fine-tune")
    ck = latest_checkpoint(c.run_dir)
    how = "starting from the shipped weights' decoder"
    if ck is not None:
        base = _ckpt_base(ck)
        if base == now:
            how = f"resuming {ck.name}"
        else:
            aside = c.run_dir.with_name(f"{c.run_dir.name}.stale-{(base or 'unknown')[:8]}")
            if aside.exists():
                shutil.rmtree(aside)
            c.run_dir.rename(aside)
            how = (f"the shipped {model_name} weights changed since {ck.name}: starting afresh "
                   f"(old run set aside in {aside.name})")
    cmd = [sys.executable, "-m", module, "--data", data, *args, "--run-dir", str(c.run_dir),
           *recipe, "--steps", "100000000", "--ckpt-minutes", str(CKPT_MINUTES), "--keep", "2",
           "--no-write", *extra]
    c.root.mkdir(parents=True, exist_ok=True)
    st.update({"recipe": recipe, "data": data, "stage": c.stage, "codec": model_name,
               "base_weights_hash": now})
    st.setdefault("created", _now())
    return launch(c, st, cmd, how, nice)


def status_finetune(c: Campaign) -> str:
    """One line: running or not, step, CPU-hours, speed, recent training PSNR, base weights."""
    recs = [r for r in c.log() if r.get("type") == "train"]
    pid = c.pid()
    state = f"running (pid {pid})" if pid else "stopped"
    if not recs:
        return f"{c.stage} stage {state}: no training yet ({c.run_dir})"
    last = recs[-1]
    parts = [f"{c.stage} stage {state}: step {last['step']}, "
             f"{float(last.get('cpu_s', 0)) / 3600:.2f} CPU-h"]
    if last.get("it_s"):
        parts.append(f"{last['it_s']:.2f} it/s")
    window = [r["psnr_recent"] for r in recs[-10:] if "psnr_recent" in r]
    if window:
        parts.append(f"training PSNR ~{sum(window) / len(window):.2f} dB")
    st = c.state()
    now = shipped_hash(st.get("codec") or "lic-lgem-cpu")
    note = ""
    if st.get("base_weights_hash") and now and now != st["base_weights_hash"]:
        note = (f"; the shipped {st.get('codec')} weights changed since this stage started "
                "(`start` begins afresh on them)")
    return ", ".join(parts) + note


def export_finetune(c: Campaign, eval_dir: Optional[str] = None, eval_limit: Optional[int] = None,
                    us: Optional[Sequence[float]] = None, install: bool = False,
                    force_install: bool = False, weights_dir: Optional[Path] = None,
                    progress=print) -> dict:
    """Export the newest checkpoint as a fine-tuned decoder, measure it on Kodak; see module."""
    from ..codecs.learned import LearnedCodec
    from ..evaluation.quantizers import (
        bd_table,
        merge_quantizer_table,
        quantizer_curve,
        quantizer_table_path,
    )
    from ..fileio import write_bytes_atomic
    from ..image import load_image
    from ..models import load_model
    from ..paths import finetuned_path
    from ..paths import weights_dir as default_weights_dir
    from .finetune import save_finetuned
    from .generative_campaign import _curve

    ck_path = latest_checkpoint(c.run_dir)
    if ck_path is None:
        raise CampaignError(f"no checkpoint in {c.run_dir}; `--stage {c.stage} start` first")
    ck = load_checkpoint(ck_path)
    if ck.get("kind") != "finetune":
        raise CampaignError(f"{ck_path} is not a fine-tuning checkpoint")
    st = c.state()
    q = stage_quantizer(c)
    model_name = st.get("codec") or "lic-lgem-cpu"
    model = load_model(model_name)
    base_now = model.weights_meta["weights_hash_bytes"].hex()
    if ck.get("base_weights_hash") != base_now:
        raise CampaignError(f"{ck_path.name} was tuned on other {model_name} weights than those "
                            "shipped now; `start` the stage again (it begins afresh)")
    model.load_state_dict(ck["model"], strict=False)
    kodak = eval_dir or str(SHARED / "data" / "kodak")
    files = sorted(Path(kodak).glob("*.png"))[: eval_limit or None]
    if not files:
        raise CampaignError(f"no Kodak PNGs under {kodak}")
    images = [load_image(p) for p in files]
    us = tuple(us or EVAL_US)
    out = c.export_dir
    out.mkdir(parents=True, exist_ok=True)
    path = finetuned_path(model_name, q, out)
    qparams = ck.get("quantizer_params") or {}
    card = {"kind": "decoder fine-tuned on real quantized latents (docs/methods.md §4.5)",
            "base_model": model_name, "base_weights_hash": base_now, "quantizer": q,
            "quantizer_params": qparams, "total_steps": int(ck["step"]),
            "cpu_hours": round(float(ck.get("cpu_s", 0.0)) / 3600.0, 4), "gpu_hours": 0.0,
            "device": "CPU (campaign, tools/campaign.sh)", "train": ck.get("train"),
            "quantizer_changes": ck.get("quantizer_changes") or [],
            "lr_changes": ck.get("lr_changes") or [],
            "recipe": shlex.join(st.get("recipe", [])), "data": st.get("data", ""),
            "exported": _now()}
    save_finetuned(model, path, card)

    base = LearnedCodec(model_name, use_finetuned=False)
    tuned = LearnedCodec(model_name, finetuned_dir=out)
    curves = {f"{q}/before": quantizer_curve(base, images, q, us, qparams, progress)}
    curves[f"{q}/after"] = quantizer_curve(tuned, images, q, us, qparams, progress)
    if q != "round":
        curves["round/before"] = quantizer_curve(base, images, "round", us, None, progress)
    vs_round = bd_table(curves, "round/before")
    vs_base = bd_table(curves, f"{q}/before")
    bd_after = vs_base[f"{q}/after"]["bd_rate_percent"]
    saving = None if bd_after is None else -bd_after
    earned = saving is not None and saving >= MIN_SAVING_PCT
    card.update({
        "eval": {"folder": kodak, "images": [p.name for p in files], "us": list(us),
                 "curves": curves,
                 "bd_vs_round_percent": {k: v["bd_rate_percent"] for k, v in vs_round.items()},
                 "bd_vs_own_base_decoder_percent": vs_base[f"{q}/after"]["bd_rate_percent"]},
        "status": (f"helps: {saving:.2f} % BD-rate saving over the base decoder for {q}"
                   if earned else "does not help enough (" + (
                       "no BD-rate on these curves" if saving is None else
                       f"{saving:+.2f} % saving") + f" over the base decoder for {q}; needs "
                   f"≥ {MIN_SAVING_PCT} %)"),
        "learning_curve": f"{path.stem}.curve.png"})
    save_finetuned(model, path, card)  # the same tensors, now with the measured card
    write_bytes_atomic(path.with_suffix(".json"),
                       (json.dumps(card, indent=1, sort_keys=True) + "\n").encode(), True)
    _curve(c, out / f"{path.stem}.curve.png", f"{path.stem}: fine-tuning (CPU campaign)")
    s = {"name": path.stem, "card": card, "files": str(out), "earned": earned,
         "saving_pct": saving, "checkpoint": str(ck_path)}
    if install:
        wdir = Path(weights_dir) if weights_dir else default_weights_dir()
        over = over_weights_budget(wdir, [out / f"{path.stem}{x}" for x in
                                          (".safetensors", ".md", ".json", ".curve.png")])
        if not (earned or force_install):
            s.update(installed=False, why_not=card["status"])
        elif over:  # measured and exported all the same: the table can carry it (docs/quantizers.md)
            s.update(installed=False, why_not=over)
        else:
            wdir.mkdir(parents=True, exist_ok=True)
            for suffix in (".safetensors", ".md", ".json", ".curve.png"):
                shutil.copy2(out / f"{path.stem}{suffix}", wdir / f"{path.stem}{suffix}")
            merge_quantizer_table(quantizer_table_path(model_name, wdir), base_now, us,
                                  [p.name for p in files], curves)
            s.update(installed=True, installed_into=str(wdir))
    return s


def summary_lines(s: dict) -> list[str]:
    card = s["card"]
    lines = [f"exported {s['name']} ({card['total_steps']} steps, {card['cpu_hours']:.2f} CPU-h) "
             f"→ {s['files']}", f"  {card['status']}"]
    for key, v in card["eval"]["bd_vs_round_percent"].items():
        lines.append(f"  {key:14s} BD-rate vs rounding "
                     + ("n/a" if v is None else f"{v:+.2f} %"))
    if "installed" in s:
        lines.append(f"  installed into {s['installed_into']}" if s["installed"]
                     else f"  NOT installed: {s['why_not']}")
    return lines


def retire_finetuned(wdir: Path, name: str) -> list[str]:
    """Remove the decoders fine-tuned on earlier ``name`` weights (its quantizer table, its
    designed TCQ rate tables and its GAN decoder too) from the weights folder: the codec would
    ignore them beside the new weights anyway (they were tuned on other latents), so they only
    take space. Returns the quantizers they were for (and "tcq rate tables", "gan"); the
    ``finetune-<q>`` and ``gan`` stages retrain them on the new weights (docs/training.md)."""
    from ..decoder.finetuned import finetuned_base_hash
    from ..evaluation.quantizers import quantizer_table_path
    from ..weights import read_weights_hash

    now = read_weights_hash(wdir / f"{name}.safetensors")
    retired = []
    for q in ("round", "deadzone", "rdoq", "tcq"):
        ft = wdir / f"{name}-ft-{q}.safetensors"
        if ft.is_file() and finetuned_base_hash(ft) != now:
            for suffix in (".safetensors", ".md", ".json", ".curve.png"):
                ft.with_suffix(suffix).unlink(missing_ok=True)
            retired.append(q)
    gan = wdir / f"{name}-gan.safetensors"  # lic_core.paths.gan_weights_path
    if gan.is_file() and finetuned_base_hash(gan) != now:
        for suffix in (".safetensors", ".md", ".json", ".curve.png"):
            gan.with_suffix(suffix).unlink(missing_ok=True)
        retired.append("gan")
    table = quantizer_table_path(name, wdir)
    if table.is_file():
        try:
            stale = json.loads(table.read_text()).get("base_weights_hash") != now
        except ValueError:
            stale = True
        if stale:
            table.unlink()
    from ..quantizer.tcq_designed import SUFFIX, read_table_file

    tcq = wdir / f"{name}{SUFFIX}"
    if tcq.is_file():  # designed TCQ rate tables fit the old weights' σ: redesign them
        try:
            stale = read_table_file(tcq).get("base_weights_hash") != now
        except LicError:
            stale = True
        if stale:
            tcq.unlink()
            retired.append("tcq rate tables")
    return retired
