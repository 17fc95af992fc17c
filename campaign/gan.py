"""The campaign's GAN decoder stage (issue 26): ``tools/campaign.sh --stage gan``.

``start|status|stop|export [--install]``, beside the other stages and under the same rules
(niced background process, checkpoints at least every ``CKPT_MINUTES``, CPU-hours booked from the
process's CPU time, one stage at a time). It trains ``<codec>-gan`` — g_s and the inverse gains
retrained with HiFiC's generator objective (Mentzer et al. 2020, §3–4) on the frozen latents of
the **shipped** codec weights (:mod:`lic_core.train.gan_decoder`, ``lic train gan``) — and is bound
to them like the fine-tuning stages (:class:`.base.BoundStage`): a run begun on other codec
weights is set aside and the stage starts afresh.

* ``start -- --cpu-budget-min N``: the run stops by itself once N CPU-minutes are booked in all
  (the diffusion decoder's budget, 196 min = 3.27 CPU-h, is the fair one: issue 26 gives both
  decoders the same budget). The budget is remembered: a later ``start`` resumes under it.
* ``export`` writes ``runs/campaign/export/<codec>-gan.{safetensors,md,json,curve.png}`` and
  measures it on Kodak with real bitstreams: MSE vs GAN decoder on the **same files** (bpp, PSNR,
  MS-SSIM, LPIPS at the slider points :data:`EVAL_US`), with the published HiFiC and MS-ILLM
  points; the card gives data, steps, CPU-hours and the diffusion decoder's budget beside them.
* ``--install`` copies the four files into the weights folder when the GAN decoder's LPIPS is
  below the MSE decoder's at every slider point and the weights folder stays within its budget;
  the codec then offers ``--decoder gan``.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional, Sequence

from .base import EVAL_US, BoundStage, flag, now, stage_cpu_hours
from .learning_curve import render_xy

#: ``lic train gan`` flags of the stage: the fine-tuning stages' batch and crops, HiFiC's learning
#: rates for G and D (docs/methods.md §8.2), 500 warm-up steps without the GAN term
RECIPE = ["--model", "lic-lgem-cpu", "--batch", "8", "--crop", "128", "--lr", "1e-4",
          "--d-lr", "1e-4", "--gan-start", "500", "--threads", "0", "--log-every", "20"]
BUDGET_FLAG = "--cpu-budget-min"


def objective_constants(loss: dict) -> str:
    """"HiFiC's constants {…}", or which of them a run changed (``--perceptual-weight``)."""
    from lic_core.train.hific.losses import DEFAULT_LOSS

    keys = ("C", "C_D", "w_P", "C_P")
    got = {k: loss.get(k) for k in keys}
    changed = [k for k in keys if got[k] is not None and got[k] != getattr(DEFAULT_LOSS, k)]
    if not changed:
        return "HiFiC's constants " + json.dumps(got)
    return ("HiFiC's constants except " + ", ".join(f"{k} = {got[k]:g} (HiFiC: "
                                                    f"{getattr(DEFAULT_LOSS, k):g})"
                                                    for k in changed) + " " + json.dumps(got))


class GanStage(BoundStage):
    """``--stage gan``: ``<codec>-gan``, g_s + G' with HiFiC's generator objective."""

    name = "gan"
    trainer = "gan"
    recipe = RECIPE

    def start(self, data: Optional[str] = None, kodak: Optional[str] = None,
              init: Optional[str] = None, recipe: Optional[Sequence[str]] = None,
              extra: Sequence[str] = (), nice: int = 19, val: bool = True) -> str:
        """Start or resume the stage in the background under its CPU budget (remembered: every
        later start resumes under the same budget); returns a one-line message."""
        extra = list(extra)
        if self.pid() is None:
            self.refuse_if_another_runs()
            st = self.state()
            budget = flag(extra, BUDGET_FLAG)
            if budget is not None:
                st["cpu_budget_min"] = float(budget)
                self.save_state(st)
            elif st.get("cpu_budget_min"):
                extra += [BUDGET_FLAG, f"{float(st['cpu_budget_min']):g}"]
        msg = super().start(data, kodak, init, recipe, extra, nice, val)
        if "already running" in msg:
            return msg
        b = self.state().get("cpu_budget_min")
        return msg + (f"; CPU budget {b:g} min" if b else "; no CPU budget (-- --cpu-budget-min N)")

    def status(self) -> str:
        """One line: running or not, step, CPU-hours of the budget, speed, training LPIPS/PSNR,
        warm-up or GAN, D's outputs, and a note when the codec weights moved on."""
        log = self.log()
        recs = [r for r in log if r.get("type") == "train"]
        pid = self.pid()
        state = self.state_word()
        if not recs:
            return f"gan stage {state}: no training yet ({self.run_dir})"
        last = recs[-1]
        budget = self.state().get("cpu_budget_min")
        cpu_h = float(last.get("cpu_s", 0)) / 3600
        parts = [f"gan stage {state}: step {last['step']}, {cpu_h:.2f}"
                 + (f" of {float(budget) / 60:.2f}" if budget else "") + " CPU-h"]
        ends = [r for r in log if r.get("type") == "end"]
        if not pid and ends and ends[-1].get("reason") == "cpu budget":
            parts[0] += " (budget reached: export it)"
        if last.get("it_s"):
            parts.append(f"{last['it_s']:.2f} it/s")
        window = recs[-10:]
        lp = [r["lpips_recent"] for r in window if r.get("lpips_recent") is not None]
        ps = [r["psnr_recent"] for r in window if r.get("psnr_recent") is not None]
        if lp and ps:
            parts.append(f"training LPIPS ~{sum(lp) / len(lp):.4f}, ~{sum(ps) / len(ps):.2f} dB")
        parts.append(f"GAN on, D(x) {last.get('d_real', 0):.2f} D(x̂) {last.get('d_fake', 0):.2f}"
                     if last.get("gan") else "warm-up (MSE + LPIPS, no GAN term yet)")
        return ", ".join(parts) + self.stale_note()

    def diffusion_budget(self, codec: str) -> Optional[float]:
        """The diffusion decoder's training CPU-hours: its installed card's, else its stage log's."""
        from lic_core.paths import diffusion_weights_path
        from lic_core.weights import read_weights_card

        p = diffusion_weights_path(codec)
        try:
            h = read_weights_card(p).get("cpu_hours") if p.is_file() else None
        except Exception:  # noqa: BLE001 - an unreadable card: fall back to the stage's log
            h = None
        return float(h) if h else (stage_cpu_hours(self.root, "diffusion") or None)

    @staticmethod
    def warm_start_text(ck: dict, codec: str) -> str:
        """What the run started from: the init file (its hash and what it says of itself), and
        the trunk blocks the run added in front of its g_s (a deeper generator)."""
        init = ck["init"]
        about = init.get("about") or f"a decoder file of {codec}"
        text = f"{init['file']} ({str(init.get('weights_hash', ''))[:16]}): {about}"
        extra = int(ck.get("g_s_extra_blocks") or 0)
        if extra:
            text += (f"; g_s deepened by a trunk of {extra} residual bottlenecks (those the file "
                     "lacks start as the identity)")
        return text

    @staticmethod
    def lineage_hours(codec: str, init: Optional[dict], run_h: float) -> Optional[float]:
        """CPU-hours of the decoder with what it was warm-started from: the run's own plus its
        init file's lineage (recorded by the trainer; for a checkpoint from before that, the
        installed GAN decoder's card when the init file was that decoder). None: unknown."""
        if not init:
            return run_h
        h = init.get("lineage_cpu_hours")
        if h is None:
            from lic_core.paths import gan_weights_path
            from lic_core.weights import lineage_cpu_hours, read_weights_card, read_weights_hash

            p = gan_weights_path(codec)
            if p.is_file() and read_weights_hash(p) == init.get("weights_hash"):
                h = lineage_cpu_hours(read_weights_card(p))
        return None if h is None else round(float(h) + run_h, 4)

    @staticmethod
    def budget_note(run_h: float, lineage_h: Optional[float], diff_h: Optional[float],
                    same: bool) -> str:
        """The card's fairness line: the GAN decoder's CPU-hours (with its warm start's) against
        the diffusion decoder's (issue 26 gives both the same budget)."""
        gan = (f"{lineage_h:.2f} CPU-h" if lineage_h is not None else "unknown CPU-h")
        if lineage_h is not None and abs(lineage_h - run_h) > 1e-4:
            gan += f" ({run_h:.2f} in this run, {lineage_h - run_h:.2f} in its warm start)"
        diff = f"{diff_h:.2f} CPU-h" if diff_h else "unknown (no diffusion decoder card)"
        return (f"the same CPU budget as the diffusion decoder: GAN {gan}, diffusion {diff}"
                if same else f"NOT the diffusion decoder's CPU budget: GAN {gan}, diffusion {diff}")

    def curve(self, path: Path, title: str) -> Path:
        """The learning curve: training LPIPS over cumulative CPU-hours."""
        xs, lp = [], []
        for r in self.log():
            if r.get("type") == "train" and r.get("lpips_recent") is not None:
                xs.append(float(r["cpu_s"]) / 3600.0)
                lp.append(float(r["lpips_recent"]))
        return render_xy([("LPIPS on the training crops (mean of the last logged steps)", xs, lp)],
                         path, "training CPU-hours (cumulative)", "LPIPS", title=title)

    def measure(self, name: Optional[str] = None, eval_dir: Optional[str] = None,
                eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
                progress=None) -> dict:
        """Export the newest checkpoint as ``<codec>-gan`` and measure it on Kodak: MSE vs GAN
        decoder on the same files; see the module."""
        from lic_core.codecs.learned import LearnedCodec
        from lic_core.evaluation.generative import (
            evaluate_decoders,
            published_anchors,
            same_budget,
        )
        from lic_core.fileio import write_bytes_atomic
        from lic_core.paths import finetuned_path, gan_weights_path
        from lic_core.train.finetune import save_finetuned
        from lic_core.train.gan_decoder import CKPT_KIND, card_markdown

        ck_path, ck, model = self.checkpoint_of_shipped(CKPT_KIND, "GAN decoder")
        st = self.state()
        codec_name = st.get("codec") or "lic-lgem-cpu"
        base_now = model.weights_meta["weights_hash_bytes"].hex()
        kodak = self.kodak(eval_dir)
        us = tuple(us or EVAL_US)
        out = self.export_dir
        out.mkdir(parents=True, exist_ok=True)
        path = gan_weights_path(codec_name, out)
        cpu_h = round(float(ck.get("cpu_s", 0.0)) / 3600.0, 4)
        init = ck.get("init")
        known = st.get("init_lineage") or {}
        if init and known.get("cpu_hours") is not None \
                and known.get("weights_hash") == init.get("weights_hash"):
            # set by hand in the stage's state for an init file whose card predates the lineage
            # (the first release's transplant booked only its own 0.40 CPU-h; its card's
            # cpu_hours is what a warm start from it records), for that file only
            init = {**init, "lineage_cpu_hours": float(known["cpu_hours"])}
        lineage_h = self.lineage_hours(codec_name, init, cpu_h)
        diff_h = self.diffusion_budget(codec_name)
        same = same_budget(lineage_h, diff_h)
        train = ck.get("train") or {}
        card = {"kind": "GAN decoder: g_s + inverse gains retrained with HiFiC's generator "
                        "objective on the codec's frozen latents (Mentzer et al. 2020, §3–4)",
                "model": path.stem, "base_model": codec_name, "base_weights_hash": base_now,
                "warm_start": (self.warm_start_text(ck, codec_name) if ck.get("init")
                               else f"the base g_s and inverse gains of {codec_name} "
                                    f"({base_now}), not a fine-tuned decoder"),
                "objective": "C·C_D·MSE₂₅₅ + w_P·LPIPS − C_P·log D(x̂, ŷ), "
                             + objective_constants(ck.get("loss") or {})
                             + "; no rate term (frozen latents); non-saturating GAN losses",
                "gan_start": train.get("gan_start"),
                "discriminator": "HiFiC's conditional PatchGAN on ŷ " + json.dumps(
                    ck.get("disc_config") or {}),
                "latents": "rounding (compress()'s default) on the exact engine, one random slider "
                           "level per batch",
                "total_steps": int(ck["step"]), "cpu_hours": cpu_h,
                "lineage_cpu_hours": lineage_h, "gpu_hours": 0.0,
                "device": "CPU (campaign, tools/campaign.sh)", "train": train,
                "train_changes": ck.get("train_changes") or [],
                "recipe": shlex.join(st.get("recipe", [])), "data": st.get("data", ""),
                "cpu_budget_min": st.get("cpu_budget_min"),
                "budgets": {"gan_cpu_hours": lineage_h, "diffusion_cpu_hours": diff_h,
                            "same_budget": bool(same),
                            "note": self.budget_note(cpu_h, lineage_h, diff_h, same)},
                "exported": now(), "preview": True, "status": "not measured yet"}
        save_finetuned(model, path, card, card_markdown)  # fp16: the table measures what ships
        codec = LearnedCodec(codec_name, gan_dir=out)
        ev = evaluate_decoders(codec, kodak, us, ("mse", "gan"), eval_limit, progress=progress)
        mse, gan = ev["points"]["mse"], ev["points"]["gan"]
        wins = [g["lpips"] < m["lpips"] for g, m in zip(gan, mse)]
        earned = bool(wins) and all(wins)
        what = "LPIPS below the MSE decoder's at every slider point (same bitstreams, Kodak)"
        tuned = finetuned_path(codec_name, "round")
        card.update({"preview": not earned, "lpips_below_mse": wins,
                     "status": (f"trained on CPU — {what}" if earned else
                                f"UNTRAINED / PREVIEW — not yet: {what}"),
                     "mse_decoder": (f"{tuned.name} (the decoder compress() uses for rounding)"
                                     if tuned.is_file() else f"the base g_s of {codec_name}"),
                     "eval": {"folder": kodak, "images": ev["images"], "us": list(us),
                              "rows": {"MSE decoder (g_s)": mse, "GAN decoder": gan}},
                     "published": published_anchors(), "learning_curve": f"{path.stem}.curve.png"})
        save_finetuned(model, path, card, card_markdown)  # the same tensors, now with the table
        write_bytes_atomic(path.with_suffix(".json"),
                           (json.dumps(card, indent=1, sort_keys=True) + "\n").encode(), True)
        self.curve(out / f"{path.stem}.curve.png", f"{path.stem}: GAN decoder (CPU campaign)")
        return {"name": path.stem, "card": card, "files": str(out), "earned": earned,
                "why_not_earned": f"not yet: {what}", "checkpoint": str(ck_path)}

    def more_summary(self, s: dict) -> list[str]:
        card = s["card"]
        lines = [f"  CPU budgets: {card['budgets']['note']}"]
        for label, pts in card["eval"]["rows"].items():
            lines.append(f"  {label}: " + " | ".join(
                f"u={p['u']:.1f} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB LPIPS {p['lpips']:.4f}"
                for p in pts))
        return lines
