"""The campaign's fine-tuning stages (issue 16): ``finetune-round|deadzone|rdoq|tcq``.

``tools/campaign.sh --stage finetune-tcq start|status|stop|export`` retrains the synthesis g_s
and the inverse gains G' of the **shipped** codec weights on latents quantized exactly as
``compress()`` quantizes them with that quantizer (docs/methods.md §4.5,
:mod:`lic_core.train.finetune`, ``lic train finetune``), beside the codec stage and under the same
rules (niced background process, checkpoints at least every ``CKPT_MINUTES``, CPU-hours booked
from the process's CPU time, one stage at a time).

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
from pathlib import Path
from typing import Optional, Sequence

from lic_core.errors import LicError

from .base import EVAL_US, SHARED, BoundStage, CampaignError, loss_curve, now

#: a fine-tuned decoder ships only when it saves at least this much over the base decoder
MIN_SAVING_PCT = 0.5
#: the quantizers with a fine-tuning stage (``finetune-<q>``)
QUANTIZERS = ("round", "deadzone", "rdoq", "tcq")

#: ``lic train finetune`` flags of the stage (docs/methods.md §4.5 step 5: stage-1 crops and batch;
#: lr 1e-4, above the 1e-5–3e-5 of a long GPU run, because a CPU run has a few thousand steps, not
#: 50k–200k — the shipped TCQ decoder was trained so)
RECIPE = ["--model", "lic-lgem-cpu", "--batch", "8", "--crop", "128", "--lr", "1e-4",
          "--threads", "0", "--log-every", "20"]


class FinetuneStage(BoundStage):
    """``--stage finetune-<q>``: g_s + G' on the latents quantizer ``q`` gives."""

    trainer = "finetune"
    recipe = RECIPE

    def __init__(self, root, quantizer: str) -> None:
        self.quantizer = quantizer
        super().__init__(root, f"finetune-{quantizer}")

    def trainer_args(self) -> list[str]:
        return ["--quantizer", self.quantizer]

    def status(self) -> str:
        """One line: running or not, step, CPU-hours, speed, recent training PSNR, base weights."""
        recs = [r for r in self.log() if r.get("type") == "train"]
        state = self.state_word()
        if not recs:
            return f"{self.stage} stage {state}: no training yet ({self.run_dir})"
        last = recs[-1]
        parts = [f"{self.stage} stage {state}: step {last['step']}, "
                 f"{float(last.get('cpu_s', 0)) / 3600:.2f} CPU-h"]
        if last.get("it_s"):
            parts.append(f"{last['it_s']:.2f} it/s")
        window = [r["psnr_recent"] for r in recs[-10:] if "psnr_recent" in r]
        if window:
            parts.append(f"training PSNR ~{sum(window) / len(window):.2f} dB")
        return ", ".join(parts) + self.stale_note()

    def measure(self, name: Optional[str] = None, eval_dir: Optional[str] = None,
                eval_limit: Optional[int] = None, us: Optional[Sequence[float]] = None,
                progress=None) -> dict:
        """Export the newest checkpoint as a fine-tuned decoder and measure it on Kodak: the
        quantizer with the base decoder, with the fine-tuned one, and rounding; see the module."""
        from lic_core.codecs.learned import LearnedCodec
        from lic_core.evaluation.quantizers import bd_table, quantizer_curve
        from lic_core.fileio import write_bytes_atomic
        from lic_core.image import load_image
        from lic_core.paths import finetuned_path
        from lic_core.train.finetune import save_finetuned

        progress = progress or print
        ck_path, ck, model = self.checkpoint_of_shipped("finetune", "fine-tuning")
        st = self.state()
        q = self.quantizer
        model_name = st.get("codec") or "lic-lgem-cpu"
        base_now = model.weights_meta["weights_hash_bytes"].hex()
        kodak = eval_dir or str(SHARED / "data" / "kodak")
        files = sorted(Path(kodak).glob("*.png"))[: eval_limit or None]
        if not files:
            raise CampaignError(f"no Kodak PNGs under {kodak}")
        images = [load_image(p) for p in files]
        us = tuple(us or EVAL_US)
        out = self.export_dir
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
                "warm_start": (f"{ck['init']['file']}: {ck['init']['about']}" if ck.get("init")
                               else f"the base g_s and inverse gains of {model_name}"),
                "recipe": shlex.join(st.get("recipe", [])), "data": st.get("data", ""),
                "exported": now()}
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
        loss_curve(self, out / f"{path.stem}.curve.png", f"{path.stem}: fine-tuning (CPU campaign)")
        return {"name": path.stem, "card": card, "files": str(out), "earned": earned,
                "why_not_earned": card["status"], "saving_pct": saving,
                "checkpoint": str(ck_path)}

    def installed(self, s: dict, wdir: Path) -> None:
        """The measured curves go into ``<codec>.quantizers.json`` (the studio's tooltips)."""
        from lic_core.evaluation.quantizers import merge_quantizer_table, quantizer_table_path

        card = s["card"]
        ev = card["eval"]
        merge_quantizer_table(quantizer_table_path(card["base_model"], wdir),
                              card["base_weights_hash"], tuple(ev["us"]), list(ev["images"]),
                              ev["curves"])

    def more_summary(self, s: dict) -> list[str]:
        return [f"  {key:14s} BD-rate vs rounding " + ("n/a" if v is None else f"{v:+.2f} %")
                for key, v in s["card"]["eval"]["bd_vs_round_percent"].items()]


