"""What each dependent stage of a release starts from (issue 27 item 3), chosen by measurement.

A decoder with g_s's architecture — a fine-tuned decoder (``finetune-<q>``), the GAN decoder —
has two sound starting points beside new codec weights:

* **base**: the new weights' own g_s and G' (where a fresh stage starts);
* **transplant**: new base + (previous decoder − previous base), the tuning the replaced decoder
  learned, moved onto the new g_s (task arithmetic, Ilharco et al., ICLR 2023). The campaign's
  weights continue one lineage (each install trains on from the one before), so the two g_s
  sit in one basin and a weight difference keeps its meaning.

The previous decoder as it is was measured below both every time: it learned on latents the new
weights no longer make. Measured on the weights after the shipped ``144f756b`` (the committed
codec seed, +0.55 CPU-h), 6 Kodak images, u = 0 / 0.5 / 1, the same latents for every decoder
(float g_s; 2026-12-07):

==================  ==============  ==============  ==============
decoder             base g_s        previous        transplant
==================  ==============  ==============  ==============
ft-tcq, PSNR        30.154 dB       30.048 dB       **30.225 dB**
ft-round, PSNR      **30.070 dB**   29.817 dB       29.992 dB
ft-rdoq, PSNR       **29.779 dB**   29.543 dB       29.778 dB
gan, LPIPS (PSNR)   0.193 (30.07)   0.136 (29.50)   **0.132 (29.73)**
==================  ==============  ==============  ==============

The delta helps where the tuning learned something of its own latents or objective (TCQ's two
lattices, the GAN's textures) and costs where it was mostly more training of g_s, which the new
weights already had (rounding). Which way it goes depends on how far the weights moved, so each
release *probes* both candidates (:func:`choose`) on centre crops of training photos (never
Kodak) with the stage's own quantizer — PSNR for a fine-tuned decoder, LPIPS for the GAN decoder —
and starts from the better; it costs about a CPU-minute a stage and the manifest keeps the
numbers.

The diffusion decoder is a network of its own conditioned on the base g_s's features: it
continues its previous weights (a fresh optimizer). The TCQ rate tables start from the previous
tables (:func:`lic_core.train.tcq_design.design`'s ``init``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Sequence

#: slider points of a probe
PROBE_US = (0.0, 0.5, 1.0)


def decoder_tensors(path: Path) -> dict:
    """The g_s and G' tensors of a weights or decoder file (float32)."""
    from lic_core.train.finetune import FT_KEYS
    from lic_core.weights import load_weights

    state, _ = load_weights(path)
    return {k: v for k, v in state.items() if k.startswith(FT_KEYS)}


def transplant(old_base: Path, old_decoder: Path, new_base: Path, out: Path) -> Path:
    """Write ``new base + (old decoder − old base)`` (g_s and G', float32) to ``out`` with the
    metadata ``lic train finetune|gan --init-decoder`` records; returns ``out``."""
    from safetensors.torch import save_file

    from lic_core.fileio import write_atomic_via_path
    from lic_core.weights import read_weights_hash, weights_hash

    ob, od, nb = decoder_tensors(old_base), decoder_tensors(old_decoder), decoder_tensors(new_base)
    from lic_core.train.finetune import init_decoder_depth

    extra = init_decoder_depth(old_decoder)
    trunk: dict = {}
    if extra:  # a deeper generator: its trunk has no base counterpart and moves over as it is
        from lic_core.transform.deepen import base_key

        trunk = {k: v for k, v in od.items() if base_key(k) is None}
        od = {base_key(k): v for k, v in od.items() if base_key(k) is not None}
    # new weights with another number of rate levels (issue 27: 6 → 11) have another G' table:
    # its tuning does not carry over level by level, so G' is the new weights' own
    regained = {k for k in nb if k in ob and ob[k].shape != nb[k].shape}
    if set(ob) != set(od) or set(ob) != set(nb) or any(od[k].shape != ob[k].shape for k in ob) \
            or any(not k.startswith("gains.inv_gain.") for k in regained):
        raise ValueError(f"{old_decoder.name} does not fit the new weights' g_s")
    state = {k: (nb[k] if k in regained else nb[k] + (od[k] - ob[k])).contiguous()
             for k in sorted(nb)}
    if extra:  # written at the decoder's depth, its trunk as it was
        from lic_core.transform.deepen import deep_key

        state = {deep_key(k): v for k, v in state.items()}
        state.update({k: v.contiguous() for k, v in sorted(trunk.items())})
    new_hash = read_weights_hash(new_base) or ""
    # the tuning moves over, and so do the CPU-hours it took (the new card adds its own run)
    from safetensors import safe_open

    from lic_core.weights import lineage_cpu_hours, read_weights_card

    with safe_open(str(old_decoder), framework="pt") as f:
        raw = (f.metadata() or {}).get("lineage_cpu_hours")
    try:  # a transplant of a transplant: its metadata, as load_init_decoder reads it
        lineage = float(raw) if raw is not None else lineage_cpu_hours(read_weights_card(old_decoder))
    except ValueError:
        lineage = lineage_cpu_hours(read_weights_card(old_decoder))
    meta = {"weights_hash": weights_hash(state).hex(), "base_weights_hash": new_hash,
            **({"lineage_cpu_hours": f"{lineage:.4f}"} if lineage is not None else {}),
            **({"g_s_extra_blocks": str(extra)} if extra else {}),
            "about": (f"the base g_s of {new_base.stem} ({new_hash}) + the tuning of "
                      f"{old_decoder.name} (its decoder − the base g_s of the weights it was "
                      f"tuned on, {read_weights_hash(old_base)})"
                      + ("; G' is the new weights' own (another number of rate levels)"
                         if regained else ""))}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic_via_path(out, lambda tmp: save_file(state, str(tmp), metadata=meta), True)
    return out


