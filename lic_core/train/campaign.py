"""The training campaign: the codec learns on idle CPUs, a little in every session (issue 12).

``tools/campaign.sh [--stage codec|diffusion|hific|gan|finetune-<q>] start|status|stop|export``
(= ``python -m lic_core.train.campaign ...``). The default stage is ``codec`` (below); the
generative stages ``diffusion`` (the blur-dissipated decoder on frozen codec latents) and
``hific`` (hific-small with its own encoder and hyperprior) live in
:mod:`lic_core.train.generative_campaign`, ``gan`` (g_s retrained with HiFiC's objective on
frozen codec latents) in :mod:`lic_core.train.gan_campaign`, each with its own run folder
(``runs/campaign/<stage>``). Only one stage trains at a time: ``start``
refuses while another stage's process is alive.

The codec stage:

* ``start`` — resumes the newest checkpoint of ``runs/campaign/codec`` (full optimizer state),
  else starts from the shipped weights with a fresh optimizer (``--init``), as a background
  process under ``nice -n 19`` so it yields the CPU to everything else. It checkpoints at least
  every ``CKPT_MINUTES`` (a session may end at any moment) and validates with real bitstreams on
  the first Kodak images every ``VAL_CPU_MINUTES`` of training CPU.
* ``status`` — one line: running or not, step, cumulative training CPU-hours, last validation.
* ``stop`` — SIGTERM: the loop finishes its step, writes a checkpoint and exits.
* ``export`` — evaluates the newest checkpoint on Kodak with real bitstreams (6 slider points),
  writes fp16 weights + model card (cumulative CPU-hours and steps, recipe, data, BD-rates vs
  JPEG / WebP / AVIF, the learning curve as a PNG) + the RD JSON, and says whether the result
  beats the shipped weights by the required margin; ``--install`` then copies them into the
  codecs' weights folder (``lic_core/assets/weights/``, or ``$LIC_WEIGHTS_DIR``;
  :func:`lic_core.paths.weights_dir`) and the RD JSON into ``benchmarks/results/classical/``.

The run folder is git-ignored: it survives only while the same machine carries on, so every
session exports (and commits weights that improve) before it stops.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from ..errors import LicError
from ..paths import weights_dir as default_weights_dir
from ..paths import weights_path
from .campaign_base import (  # noqa: F401 - part of this module's interface
    CKPT_MINUTES,
    DEFAULT_DIR,
    ROOT,
    SHARED,
    STAGES,
    Campaign,
    CampaignError,
    _now,
    launch,
    training_inputs,
)
from .campaign_device import adopt, handoff  # noqa: F401 - the GPU path (part of the CLI)
from .checkpoint import latest_checkpoint
from .finetune_campaign import retire_finetuned

DEFAULT_NAME = "lic-lgem-cpu"
#: the weights a campaign starts from, and what its first install must beat, when no
#: ``DEFAULT_NAME`` weights ship yet (they stay installed: files written with them keep decoding)
BASELINE_NAME = "lic-lgem-preview"
VAL_CPU_MINUTES = 30.0
VAL_IMAGES = 6
#: BD-rate (PSNR) improvement over the shipped weights required to install an export, percent
MIN_GAIN_PCT = 2.0
CLASSICAL = ROOT / "benchmarks" / "results" / "classical"
REFERENCES = ("jpeg", "webp", "avif")

#: The campaign recipe (docs/training.md, "Recipe study": the best Kodak RD per CPU-hour of the
#: arms measured on this machine): the N=64 variant, crop 128 × batch 8 (crop 256 learned 3 dB
#: less per CPU-minute), lr 4e-4 constant after warm-up (1e-4: −2.6 dB; 1e-3: −0.2 dB), bf16
#: autocast (22 % cheaper steps, +0.5 dB at equal CPU), EMA for validation and export, threads
#: adapting to the machine's load, the six λ of the gain units from the start.
RECIPE: list[str] = [
    "--model", "lic-lgem-preview", "--batch", "8", "--crop", "128", "--lr", "4e-4",
    "--warmup", "200", "--decay", "constant", "--clip", "1.0", "--ema", "0.999", "--amp",
    "--threads", "0", "--log-every", "100", "--steps", "100000000",
]


def shipped_weights(name: str = DEFAULT_NAME) -> Optional[Path]:
    """The weights the codec ships with now (``$LIC_WEIGHTS_DIR`` honoured), if any: the
    campaign's own, else (for the default name) the preview it started from."""
    for n in (name, BASELINE_NAME) if name == DEFAULT_NAME else (name,):
        p = weights_path(n)
        if p.is_file():
            return p
    return None