def retire_finetuned(wdir: Path, name: str) -> list[str]:
    """Remove the decoders fine-tuned on earlier ``name`` weights (its quantizer table, its
    designed TCQ rate tables, its GAN and diffusion decoders too) from the weights folder: the
    codec would ignore the tuned ones beside the new weights anyway (they were tuned on other
    latents), and the diffusion decoder, which the codec does not check, is conditioned on the
    old g_s. Returns the quantizers they were for (and "tcq rate tables", "gan", "diffusion");
    the stages retrain them on the new weights — the release train (:mod:`.release`) does all
    of it and never calls this (docs/training.md)."""
    from lic_core.codecs.frozen import diffusion_bound
    from lic_core.decoder.finetuned import finetuned_base_hash
    from lic_core.evaluation.quantizers import quantizer_table_path
    from lic_core.weights import read_weights_hash

    current = read_weights_hash(wdir / f"{name}.safetensors")
    retired = []
    for q in ("round", "deadzone", "rdoq", "tcq"):
        ft = wdir / f"{name}-ft-{q}.safetensors"
        if ft.is_file() and finetuned_base_hash(ft) != current:
            for suffix in (".safetensors", ".md", ".json", ".curve.png"):
                ft.with_suffix(suffix).unlink(missing_ok=True)
            retired.append(q)
    gan = wdir / f"{name}-gan.safetensors"  # lic_core.paths.gan_weights_path
    if gan.is_file() and finetuned_base_hash(gan) != current:
        for suffix in (".safetensors", ".md", ".json", ".curve.png"):
            gan.with_suffix(suffix).unlink(missing_ok=True)
        retired.append("gan")
    diffusion = wdir / f"{name}-diffusion.safetensors"  # conditioned on the old g_s's features
    if diffusion.is_file() and not diffusion_bound(diffusion, current):
        for suffix in (".safetensors", ".md", ".json", ".curve.png"):
            diffusion.with_suffix(suffix).unlink(missing_ok=True)
        retired.append("diffusion")
    table = quantizer_table_path(name, wdir)
    if table.is_file():
        try:
            stale = json.loads(table.read_text()).get("base_weights_hash") != current
        except ValueError:
            stale = True
        if stale:
            table.unlink()
    from lic_core.quantizer.tcq_designed import SUFFIX, read_table_file

    tcq = wdir / f"{name}{SUFFIX}"
    if tcq.is_file():  # designed TCQ rate tables fit the old weights' σ: redesign them
        try:
            stale = read_table_file(tcq).get("base_weights_hash") != current
        except LicError:
            stale = True
        if stale:
            tcq.unlink()
            retired.append("tcq rate tables")
    return retired
