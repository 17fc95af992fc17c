"""The codec stage of the training campaign: the codec learns on idle CPUs, a little in every
session (issue 12). ``tools/campaign.sh [--stage codec] start|status|stop|export|seed|handoff|adopt``.

* ``start`` — resumes the newest checkpoint of ``runs/campaign/codec`` (full optimizer state),
  else starts from the shipped weights with a fresh optimizer (``--init``; or the committed seed
  when it continues the weights shipped now), as a background process under ``nice -n 19`` so it
  yields the CPU to everything else. It checkpoints at least every ``CKPT_MINUTES`` (a session may
  end at any moment) and validates with real bitstreams on the first Kodak images every
  ``VAL_CPU_MINUTES`` of training CPU.
* ``status`` — one line: running or not, step, cumulative training CPU-hours, last validation.
* ``stop`` — SIGTERM: the loop finishes its step, writes a checkpoint and exits.
* ``export`` — evaluates the newest checkpoint on Kodak with real bitstreams (6 slider points),
  writes fp16 weights + model card (cumulative CPU-hours and steps, recipe, data, BD-rates vs
  JPEG / WebP / AVIF, the learning curve as a PNG) + the RD JSON, and says whether the result
  beats the shipped weights by the required margin; ``--install`` (:meth:`CodecStage.release`)
  then copies them into the codecs' weights folder (``lic_core/assets/weights/``, or
  ``$LIC_WEIGHTS_DIR``) and the RD JSON into ``benchmarks/results/classical/``.
* ``handoff`` / ``adopt`` — the GPU path (:mod:`.device`).

The run folder is git-ignored: it survives only while the same machine carries on, so every
session exports (and commits weights that improve) before it stops.
"""
from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

from lic_core.paths import weights_path
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint

from .base import CKPT_MINUTES, ROOT, CampaignError, Stage, now, training_inputs
from .learning_curve import METRIC_KEYS, rd_against, reference_curve

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
#: adapting to the machine's load, the six λ of the gain units from the start; the model and
#: its batches in channels_last (the same arithmetic in oneDNN's preferred layout: 11–32 %
#: cheaper steps with bf16, benchmarks/results/train_step_cost.json "campaign…", 2026-12-07).
RECIPE: list[str] = [
    "--model", "lic-lgem-preview", "--batch", "8", "--crop", "128", "--lr", "4e-4",
    "--warmup", "200", "--decay", "constant", "--clip", "1.0", "--ema", "0.999", "--amp",
    "--channels-last", "--threads", "0", "--log-every", "100", "--steps", "100000000",
]


def shipped_weights(name: str = DEFAULT_NAME) -> Optional[Path]:
    """The weights the codec ships with now (``$LIC_WEIGHTS_DIR`` honoured), if any: the
    campaign's own, else (for the default name) the preview it started from."""
    for n in (name, BASELINE_NAME) if name == DEFAULT_NAME else (name,):
        p = weights_path(n)
        if p.is_file():
            return p
    return None


def init_history(src: Path) -> dict:
    """Steps and CPU-hours already spent on the weights the campaign starts from.

    A training checkpoint (e.g. the winning recipe-study arm) carries its own, shipped weights
    carry them in the card. ``lic train --init`` books a card's CPU-hours into the run itself, so
    only its steps (and a sidecar card's correction) are added here; a checkpoint's ``cpu_s`` is
    booked by the run only with ``--continue-schedule`` (a continued lineage, whose state already
    has its history), so here it is added.
    """
    if src.suffix == ".safetensors":
        from lic_core.weights import load_weights

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
    ck = load_checkpoint(src)
    return {"init_steps": int(ck.get("step", 0)),
            "init_cpu_hours": float(ck.get("cpu_s", 0.0)) / 3600.0}