def _init_history(src: Path) -> dict:
    """Steps and CPU-hours already spent on the weights the campaign starts from.

    A training checkpoint (e.g. the winning recipe-study arm) carries its own; shipped weights
    carry them in the card (``lic train --init`` books the card's CPU-hours into the run itself,
    so only the steps are added here).
    """
    if src.suffix == ".safetensors":
        from ..weights import load_weights

        card = (load_weights(src)[1] or {}).get("card") or {}
        # the sidecar card (NAME.json) may carry corrected history the file's metadata lacks
        # (the preview's card counted only its second phase); `lic train --init` books the
        # metadata's CPU-hours itself, so only the difference is added here
        side = src.with_suffix(".json")
        side_card = json.loads(side.read_text()) if side.is_file() else {}
        steps = (side_card.get("total_steps") or card.get("total_steps") or card.get("steps")
                 or side_card.get("steps") or 0)
        extra_h = float(side_card.get("cpu_hours") or 0.0) - float(card.get("cpu_hours") or 0.0)
        return {"init_steps": int(steps), "init_cpu_hours": max(0.0, extra_h)}
    from .checkpoint import load_checkpoint

    ck = load_checkpoint(src)
    return {"init_steps": int(ck.get("step", 0)),
            "init_cpu_hours": float(ck.get("cpu_s", 0.0)) / 3600.0}


def start(c: Campaign, data: Optional[str] = None, kodak: Optional[str] = None,
          init: Optional[str] = None, recipe: Optional[Sequence[str]] = None,
          extra: Sequence[str] = (), nice: int = 19, val: bool = True) -> str:
    """Start (or resume) the campaign in the background; returns a one-line message."""
    pid = c.pid()
    if pid:
        return f"campaign already running (pid {pid}); `status` to follow it"
    c.refuse_if_another_runs()
    if c.stage == "gan":
        from .gan_campaign import start_gan

        return start_gan(c, data=data, recipe=recipe, extra=extra, nice=nice)
    if c.stage.startswith("finetune-"):
        from .finetune_campaign import start_finetune

        return start_finetune(c, data=data, recipe=recipe, extra=extra, nice=nice)
    if c.stage != "codec":
        from .generative_campaign import start_stage

        return start_stage(c, data=data, kodak=kodak, recipe=recipe, extra=extra, nice=nice,
                           val=val)
    st = c.state()
    recipe = list(recipe or st.get("recipe") or RECIPE)
    data, kodak = training_inputs(st, data, kodak)
    cmd = [sys.executable, "-m", "lic_core.train", "--data", data, "--out", str(c.run_dir),
           *recipe, "--ckpt-minutes", str(CKPT_MINUTES), "--ckpt-every", "0", "--keep", "2"]
    if val and Path(kodak).is_dir():
        cmd += ["--val-dir", kodak, "--val-limit", str(VAL_IMAGES), "--val-u", "0", "0.5", "1",
                "--val-cpu-minutes", str(VAL_CPU_MINUTES)]
    how: str
    if latest_checkpoint(c.run_dir) is not None:
        cmd += ["--resume", str(c.run_dir)]
        how = f"resuming {latest_checkpoint(c.run_dir).name}"
    else:
        src = init if init is not None else st.get("init")
        seeded = None
        if src is None:
            from .campaign_seeds import codec_seed

            seeded = codec_seed()  # runs/ was lost: the committed seed continues the lineage
            w = shipped_weights()
            src = seeded["path"] if seeded else (str(w) if w else "none")
        if src != "none":
            if not Path(src).exists():
                raise CampaignError(f"--init weights not found: {src}")
            cmd += ["--init", src]
            how = f"starting from {src} with a fresh optimizer"
            if seeded:
                how = (f"continuing the committed seed {Path(src).name} (step {seeded['step']}, "
                       f"{seeded['cpu_s'] / 3600.0:.2f} CPU-h; fresh optimizer)")
                st["init_steps"] = int(seeded["step"])
                st["init_cpu_hours"] = 0.0  # `lic train --init` books the seed card's hours
            elif "init_steps" not in st:  # `adopt` already booked what came before
                st.update(_init_history(Path(src)))
        else:
            how = "starting from scratch"
    cmd += list(extra)
    c.root.mkdir(parents=True, exist_ok=True)
    st.update({"recipe": recipe, "data": data, "kodak": kodak})
    st.setdefault("created", _now())
    st.setdefault("init", None if "--resume" in cmd else (cmd[cmd.index("--init") + 1]
                                                          if "--init" in cmd else "none"))
    return launch(c, st, cmd, how, nice)


