"""The campaign's generative stages (issue 13): ``diffusion`` and ``hific``.

``tools/campaign.sh --stage diffusion|hific start|status|stop|export``, beside the codec stage of
:mod:`.codec` (same folder, same rules: niced background process, checkpoints
at least every ``CKPT_MINUTES``, CPU-hours booked from the process's CPU time, one stage at a
time).

* **diffusion** — the CPU-sized blur-dissipated decoder (docs/diffusion.md) learns on **frozen
  latents of the shipped codec weights** (``lic train diffusion --model
  lic-lgem-cpu``: the codec's ``load_model`` reads ``lic_core/assets/weights/`` or
  ``$LIC_WEIGHTS_DIR``); run folder ``runs/campaign/diffusion``. The state file records the codec
  weights' hash: when the shipped codec moves on, ``status`` says so (retrain the stage).
* **hific** — ``hific-small`` with its own encoder, generator and hyperprior (docs/methods.md §8):
  stage 1 (rate + MSE + LPIPS) until ``GAN_START`` steps, then stage 2 (+ GAN) in the same run
  (``--gan-start``); run folder ``runs/campaign/hific``.

``export`` writes ``runs/campaign/export/NAME.{safetensors,json,md,curve.png}``: the weights with
their model card — CPU-hours, steps, recipe, the Kodak table (bpp, PSNR, MS-SSIM, LPIPS) beside
the MSE decoder on the same bitstreams and HiFiC's published points, both stages' CPU budgets and
whether they were the same (within ``SAME_BUDGET``) — and the learning curve (training loss over
CPU-hours). ``--install`` copies them into the weights folder when they earn it (diffusion: LPIPS
below the MSE decoder's at every slider point; hific: once the GAN stage began).
"""
from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

from lic_core.evaluation.generative import SAME_BUDGET, same_budget  # noqa: F401 (re-exported)
from lic_core.train.checkpoint import latest_checkpoint

from .base import (
    CKPT_MINUTES,
    EVAL_US,
    CampaignError,
    Stage,
    flag,
    loss_curve,
    now,
    shipped_codec_hash,
    stage_cpu_hours,
    train_records,
    training_inputs,
)

#: stage 1 → stage 2 of the HiFiC stage (docs/methods.md §8.3: both stages). The paper gives the two
#: stages about equal budgets; HiFiC gets the diffusion decoder's CPU budget (≈ 3.3 CPU-hours:
#: ≈ 5 000 steps of batch 4 × 256², ≈ 0.65 CPU-h per 1 000 steps), so the GAN joins at 2 500.
#: (The first campaign run used crop 128 until step 4 502 and then moved the GAN to 5 200.)
GAN_START = 2_500
VAL_IMAGES = 2

#: ``lic train diffusion|hific`` flags of each stage (docs/training.md, "The generative stages")
RECIPES: dict[str, list[str]] = {
    "diffusion": ["--model", "lic-lgem-cpu", "--diffusion-config",
                  "cpu", "--batch", "8", "--crop", "128", "--lr", "2e-4", "--warmup", "500",
                  "--ema", "0.999", "--lpips-weight", "0.9", "--lpips-t-max", "0.5", "--lpips-relative",
                  "--threads", "0", "--workers", "0", "--log-every", "50", "--ckpt-every", "0",
                  "--steps", "100000000"],
    # crop 256 as in the paper: at crop 128 the latent is 8×8 and z 2×2, the hyperprior learns
    # padded borders, and Kodak's full pictures cost 2–3× the bits of training crops
    "hific": ["--stage", "hific-1", "--hific-config", "hific-small", "--gan-start",
              str(GAN_START), "--batch", "4", "--crop", "256", "--lr", "1e-4", "--perceptual",
              "lpips", "--channels-last", "--threads", "0", "--workers", "0", "--log-every",
              "50", "--ckpt-every", "0", "--steps", "100000000"],
}