class CodecStage(Stage):
    """``--stage codec``: the codec's own weights (``lic-lgem-cpu``)."""

    name = "codec"
    label = "campaign"
    #: the codec's weights are what the folder is for: no size refusal here
    budget_checked = False

    def launch_command(self, st: dict, *, data, kodak, init, recipe, extra,
                       val) -> tuple[list[str], str]:
        recipe = list(recipe or st.get("recipe") or RECIPE)
        data, kodak = training_inputs(st, data, kodak)
        cmd = [sys.executable, "-m", "lic_core.train", "codec", "--data", data, "--out",
               str(self.run_dir), *recipe, "--ckpt-minutes", str(CKPT_MINUTES), "--ckpt-every",
               "0", "--keep", "2"]
        if val and Path(kodak).is_dir():
            cmd += ["--val-dir", kodak, "--val-limit", str(VAL_IMAGES), "--val-u", "0", "0.5",
                    "1", "--val-cpu-minutes", str(VAL_CPU_MINUTES)]
        ck = latest_checkpoint(self.run_dir)
        if ck is not None:
            cmd += ["--resume", str(self.run_dir)]
            how = f"resuming {ck.name}"
        else:
            src = init if init is not None else st.get("init")
            seeded = None
            if src is None:
                from .seeds import codec_seed

                seeded = codec_seed()  # runs/ was lost: the committed seed continues the lineage
                w = shipped_weights()
                src = seeded["path"] if seeded else (str(w) if w else "none")
            if src != "none":
                if not Path(src).exists():
                    raise CampaignError(f"--init weights not found: {src}")
                cmd += ["--init", src]
                how = f"starting from {src} with a fresh optimizer"
                if seeded:
                    how = (f"continuing the committed seed {Path(src).name} (step "
                           f"{seeded['step']}, {seeded['cpu_s'] / 3600.0:.2f} CPU-h; fresh "
                           "optimizer)")
                    st["init_steps"] = int(seeded["step"])
                    st["init_cpu_hours"] = 0.0  # `lic train --init` books the seed card's hours
                elif "init_steps" not in st:  # `adopt` already booked what came before
                    st.update(init_history(Path(src)))
            else:
                how = "starting from scratch"
        cmd += list(extra)
        self.root.mkdir(parents=True, exist_ok=True)
        st.update({"recipe": recipe, "data": data, "kodak": kodak})
        st.setdefault("created", now())
        st.setdefault("init", None if "--resume" in cmd else (cmd[cmd.index("--init") + 1]
                                                              if "--init" in cmd else "none"))
        return cmd, how

    def curve_log(self) -> Path:
        """The log whose validations make the learning curve of an export."""
        return self.run_dir / "log.jsonl"

    def status(self) -> str:
        """One line: state, step, cumulative training CPU-hours, last validation."""
        recs = self.log()
        state = self.state_word()
        if not recs:
            return f"campaign {state}: no training yet ({self.run_dir})"
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

    # -- export -----------------------------------------------------------------------------
    def export(self, name: Optional[str] = None, eval_dir: Optional[str] = None,
               eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
               install: bool = False, force_install: bool = False,
               weights_dir: Optional[Path] = None, progress=None,
               results_dir: Path = CLASSICAL) -> dict:
        """Export the newest checkpoint (and with ``install`` release it; the RD JSON goes into
        ``results_dir``); returns a summary dict (printed by the CLI)."""
        self.results_dir = Path(results_dir)
        s = self.measure(name, eval_dir, eval_limit, us, weights_dir=weights_dir)
        if install:
            self.release(s, weights_dir, force_install)
        return s

    def measure(self, name: Optional[str] = None, eval_dir: Optional[str] = None,
                eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
                progress=None, weights_dir: Optional[Path] = None) -> dict:
        from lic_core.paths import weights_dir as default_weights_dir
        from lic_core.train.export import export_checkpoint
        from lic_core.weights import provenance_line

        from .learning_curve import curve_rows, render_xy

        name = name or DEFAULT_NAME
        ck_path, ck = self.newest_checkpoint()
        st = self.state()
        eval_dir = self.kodak(eval_dir)
        cpu_h = float(ck.get("cpu_s", 0.0)) / 3600.0
        init_cpu_h = float(st.get("init_cpu_hours", 0.0))
        names = kodak_names(eval_dir)
        if eval_limit:
            names = names[:eval_limit]
        out = self.export_dir
        out.mkdir(parents=True, exist_ok=True)

        # learning curve: BD-rate vs WebP (JPEG while the ranges do not overlap) on the val images
        curve_png = out / f"{name}.curve.png"
        rows = []
        ref = CLASSICAL / "webp.json"
        if ref.is_file():
            try:
                rows = curve_rows(self.curve_log(), ref, kodak_names(eval_dir))
            except KeyError:  # validation images the reference does not cover (tests)
                rows = []
        xs = [r["cpu_h"] + init_cpu_h for r in rows]
        series = [("BD-rate vs WebP (%), first Kodak images", xs, [r["bd_rate"] for r in rows])]
        render_xy(series, curve_png, "training CPU-hours (cumulative)",
                  "BD-rate vs WebP (%, PSNR)", title=f"{name}: learning curve (real bitstreams)",
                  hlines=[("WebP", 0.0)])

        def augment(card: dict) -> dict:
            card["cpu_hours"] = round(cpu_h + init_cpu_h, 3)
            card["gpu_hours"] = float(st.get("gpu_hours", 0.0))
            card["total_steps"] = int(ck["step"]) + int(st.get("init_steps", 0))
            card["recipe"] = shlex.join(st.get("recipe", []))
            card["campaign"] = {"sessions": len(st.get("sessions", [])),
                                "created": st.get("created"), "init": st.get("init")}
            if card.get("eval"):
                card["bd_rate"] = bd_rates(card["eval"]["points"], names)
                card["bd_rate_msssim"] = bd_rates(card["eval"]["points"], names,
                                                  metric="ms-ssim")
                webp = card["bd_rate"].get("webp")
                card["preview"] = not (webp is not None and webp <= 0.0)
                card["status"] = ("PREVIEW — CPU-trained, below WebP on Kodak" if card["preview"]
                                  else "trained on CPU — beats WebP on Kodak (BD-rate, PSNR)")
            card["learning_curve"] = curve_png.name
            return card

        card = export_checkpoint(ck_path, name, out, preview=True, eval_dir=eval_dir,
                                 eval_limit=eval_limit, force=True, augment=augment,
                                 notes="Trained by the CPU campaign (tools/campaign.sh); recipe "
                                       "and learning curve in docs/training.md.")
        (out / f"{name}.rd.json").write_text(json.dumps(rd_json(name, card), indent=1) + "\n")

        summary = {"name": name, "checkpoint": str(ck_path), "step": card["total_steps"],
                   "cpu_hours": card["cpu_hours"], "points": card["eval"]["points"],
                   "bd_rate": card.get("bd_rate"), "label": provenance_line(card),
                   "files": str(out), "card": card}
        wdir = Path(weights_dir) if weights_dir else default_weights_dir()
        summary.update(install_verdict(card, name, wdir, names))
        return summary

    def release(self, s: dict, weights_dir: Optional[Path] = None, force: bool = False) -> dict:
        """Install an export that earned it — but new weights *replacing* shipped ones of the
        same name go through the release train (``tools/campaign.sh release``: it re-derives the
        decoders that depend on them and keeps files of the outgoing weights decoding);
        ``force`` replaces them here and removes their dependents (:func:`.finetune.
        retire_finetuned`), and files of the outgoing weights are then refused."""
        from lic_core.paths import weights_dir as default_weights_dir

        wdir = Path(weights_dir) if weights_dir else default_weights_dir()
        if s["earned"] and not force and (wdir / f"{s['name']}.safetensors").is_file():
            from .release_install import shipped_plan

            deps = shipped_plan(wdir, s["name"])
            s.update(installed=False, why_not=(
                f"new {s['name']} weights replace the shipped ones through the release train: "
                "tools/campaign.sh release start (it re-derives "
                + (", ".join(deps) if deps else "no dependents") + " and keeps files of the "
                "outgoing weights decoding); --force-install replaces them here"))
            return s
        return super().release(s, weights_dir, force)

    def installed(self, s: dict, wdir: Path) -> None:
        results = getattr(self, "results_dir", CLASSICAL)
        results.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(s["files"]) / f"{s['name']}.rd.json", results / f"{s['name']}.json")
        from .finetune import retire_finetuned

        s["retired_finetuned"] = retire_finetuned(wdir, s["name"])

    def summary_lines(self, s: dict) -> list[str]:
        pts = " | ".join(f"u={p['u']:.1f} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB"
                         for p in s["points"])
        lines = [f"exported {s['name']} (step {s['step']}, {s['cpu_hours']:.2f} CPU-h) → "
                 f"{s['files']}", f"  Kodak: {pts}", f"  {s['label']}"]
        bd = s.get("bd_rate") or {}
        lines.append("  BD-rate (PSNR): " + ", ".join(
            f"vs {k} {v:+.1f} %" if v is not None else f"vs {k} n/a" for k, v in bd.items()))
        g = s["gain_vs_shipped_pct"]
        lines.append(f"  vs shipped {s.get('compared_with') or s['name']}: "
                     + (f"{g:+.2f} % BD-rate saving ({s.get('gain_basis')})" if g is not None
                        else "not comparable"))
        if "installed" in s:
            lines.append(f"  installed into {s['installed_into']}" if s["installed"]
                         else f"  NOT installed: {s['why_not']}")
        for q in s.get("retired_finetuned") or []:
            if q == "tcq rate tables":
                lines.append(f"  removed {s['name']}.tcq-tables.json (designed on the old "
                             "weights): redesign with python -m lic_core.train.tcq_design "
                             "--install")
                continue
            what, stage = (q, q) if q in ("gan", "diffusion") else (f"ft-{q}", f"finetune-{q}")
            lines.append(f"  removed {s['name']}-{what} (tuned on the old weights): retrain it "
                         f"with tools/campaign.sh --stage {stage} start")
        return lines

    # -- seed and the GPU path --------------------------------------------------------------
    def seed(self, folder: Optional[Path] = None) -> dict:
        """The codec's seed: its EMA weights with the lineage's steps and CPU-hours
        (:func:`.seeds.write_codec_seed`; ``start`` continues it through ``--init``)."""
        from .seeds import write_codec_seed

        return write_codec_seed(self, folder)

    def handoff(self, src: Optional[Path | str], dst: Path | str) -> dict:
        from .device import handoff

        return handoff(src or self.run_dir, dst)

    def adopt(self, path: Path | str) -> str:
        from .device import adopt

        return adopt(self, path)