def probe_crops(folders: Sequence[str], n: int, crop: int) -> list:
    """Centre ``crop``² crops of ``n`` training photos spread over ``folders``."""
    from lic_core.train.data import list_images
    from lic_core.train.tcq_design import centre_crops

    files = [f for d in folders for f in list_images(d)]
    return centre_crops(folders, max(1, len(files) // max(1, n)), crop)[:n]


def probe(model, candidates: dict[str, dict], quantizer, crops: Sequence, metric: str,
          us: Sequence[float] = PROBE_US) -> dict[str, float]:
    """Mean PSNR (dB) or LPIPS of each candidate decoder (g_s + G' tensors) on the same real
    latents of ``crops`` at ``us`` (8-bit pictures); the model's own decoder is restored."""
    import torch

    from lic_core.codecs.learned import quantized_latents
    from lic_core.train.finetune import decoder_state

    own = {k: v.clone() for k, v in decoder_state(model).items()}
    lp = None
    if metric == "lpips":
        from lic_core.metrics.lpips_metric import LpipsLoss

        lp = LpipsLoss()
    scores: dict[str, list[float]] = {k: [] for k in candidates}
    try:
        for x in crops:
            for u in us:
                lat = quantized_latents(model, x, float(u), quantizer)
                u_t = torch.full((x.shape[0],), float(lat["u"]))
                for name, tensors in candidates.items():
                    model.load_state_dict(tensors, strict=False)
                    with torch.no_grad():
                        xh = model.g_s(lat["y_hat_gained"].float() * model.gains.inv_gain(u_t))
                        xh = (xh.clamp(0.0, 1.0) * 255.0).round() / 255.0
                        if lp is not None:
                            scores[name].append(float(lp(xh, x)))
                        else:
                            mse = max(float((xh - x).pow(2).mean()), 1e-12)
                            scores[name].append(-10.0 * math.log10(mse))
    finally:
        model.load_state_dict(own, strict=False)
    return {k: sum(v) / len(v) for k, v in scores.items()}


def previous_decoder(stage: str, name: str, folder: Path) -> Optional[Path]:
    """The decoder file a dependent stage re-derives, in the folder of the outgoing weights
    (None when there is none, or it was trained on other weights than those)."""
    from lic_core.codecs.frozen import decoding_files
    from lic_core.paths import diffusion_weights_path, finetuned_path, gan_weights_path

    p = (diffusion_weights_path(name, folder) if stage == "diffusion" else
         gan_weights_path(name, folder) if stage == "gan" else
         finetuned_path(name, stage.split("-", 1)[1], folder))
    return p if p in decoding_files(folder, name) else None


def choose(stage: str, name: str, outgoing: Path, staging: Path, out_dir: Path,
           crops: Callable[[], list], log: Callable[[str], None] = print) -> dict:
    """The warm start of a decoder stage: ``{"from", "file", "why", "probe"}`` — "previous" (the
    diffusion decoder's weights), "transplant" or "base" (see the module); ``file`` is what the
    stage starts from (None: the new weights' own g_s)."""
    prev = previous_decoder(stage, name, outgoing)
    if prev is None:
        return {"from": "base", "file": None, "probe": None,
                "why": "no previous decoder for the outgoing weights"}
    if stage == "diffusion":
        return {"from": "previous", "file": str(prev), "probe": None,
                "why": "its own network, conditioned on the base g_s: continues its weights"}
    from lic_core.models import load_model
    from lic_core.train.finetune import decoder_state, inference_quantizer

    model = load_model(name, staging / f"{name}.safetensors")
    try:
        out = transplant(outgoing / f"{name}.safetensors", prev, staging / f"{name}.safetensors",
                         out_dir / f"{stage}.transplant.safetensors")
    except ValueError as exc:  # another architecture: nothing to transplant
        log(f"{stage}: warm start from the base ({exc})")
        return {"from": "base", "file": None, "probe": None, "why": str(exc)}
    from lic_core.train.finetune import init_decoder_depth, match_decoder_depth

    # a deeper generator's transplant: the probe model takes its depth (its identity trunk
    # draws the base g_s's picture, so the "base" candidate stays the new weights' own g_s)
    match_decoder_depth(model, init_decoder_depth(out))
    quantizer = inference_quantizer(model, "round" if stage == "gan" else stage.split("-", 1)[1])
    metric = "lpips" if stage == "gan" else "psnr"
    scores = probe(model, {"base": {k: v.clone() for k, v in decoder_state(model).items()},
                           "transplant": decoder_tensors(out)}, quantizer, crops(), metric)
    better = (min if metric == "lpips" else max)(scores, key=scores.get)
    unit = "" if metric == "lpips" else " dB"
    why = (f"probe ({metric}, training crops): transplant {scores['transplant']:.4f}{unit}, "
           f"base {scores['base']:.4f}{unit}")
    log(f"{stage}: warm start from the {better} ({why})")
    return {"from": better, "file": str(out) if better == "transplant" else None,
            "probe": {"metric": metric, **{k: round(v, 5) for k, v in scores.items()}},
            "why": why}