class GenerativeStage(Stage):
    """What the diffusion and HiFiC stages share: ``lic train diffusion|hific`` in the run
    folder (the trainers continue its newest checkpoint by themselves), a committed seed when
    ``runs/`` was lost, a Kodak table beside the MSE decoder on the same bitstreams."""

    #: ``lic train`` sub-command
    trainer = ""

    def launch_command(self, st: dict, *, data, kodak, init, recipe, extra,
                       val) -> tuple[list[str], str]:
        recipe = _modern(list(recipe or st.get("recipe") or RECIPES[self.stage]))
        if st.get("recipe"):
            st["recipe"] = _modern(list(st["recipe"]))
        data, kodak = training_inputs(st, data, kodak)
        ck = latest_checkpoint(self.run_dir)
        if st.get("recipe") and recipe != st["recipe"] and ck is not None:
            # a recipe changed mid-run is part of the weights' history: the card lists it
            st.setdefault("recipe_changes", []).append(
                {"at_step": ckpt_step(ck), "when": now(), "before": shlex.join(st["recipe"]),
                 "after": shlex.join(recipe)})
        cmd = [sys.executable, "-m", "lic_core.train", self.trainer, "--data", data, "--out",
               str(self.run_dir), *recipe, "--ckpt-minutes", str(CKPT_MINUTES), "--keep", "2"]
        cmd += self.more_flags(st, recipe, kodak, val)
        cmd += list(extra)
        how = f"resuming {ck.name}" if ck is not None else "starting from scratch"
        if ck is None and init:  # warm start (a release: the decoder of the replaced weights)
            cmd += ["--resume", str(init)]
            how = f"warm-starting from {Path(init).name} (fresh optimizer)"
        elif ck is None:
            from .seeds import adopt_seed

            seeded = adopt_seed(self, codec=st.get("codec"))  # runs/ was lost: the seed
            if seeded is not None:
                cmd += seeded[0]
                how = seeded[1]
        self.root.mkdir(parents=True, exist_ok=True)
        st.update({"recipe": recipe, "data": data, "kodak": kodak, "stage": self.stage})
        st.setdefault("created", now())
        return cmd, how

    def more_flags(self, st: dict, recipe: list[str], kodak: str, val: bool) -> list[str]:
        return []

    def status(self) -> str:
        """One line: running or not, step, CPU-hours, speed, last loss (+ stage/codec notes)."""
        recs = self.log()
        train = train_records(self)
        state = self.state_word()
        if not recs:
            return f"{self.stage} stage {state}: no training yet ({self.run_dir})"
        step = max(int(r.get("step", 0)) for r in recs)
        cpu_h = stage_cpu_hours(self.root, self.stage)
        parts = [f"{self.stage} stage {state}: step {step}, {cpu_h:.2f} CPU-h"]
        last = train[-1] if train else {}
        if last.get("it_s"):
            parts.append(f"{last['it_s']:.2f} it/s")
        if "loss" in last:
            parts.append(f"loss {last['loss']:.4g}")
        return ", ".join(parts + self.status_parts(last)) + self.status_note()

    def status_parts(self, last: dict) -> list[str]:
        return []

    def status_note(self) -> str:
        return ""

    def measure(self, name: Optional[str] = None, eval_dir: Optional[str] = None,
                eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
                progress=None) -> dict:
        """Export the newest checkpoint of the stage; returns a summary dict."""
        ck_path, ck = self.newest_checkpoint()
        kodak = self.kodak(eval_dir)
        us = tuple(us or EVAL_US)
        out = self.export_dir
        out.mkdir(parents=True, exist_ok=True)
        st = self.state()
        common = {"total_steps": int(ck["step"]),
                  "cpu_hours": round(float(ck.get("cpu_s", 0.0)) / 3600.0, 4), "gpu_hours": 0.0,
                  "device": "CPU (campaign, tools/campaign.sh)",
                  "recipe": shlex.join(st.get("recipe", [])), "data": st.get("data", ""),
                  "campaign": {"sessions": len(st.get("sessions", [])),
                               "created": st.get("created")},
                  "recipe_changes": list(st.get("recipe_changes", [])),
                  "budgets": budgets(self.root), "exported": now()}
        s = self.export_card(ck, common, name, kodak, eval_limit, us, out)
        s["checkpoint"] = str(ck_path)
        return s

    def export_card(self, ck: dict, common: dict, name: Optional[str], kodak: str,
                    eval_limit: Optional[int], us: Sequence[float], out: Path) -> dict:
        raise NotImplementedError

    def more_summary(self, s: dict) -> list[str]:
        card = s["card"]
        lines = [f"  {card['budgets']['note']}"]
        for label, pts in card["eval"]["rows"].items():
            txt = " | ".join(f"u={p['u']:.1f} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB "
                             f"LPIPS {_num(p.get('lpips'))}" for p in pts)
            lines.append(f"  {label}: {txt}")
        return lines

    # -- seeds (:mod:`.seeds`): the trainers continue one with ``--resume <seed>.safetensors`` --
    def seed(self, folder: Optional[Path] = None) -> dict:
        from .seeds import write_stage_seed

        return write_stage_seed(self, folder)

    def seed_tensors(self, ck: dict) -> dict:
        """The tensors of a checkpoint that make the stage's seed."""
        raise NotImplementedError

    def installed_seed(self, codec: Optional[str] = None) -> Optional[dict]:
        """Installed weights that are a seed of this stage too (None: none)."""
        return None

    def resumes_without_checkpoint(self) -> bool:
        """Whether the run folder holds something the trainer continues without a checkpoint."""
        return False