def install_verdict(card: dict, name: str, wdir: Path,
                    names: Optional[Sequence[str]] = None) -> dict:
    """Whether an export's card earns its install beside the shipped weights of ``wdir``: a
    BD-rate gain of at least :data:`MIN_GAIN_PCT` % over the shipped card's own Kodak evaluation
    on the same images (the first ``DEFAULT_NAME`` install: over the preview's; nothing shipped:
    earned). Returns ``gain_vs_shipped_pct``, ``compared_with``, ``gain_basis``,
    ``beats_shipped``, ``earned`` and ``why_not_earned`` (``export`` and the release train)."""
    names = list(names if names is not None else eval_image_names(card))
    shipped_json = Path(wdir) / f"{name}.json"
    if not shipped_json.is_file() and name == DEFAULT_NAME:
        shipped_json = Path(wdir) / f"{BASELINE_NAME}.json"  # the first install beats the preview
    gain, basis = None, None
    if shipped_json.is_file():
        gain, basis = gain_over(json.loads(shipped_json.read_text()), card, names)
    better = gain is None or gain >= MIN_GAIN_PCT
    beats = bool(better and shipped_json.is_file() and gain is not None) \
        or not shipped_json.is_file()
    return {"gain_vs_shipped_pct": gain, "compared_with": shipped_json.stem,
            "gain_basis": basis, "beats_shipped": beats, "earned": beats,
            "why_not_earned": (f"BD-rate gain vs shipped {gain:+.2f} % < {MIN_GAIN_PCT} %"
                               if gain is not None else "not comparable with shipped")}