def stop(c: Campaign, timeout: float = 600.0) -> str:
    """SIGTERM the training process and wait until it has checkpointed and exited."""
    pid = c.pid()
    name = "campaign" if c.stage == "codec" else f"{c.stage} stage"
    if not pid:
        return f"{name} not running"
    os.kill(pid, signal.SIGTERM)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if c.pid() is None:
            break
        time.sleep(0.5)
    else:
        raise CampaignError(f"training process {pid} did not stop within {timeout:.0f} s")
    ck = latest_checkpoint(c.run_dir)
    return f"{name} stopped; newest checkpoint {ck.name if ck else 'none'}"


def _last(recs: list[dict], kind: str) -> Optional[dict]:
    for r in reversed(recs):
        if r.get("type") == kind:
            return r
    return None


def status(c: Campaign) -> str:
    """One line: state, step, cumulative training CPU-hours, last validation."""
    if c.stage == "gan":
        from .gan_campaign import status_gan

        return status_gan(c)
    if c.stage.startswith("finetune-"):
        from .finetune_campaign import status_finetune

        return status_finetune(c)
    if c.stage != "codec":
        from .generative_campaign import status_stage

        return status_stage(c)
    recs = c.log()
    pid = c.pid()
    state = f"running (pid {pid})" if pid else "stopped"
    if not recs:
        return f"campaign {state}: no training yet ({c.run_dir})"
    last = _last(recs, "train") or _last(recs, "end") or recs[-1]
    step = max(int(r.get("step", 0)) for r in recs)
    cpu_h = max(float(r.get("cpu_s", 0.0)) for r in recs) / 3600.0
    v = _last(recs, "val")
    vtxt = "no validation yet"
    if v:
        pts = " ".join(f"{p['bpp']:.3f}bpp/{p['psnr']:.2f}dB" for p in v["points"])
        vtxt = f"val @ {v['step']} on {v.get('images', '?')} Kodak: {pts}"
    it = f", {last['it_s']:.2f} it/s" if last.get("it_s") else ""
    return f"campaign {state}: step {step}, {cpu_h:.2f} CPU-h{it}; {vtxt}"


# ------------------------------------------------------------------------------------------
# export


def _kodak_names(kodak: str) -> list[str]:
    from .data import list_images

    return [p.name for p in list_images(kodak)]