class DiffusionStage(GenerativeStage):
    """``--stage diffusion``: the CPU-sized blur-dissipated decoder on frozen codec latents."""

    name = "diffusion"
    trainer = "diffusion"

    def more_flags(self, st: dict, recipe: list[str], kodak: str, val: bool) -> list[str]:
        codec_name = flag(recipe, "--model", "lic-lgem-cpu")
        st["codec"] = codec_name
        st.setdefault("codec_weights_hash", shipped_codec_hash(codec_name))
        return []

    def seed_tensors(self, ck: dict) -> dict:
        return ck["ema"]["shadow"] if ck.get("ema") else ck["model"]  # what an export ships

    def installed_seed(self, codec: Optional[str] = None) -> Optional[dict]:
        from .seeds import installed_diffusion_seed

        return installed_diffusion_seed(codec or self.state().get("codec") or "lic-lgem-cpu")

    def resumes_without_checkpoint(self) -> bool:
        from lic_core.train.diffusion import TRAIN_FILE

        return (self.run_dir / TRAIN_FILE).is_file()  # an older run's raw weights

    def status_note(self) -> str:
        st = self.state()
        shipped = shipped_codec_hash(st.get("codec") or "lic-lgem-cpu")
        if st.get("codec_weights_hash") and shipped and shipped != st["codec_weights_hash"]:
            return (f"; the shipped {st.get('codec')} weights changed since this stage started "
                    "(retrain it when they moved a lot)")
        return ""

    def export_card(self, ck: dict, common: dict, name: Optional[str], kodak: str,
                    eval_limit: Optional[int], us: Sequence[float], out: Path) -> dict:
        import torch

        from lic_core.codecs.learned import LearnedCodec
        from lic_core.decoder.diffusion import DiffusionConfig, DiffusionDecoder
        from lic_core.evaluation.generative import evaluate_decoders, published_hific
        from lic_core.models import load_model
        from lic_core.paths import diffusion_weights_path

        if ck.get("kind") != "diffusion":
            raise CampaignError(f"{ck['_path']} is not a diffusion decoder checkpoint")
        cfg = DiffusionConfig.from_dict(ck["config"])
        dec = DiffusionDecoder(cfg)
        state = ck["ema"]["shadow"] if ck.get("ema") else ck["model"]
        # the weights ship in fp16: evaluate exactly what ships (the card's table is the file's)
        dec.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                             for k, v in state.items()})
        dec.eval()
        codec_name = cfg.codec
        model = load_model(codec_name)
        now_hash = model.weights_meta.get("weights_hash")
        name = name or diffusion_weights_path(codec_name).stem
        codec = LearnedCodec(codec_name, model=model, diffusion=dec)
        ev = evaluate_decoders(codec, kodak, us, ("mse", "diffusion"), eval_limit, steps=cfg.steps)
        mse, dif = ev["points"]["mse"], ev["points"]["diffusion"]
        wins = [d["lpips"] < m["lpips"] for d, m in zip(dif, mse)]
        earned = bool(wins) and all(wins)
        what = "LPIPS below the MSE decoder's at every slider point (same bitstreams, Kodak)"
        curve = loss_curve(self, out / f"{name}.curve.png", f"{name}: learning curve (CPU campaign)")
        card = {**common, "model": name, "kind": "diffusion decoder",
                "family": "blur-dissipated diffusion decoder, CPU-sized (docs/diffusion.md, "
                          "docs/methods.md §7)",
                "parameters": dec.num_parameters(), "codec": codec_name,
                "codec_weights_hash": ck.get("codec_weights_hash"),
                "codec_weights_hash_now": now_hash, "sampling_steps": cfg.steps,
                "config": cfg.to_dict(), "preview": not earned, "status": _status(earned, what),
                "lpips_below_mse": wins,
                "eval": {"folder": kodak, "images": ev["images"], "mode": "coded", "steps": ev["steps"],
                         "seed": ev["seed"], "rows": {"MSE decoder (g_s)": mse,
                                                     "diffusion decoder": dif}},
                "published_hific": published_hific(), "learning_curve": curve.name}
        if ck.get("codec_weights_hash") and now_hash and ck["codec_weights_hash"] != now_hash:
            card["codec_note"] = ("trained on other codec weights than those shipped now: "
                                  "retrain the stage")
        dec.save(out / f"{name}.safetensors", card=card,
                 extra_meta={"step": int(ck["step"]), "cpu_s": float(ck.get("cpu_s", 0.0))},
                 dtype=torch.float16)
        _write_card(out, name, card)
        return {"name": name, "stage": "diffusion", "card": card, "files": str(out),
                "earned": earned, "why_not_earned": f"not yet: {what}"}