def eval_image_names(card: dict) -> list[str]:
    """The Kodak images a card was measured on: exports record their count and folder, older
    cards the names themselves ([] when neither can be read back)."""
    ev = card.get("eval") or {}
    images = ev.get("images")
    if isinstance(images, list):
        return [str(n) for n in images]
    folder = ev.get("folder")
    if folder and Path(folder).is_dir():
        names = kodak_names(folder)  # an export on N images measured the folder's first N
        if not isinstance(images, int):
            return names
        return names[:images] if 0 < images <= len(names) else []
    return []


def _last(recs: list[dict], kind: str) -> Optional[dict]:
    for r in reversed(recs):
        if r.get("type") == kind:
            return r
    return None


def kodak_names(kodak: str) -> list[str]:
    from lic_core.train.data import list_images

    return [p.name for p in list_images(kodak)]


def bd_rates(points: Sequence[dict], images: Optional[Sequence[str]] = None,
             classical: Path = CLASSICAL, metric: str = "psnr") -> dict:
    """BD-rate (%, on ``metric``: ``psnr`` or ``ms-ssim`` in dB) of ``points`` vs each classical
    reference present (None if undefined, or if a point has no value of ``metric``)."""
    out = {}
    key = METRIC_KEYS[metric][1]
    for ref in REFERENCES:
        f = classical / f"{ref}.json"
        if f.is_file():
            try:
                if not all(key in p for p in points):
                    raise KeyError(key)
                out[ref] = rd_against(points, reference_curve(f, images, metric),
                                      metric)["bd_rate"]
            except KeyError:  # the reference was not measured on these images or this metric
                out[ref] = None
    return out


def add_msssim_bd_rates(st_path: Path | str, classical: Path = CLASSICAL) -> dict:
    """Give an export measured before cards carried it its MS-SSIM BD-rates (``bd_rate_msssim``,
    from the MS-SSIM its Kodak points already record: nothing is re-measured), in the weights
    file's card, its ``.json`` and ``.md`` (:func:`lic_core.train.export.refresh_card`)."""
    from lic_core.train.export import refresh_card

    card = json.loads(Path(st_path).with_suffix(".json").read_text())
    bd = bd_rates(card["eval"]["points"], eval_image_names(card), classical, metric="ms-ssim")
    return refresh_card(st_path, {"bd_rate_msssim": bd})


def rd_json(name: str, card: dict) -> dict:
    """The card's Kodak evaluation in CompressAI's results format (``lic eval``/``lic plot``)."""
    pts = card["eval"]["points"]
    res = {"bpp": [p["bpp"] for p in pts], "psnr-rgb": [p["psnr"] for p in pts]}
    if all("ms_ssim" in p for p in pts):
        res["ms-ssim-rgb"] = [p["ms_ssim"] for p in pts]
    res["rate"] = [p["u"] for p in pts]
    from lic_core.weights import provenance_line

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
    from lic_core.evaluation.bdrate import bd_rate

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