def bd_rates(points: Sequence[dict], images: Optional[Sequence[str]] = None,
             classical: Path = CLASSICAL) -> dict:
    """BD-rate (PSNR, %) of ``points`` vs each classical reference present (None if undefined)."""
    from .learning_curve import rd_against, reference_curve

    out = {}
    for ref in REFERENCES:
        f = classical / f"{ref}.json"
        if f.is_file():
            try:
                out[ref] = rd_against(points, reference_curve(f, images))["bd_rate"]
            except KeyError:  # the reference was not measured on these images
                out[ref] = None
    return out


def rd_json(name: str, card: dict) -> dict:
    """The card's Kodak evaluation in CompressAI's results format (``lic eval``/``lic plot``)."""
    pts = card["eval"]["points"]
    res = {"bpp": [p["bpp"] for p in pts], "psnr-rgb": [p["psnr"] for p in pts]}
    if all("ms_ssim" in p for p in pts):
        res["ms-ssim-rgb"] = [p["ms_ssim"] for p in pts]
    res["rate"] = [p["u"] for p in pts]
    from ..weights import provenance_line

    return {"name": name, "description": provenance_line(card),
            "meta": {"kind": "learned", "family": "learned", "codec": name,
                     "images": card["eval"]["images"], "mode": card["eval"]["mode"],
                     "weights_hash": card.get("weights_hash")},
            "results": res}


def gain_over(old: dict, new: dict, names: Sequence[str],
              classical: Path = CLASSICAL) -> tuple[Optional[float], Optional[str]]:
    """BD-rate saving (%, PSNR) of the ``new`` card's Kodak points over the ``old`` card's, and
    how it was measured; (None, None) when the two were not evaluated on the same images.

    Directly when the two curves overlap in PSNR; otherwise (a curve that moved wholly above the
    other, as the first campaign weights did over the preview) as the difference of their
    BD-rates against the same classical curve on the same images (the first of WebP, JPEG, AVIF
    that both overlap): each curve needs (1 + BD/100) times the reference's bits at equal PSNR.
    """
    from ..evaluation.bdrate import bd_rate

    if not old.get("eval") or old["eval"].get("images") != new["eval"]["images"]:
        return None, None
    o, n = old["eval"]["points"], new["eval"]["points"]
    try:
        g = -bd_rate([p["bpp"] for p in o], [p["psnr"] for p in o],
                     [p["bpp"] for p in n], [p["psnr"] for p in n])
        if g == g:  # not NaN
            return float(g), "direct BD-rate"
    except Exception:  # noqa: BLE001 - no PSNR overlap
        pass
    old_bd, new_bd = bd_rates(o, names, classical), bd_rates(n, names, classical)
    for ref in ("webp", "jpeg", "avif"):
        ob, nb = old_bd.get(ref), new_bd.get(ref)
        if ob is not None and nb is not None:
            # each needs (1 + BD/100) × the reference's bits at equal PSNR, so the new curve
            # needs (100 + nb) / (100 + ob) of the old one's bits
            return 100.0 * (1.0 - (100.0 + nb) / (100.0 + ob)), f"via {ref}"
    return None, None