class HificStage(GenerativeStage):
    """``--stage hific``: hific-small, stage 1 then (``--gan-start``) stage 2 in one run."""

    name = "hific"
    trainer = "hific"

    def more_flags(self, st: dict, recipe: list[str], kodak: str, val: bool) -> list[str]:
        if val and Path(kodak).is_dir():
            return ["--val-every", "2000", "--val-dir", kodak, "--val-limit", str(VAL_IMAGES)]
        return []

    def launch_command(self, st: dict, **kw) -> tuple[list[str], str]:
        """As for every generative stage; a run that begins from a file (``--init``: the
        shipped weights, a probe's checkpoint; or a seed) records in the state what that file
        was built on (:func:`~lic_core.train.hific.trainer.resumed_lineage`), so that the
        budget line counts it (issue 26: hific-small on the diffusion decoder's budget)."""
        from lic_core.train.hific.trainer import resumed_lineage

        fresh = latest_checkpoint(self.run_dir) is None
        cmd, how = super().launch_command(st, **kw)
        if fresh:
            from lic_core.train.hific.trainer import init_lineage_of

            flag = {a: cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a in ("--resume", "--init")}
            st["init_lineage"] = (resumed_lineage(flag["--resume"]) if "--resume" in flag else
                                  init_lineage_of(flag["--init"]) if "--init" in flag else None)
        return cmd, how

    def status_parts(self, last: dict) -> list[str]:
        return [str(last["stage"])] if last.get("stage") else []

    def seed_tensors(self, ck: dict) -> dict:
        # E/G/hyperprior, and D once the GAN stage began (no EMA in this trainer)
        tensors = {f"model.{k}": v for k, v in ck["model"].items()}
        tensors.update({f"disc.{k}": v for k, v in (ck.get("disc") or {}).items()})
        return tensors

    def export_card(self, ck: dict, common: dict, name: Optional[str], kodak: str,
                    eval_limit: Optional[int], us: Sequence[float], out: Path) -> dict:
        from lic_core.codecs import get_codec
        from lic_core.codecs.hific import HificCodec, load_hific
        from lic_core.evaluation.generative import evaluate_decoders, published_hific
        from lic_core.models.hific import HificConfig, HificModel, count_parameters
        from lic_core.train.hific.trainer import export as export_weights
        from lic_core.weights import save_weights

        if "stage" not in ck or not str(ck["stage"]).startswith("hific"):
            raise CampaignError(f"{ck['_path']} is not a HiFiC checkpoint")
        cfg = HificConfig.from_dict(ck["config"])
        model = HificModel(cfg)
        model.load_state_dict(ck["model"])
        name = name or cfg.name
        path = out / f"{name}.safetensors"
        export_weights(model.eval(), path, str(ck["stage"]), int(ck["step"]), {})  # fp16 + tables
        shipped = load_hific(name, path)  # evaluate what ships: the fp16 weights
        gan = ck["stage"] == "hific-2"
        what = "GAN stage (stage 2) reached"
        ev = evaluate_decoders(HificCodec(model=shipped, model_name=name), kodak, us, ("gan",),
                               eval_limit)
        rows = {f"{name} (GAN decoder)": ev["points"]["gan"]}
        ours = get_codec(str(self.state().get("reference_codec") or "lic-lgem-cpu"))
        if ours.available()[0]:
            ref = evaluate_decoders(ours, kodak, us, ("mse",), eval_limit)
            rows[f"{ours.name} MSE decoder"] = ref["points"]["mse"]
        curve = loss_curve(self, out / f"{name}.curve.png", f"{name}: learning curve (CPU campaign)")
        lin = ck.get("init_lineage") or None
        if lin:  # warm-started: the card books the run and what it was built on (issue 26)
            known = "" if lin.get("known", True) else " (its card gives no CPU-hours)"
            common = {**common, "warm_start": (f"{lin.get('file')} ({lin['cpu_hours']:.2f} "
                                               f"CPU-h, {lin.get('steps', 0)} steps{known})"),
                      "lineage_cpu_hours": round(common["cpu_hours"] + lin["cpu_hours"], 4),
                      "lineage_steps": int(common["total_steps"]) + int(lin.get("steps", 0))}
        card = {**common, "model": name, "kind": "HiFiC",
                "family": "HiFiC (Mentzer et al. 2020), small variant (docs/methods.md §8.4), "
                          "own encoder and hyperprior", "parameters": count_parameters(shipped),
                "stage": str(ck["stage"]), "gan_start": ck.get("gan_start"),
                "rate_targets_bpp": list(cfg.targets), "preview": not gan,
                "status": _status(gan, what),
                "eval": {"folder": kodak, "images": ev["images"], "mode": "coded", "rows": rows},
                "published_hific": published_hific(), "learning_curve": curve.name}
        save_weights(shipped, path, card)  # the same tensors, now with the full card
        _write_card(out, name, card)
        return {"name": name, "stage": "hific", "card": card, "files": str(out), "earned": gan,
                "why_not_earned": f"not yet: {what}"}


def _modern(recipe: list[str]) -> list[str]:
    """A saved recipe without the ``--stage diffusion`` of the older ``lic train`` spelling
    (the sub-command says it now; HiFiC's ``--stage hific-1|2`` is its own flag)."""
    out = list(recipe)
    for i in range(len(out) - 1):
        if out[i] == "--stage" and out[i + 1] == "diffusion":
            del out[i:i + 2]
            break
    return out


def ckpt_step(path: Path) -> Optional[int]:
    """The step in a checkpoint's name (``ckpt-00004490.pt``), without loading it."""
    digits = "".join(ch for ch in path.stem if ch.isdigit())
    return int(digits) if digits else None


def _installed_hours(stage: str, codec: str = "lic-lgem-cpu") -> float:
    """CPU-hours (with warm starts) on the installed card of a generative stage's weights; 0 when
    none is installed. A stage whose ``runs/`` was lost (another machine) still has a budget."""
    from lic_core.paths import diffusion_weights_path, gan_weights_path, weights_path
    from lic_core.weights import lineage_cpu_hours, read_weights_card

    p = {"diffusion": diffusion_weights_path(codec), "gan": gan_weights_path(codec),
         "hific": weights_path("hific-small")}[stage]
    try:
        return float(lineage_cpu_hours(read_weights_card(p)) or 0.0) if p.is_file() else 0.0
    except Exception:  # noqa: BLE001 - an unreadable card: unknown, as with no card
        return 0.0