def export(c: Campaign, name: str = DEFAULT_NAME, eval_dir: Optional[str] = None,
           eval_limit: Optional[int] = None, install: bool = False, force_install: bool = False,
           weights_dir: Optional[Path] = None, results_dir: Path = CLASSICAL) -> dict:
    """Export the newest checkpoint; returns a summary dict (printed by the CLI)."""
    from ..weights import provenance_line
    from .checkpoint import load_checkpoint
    from .export import export_checkpoint
    from .learning_curve import curve_rows, render_xy

    ck_path = latest_checkpoint(c.run_dir)
    if ck_path is None:
        raise CampaignError(f"no checkpoint in {c.run_dir}; `start` the campaign first")
    st = c.state()
    eval_dir = eval_dir or st.get("kodak") or str(SHARED / "data" / "kodak")
    if not Path(eval_dir).is_dir():
        raise CampaignError(f"Kodak folder not found: {eval_dir}")
    ck = load_checkpoint(ck_path)
    cpu_h = float(ck.get("cpu_s", 0.0)) / 3600.0
    init_cpu_h = float(st.get("init_cpu_hours", 0.0))
    names = _kodak_names(eval_dir)
    if eval_limit:
        names = names[:eval_limit]
    out = c.export_dir
    out.mkdir(parents=True, exist_ok=True)

    # learning curve: BD-rate vs WebP (JPEG while the ranges do not overlap) on the val images
    curve_png = out / f"{name}.curve.png"
    rows = []
    ref = CLASSICAL / "webp.json"
    if ref.is_file():
        try:
            rows = curve_rows(c.run_dir / "log.jsonl", ref, _kodak_names(eval_dir))
        except KeyError:  # validation images the reference does not cover (tests)
            rows = []
    xs = [r["cpu_h"] + init_cpu_h for r in rows]
    series = [("BD-rate vs WebP (%), first Kodak images", xs, [r["bd_rate"] for r in rows])]
    render_xy(series, curve_png, "training CPU-hours (cumulative)", "BD-rate vs WebP (%, PSNR)",
              title=f"{name}: learning curve (real bitstreams)", hlines=[("WebP", 0.0)])

    def augment(card: dict) -> dict:
        card["cpu_hours"] = round(cpu_h + init_cpu_h, 3)
        card["gpu_hours"] = float(st.get("gpu_hours", 0.0))
        card["total_steps"] = int(ck["step"]) + int(st.get("init_steps", 0))
        card["recipe"] = shlex.join(st.get("recipe", []))
        card["campaign"] = {"sessions": len(st.get("sessions", [])), "created": st.get("created"),
                            "init": st.get("init")}
        if card.get("eval"):
            card["bd_rate"] = bd_rates(card["eval"]["points"], names)
            webp = card["bd_rate"].get("webp")
            card["preview"] = not (webp is not None and webp <= 0.0)
            card["status"] = ("PREVIEW — CPU-trained, below WebP on Kodak" if card["preview"]
                              else "trained on CPU — beats WebP on Kodak (BD-rate, PSNR)")
        card["learning_curve"] = curve_png.name
        return card

    card = export_checkpoint(ck_path, name, out, preview=True, eval_dir=eval_dir,
                             eval_limit=eval_limit, force=True, augment=augment,
                             notes="Trained by the CPU campaign (tools/campaign.sh); recipe and "
                                   "learning curve in docs/training.md.")
    (out / f"{name}.rd.json").write_text(json.dumps(rd_json(name, card), indent=1) + "\n")

    # compare with the shipped weights of the same name (their card's own Kodak evaluation)
    wdir = Path(weights_dir) if weights_dir else default_weights_dir()
    shipped_json = wdir / f"{name}.json"
    if not shipped_json.is_file() and name == DEFAULT_NAME:
        shipped_json = wdir / f"{BASELINE_NAME}.json"  # the first install must beat the preview
    gain, gain_basis = None, None
    if shipped_json.is_file():
        gain, gain_basis = gain_over(json.loads(shipped_json.read_text()), card, names)
    summary = {"name": name, "checkpoint": str(ck_path), "step": card["total_steps"],
               "cpu_hours": card["cpu_hours"], "points": card["eval"]["points"],
               "bd_rate": card.get("bd_rate"), "label": provenance_line(card),
               "gain_vs_shipped_pct": gain, "compared_with": shipped_json.stem,
               "gain_basis": gain_basis,
               "files": str(out)}
    better = gain is None or gain >= MIN_GAIN_PCT
    summary["beats_shipped"] = bool(better and shipped_json.is_file() and gain is not None) or \
        not shipped_json.is_file()
    if install:
        if not (summary["beats_shipped"] or force_install):
            summary["installed"] = False
            summary["why_not"] = (f"BD-rate gain vs shipped {gain:+.2f} % < {MIN_GAIN_PCT} %"
                                  if gain is not None else "not comparable with shipped")
        else:
            wdir.mkdir(parents=True, exist_ok=True)
            for suffix in (".safetensors", ".json", ".md", ".curve.png"):
                shutil.copy2(out / f"{name}{suffix}", wdir / f"{name}{suffix}")
            results_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / f"{name}.rd.json", results_dir / f"{name}.json")
            summary["installed"] = True
            summary["installed_into"] = str(wdir)
            summary["retired_finetuned"] = retire_finetuned(wdir, name)
    return summary