def warm_start_hours(root: Path | str, stage: str) -> float:
    """CPU-hours the stage's run was built on before its own booked time (its state's
    ``init_lineage``, recorded when the run began from a file); 0 when it began from scratch."""
    try:
        st = json.loads((Path(root) / f"{stage}.json").read_text())
    except (OSError, ValueError):
        return 0.0
    lin = st.get("init_lineage") if isinstance(st, dict) else None
    return float(lin.get("cpu_hours", 0.0)) if isinstance(lin, dict) else 0.0


def budgets(root: Path | str) -> dict:
    """Both generative stages' CPU-hours and whether they are the same budget (within
    :data:`SAME_BUDGET`): the fairness line of the two cards. A stage's hours include what its
    run was warm-started from (:func:`warm_start_hours`), as the installed cards' do."""
    d = stage_cpu_hours(root, "diffusion") or _installed_hours("diffusion")
    h = stage_cpu_hours(root, "hific")
    h = h + warm_start_hours(root, "hific") if h else _installed_hours("hific")
    same = same_budget(d, h)
    note = ("the diffusion decoder and hific-small were trained on the same CPU budget "
            f"({d:.2f} vs {h:.2f} CPU-hours)" if same else
            f"NOT the same CPU budget yet: diffusion {d:.2f} CPU-h, hific-small {h:.2f} CPU-h "
            "(a comparison of the two is not fair until they match)")
    # the stage's own run first, as for the other two (a card exported meanwhile must not
    # show the installed decoder's hours); its installed card when runs/ is gone
    g = stage_cpu_hours(root, "gan") or _installed_hours("gan")
    if g:  # the GAN decoder of issue 26 is held to the diffusion decoder's budget too
        note += (f"; the GAN decoder {g:.2f} CPU-h ("
                 + ("the same budget" if same_budget(d, g) else "NOT the same budget") + ")")
    return {"diffusion_cpu_hours": round(d, 4), "hific_cpu_hours": round(h, 4),
            "same_budget": bool(same), "note": note}


def _card_md(card: dict) -> str:
    from lic_core.evaluation.generative import kodak_table_md

    ev = card.get("eval") or {}
    rows = {label: pts for label, pts in (ev.get("rows") or {}).items()}
    lines = [f"# {card['model']}", "", f"**{card['status']}**", "",
             f"* {card['family']}", f"* trained: {card['total_steps']} steps, "
             f"{card['cpu_hours']:.2f} CPU-hours ({card['device']})",
             *([f"* warm-started from {card['warm_start']}; with it "
                f"{card['lineage_cpu_hours']:.2f} CPU-hours and {card.get('lineage_steps')} steps "
                "in all"] if card.get("warm_start") and card.get("lineage_cpu_hours") else []),
             f"* recipe: `{card['recipe']}`",
             *[f"  * until step {ch['at_step']}: `{ch['before']}`"
               for ch in card.get("recipe_changes", [])],
             f"* data: {card['data']}",
             f"* CPU budgets: {card['budgets']['note']}", ""]
    if rows:
        lines += [f"## Kodak ({len(ev.get('images', []))} images, real bitstreams)", "",
                  kodak_table_md(rows, card.get("published_hific", []))]
    lines += ["", f"Learning curve: `{card['learning_curve']}`", ""]
    return "\n".join(lines)


def _write_card(out: Path, name: str, card: dict) -> None:
    from lic_core.fileio import write_bytes_atomic

    write_bytes_atomic(out / f"{name}.json",
                       (json.dumps(card, indent=1, sort_keys=True) + "\n").encode(), True)
    write_bytes_atomic(out / f"{name}.md", _card_md(card).encode(), True)


def _status(earned: bool, what: str) -> str:
    return (f"trained on CPU — {what}" if earned else
            f"UNTRAINED / PREVIEW — CPU campaign weights that do not yet meet: {what}")


def _num(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"