# ------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/campaign.sh",
                                description="The CPU training campaign (docs/training.md).")
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="campaign folder (runs/campaign)")
    p.add_argument("--stage", choices=STAGES, default="codec",
                   help="codec (default) | diffusion (the diffusion decoder on frozen codec "
                        "latents) | hific (hific-small) | gan (the GAN decoder on frozen codec "
                        "latents) | finetune-<quantizer> (the decoder on that quantizer's real "
                        "latents); one stage trains at a time")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start or resume training in the background (niced)")
    s.add_argument("--data", help="training folders joined by ':' (default train:train_extra)")
    s.add_argument("--kodak", help="validation folder (default ../shared/data/kodak)")
    s.add_argument("--init", help="weights to start from when there is no checkpoint "
                                  "(default: the shipped weights; 'none' = from scratch)")
    s.add_argument("--recipe", help="replace the recipe: `lic train` flags in one string")
    s.add_argument("--nice", type=int, default=19)
    s.add_argument("--no-val", action="store_true", help="no periodic validation")
    s.add_argument("extra", nargs=argparse.REMAINDER, help="more `lic train` flags after --")
    sub.add_parser("status", help="one line: steps, CPU-hours, last validation")
    t = sub.add_parser("stop", help="checkpoint and stop")
    t.add_argument("--timeout", type=float, default=600.0)
    e = sub.add_parser("export", help="evaluate on Kodak and write weights + card + curve")
    e.add_argument("--name", default=None,
                   help=f"weights name (codec: {DEFAULT_NAME}; diffusion: <codec>-diffusion; "
                        "hific: the config's, hific-small)")
    e.add_argument("--eval-dir")
    e.add_argument("--eval-limit", type=int)
    e.add_argument("--install", action="store_true",
                   help="copy into the weights folder (and the RD JSON into "
                        "benchmarks/results/classical/) if it beats the shipped weights by "
                        f"≥ {MIN_GAIN_PCT} % (diffusion, gan: if its LPIPS is below the MSE "
                        "decoder's at every slider point; hific: once the GAN stage began)")
    e.add_argument("--rates", default=None,
                   help="slider points of the generative stages' Kodak table "
                        "(default 0,0.2,0.4,0.6,0.8,1)")
    e.add_argument("--force-install", action="store_true", help="install even if not better")
    e.add_argument("--weights-dir", help="where shipped weights live (default "
                                         "lic_core/assets/weights, or $LIC_WEIGHTS_DIR)")
    sd = sub.add_parser("seed", help="write the newest checkpoint as the committed "
                                     "seed (campaign/seeds/) that `start` continues when runs/ "
                                     "is lost")
    sd.add_argument("--to", help="seeds folder (default campaign/seeds, $LIC_CAMPAIGN_SEEDS_DIR)")
    h = sub.add_parser("handoff", help="write the newest weights as a small file for a device")
    h.add_argument("--from", dest="src", help="run folder or checkpoint (default the campaign's)")
    h.add_argument("--to", required=True)
    d = sub.add_parser("adopt", help="continue from weights trained on a device (handoff file)")
    d.add_argument("path")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        c = Campaign(a.dir, a.stage)
        if a.cmd == "start":
            extra = [x for x in (a.extra or []) if x != "--"]
            print(start(c, a.data, a.kodak, a.init, shlex.split(a.recipe) if a.recipe else None,
                        extra, nice=a.nice, val=not a.no_val))
        elif a.cmd == "status":
            print(status(c))
        elif a.cmd == "stop":
            print(stop(c, a.timeout))
        elif a.cmd == "seed":
            from .campaign_seeds import write_seed

            r = write_seed(c, Path(a.to) if a.to else None)
            if r["installed"]:
                print(f"the installed {Path(r['path']).name} is the {c.stage} seed (step "
                      f"{r['step']}, {r['cpu_hours']:.2f} CPU-h, {r['checkpoint']}); wrote its "
                      f"log {r['log']}: commit both")
            else:
                print(f"wrote the {c.stage} seed {r['path']}: step {r['step']}, "
                      f"{r['cpu_hours']:.2f} CPU-h, {r['bytes'] / 1e6:.1f} MB (from "
                      f"{r['checkpoint']}); commit it with {Path(r['log']).name}")
        elif a.cmd in ("handoff", "adopt") and c.stage != "codec":
            raise CampaignError(f"{a.cmd} moves the codec's weights to and from a device; "
                                "the other stages do not have it yet")
        elif a.cmd == "handoff":
            r = handoff(a.src or c.run_dir, a.to)
            print(f"wrote {a.to}: step {r['step']}, {r['bytes'] / 1e6:.1f} MB")
        elif a.cmd == "adopt":
            print(adopt(c, a.path))
        elif a.cmd == "export" and (c.stage.startswith("finetune-") or c.stage == "gan"):
            from . import finetune_campaign as ft
            from . import gan_campaign as gan

            us = [float(v) for v in a.rates.split(",")] if a.rates else None
            mod = gan if c.stage == "gan" else ft
            exp = gan.export_gan if c.stage == "gan" else ft.export_finetune
            s = exp(c, a.eval_dir, a.eval_limit, us, a.install, a.force_install,
                    Path(a.weights_dir) if a.weights_dir else None)
            print("\n".join(mod.summary_lines(s)))
        elif a.cmd == "export" and c.stage != "codec":
            from .generative_campaign import export_stage, summary_lines

            us = [float(v) for v in a.rates.split(",")] if a.rates else None
            s = export_stage(c, a.name, a.eval_dir, a.eval_limit, us, a.install,
                             a.force_install, Path(a.weights_dir) if a.weights_dir else None)
            print("\n".join(summary_lines(s)))
        elif a.cmd == "export":
            s = export(c, a.name or DEFAULT_NAME, a.eval_dir, a.eval_limit, a.install,
                       a.force_install, Path(a.weights_dir) if a.weights_dir else None)
            pts = " | ".join(f"u={p['u']:.1f} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB"
                             for p in s["points"])
            print(f"exported {s['name']} (step {s['step']}, {s['cpu_hours']:.2f} CPU-h) → "
                  f"{s['files']}\n  Kodak: {pts}\n  {s['label']}")
            bd = s.get("bd_rate") or {}
            print("  BD-rate (PSNR): " + ", ".join(
                f"vs {k} {v:+.1f} %" if v is not None else f"vs {k} n/a" for k, v in bd.items()))
            g = s["gain_vs_shipped_pct"]
            print(f"  vs shipped {s.get('compared_with') or s['name']}: "
                  + (f"{g:+.2f} % BD-rate saving ({s.get('gain_basis')})" if g is not None
                     else "not comparable"))
            if "installed" in s:
                print(f"  installed into {s['installed_into']}" if s["installed"]
                      else f"  NOT installed: {s['why_not']}")
            for q in s.get("retired_finetuned") or []:
                if q == "tcq rate tables":
                    print(f"  removed {s['name']}.tcq-tables.json (designed on the old weights): "
                          "redesign with python -m lic_core.train.tcq_design --install")
                    continue
                what, stage = ("gan", "gan") if q == "gan" else (f"ft-{q}", f"finetune-{q}")
                print(f"  removed {s['name']}-{what} (tuned on the old weights): retrain it with "
                      f"tools/campaign.sh --stage {stage} start")
        return 0
    except LicError as exc:
        print(f"campaign: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
