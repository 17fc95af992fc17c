"""The Kodak table of the generative decoders (issues 13, 26): bpp, PSNR, MS-SSIM and LPIPS per
slider point, for several decoders of the **same bitstreams** (MSE, GAN, diffusion), beside the
published Kodak points of HiFiC (Mentzer et al. 2020) and MS-ILLM (Muckley et al. 2023).

For each slider value u and image, the codec encodes once (real ``.lic`` bytes, the first
decoder of ``decoders``: "mse" for our codec, "gan" for HiFiC); every other decoder decodes
those very bytes (``LearnedCodec.decode(data, decoder=...)``: the diffusion decoder with the
step count and seed the file carries). So the diffusion row and the MSE row share their bpp to the
byte: only the decoder differs. Means over images per (decoder, u).

Used by the campaign's ``export`` of the diffusion, GAN and HiFiC stages (model cards) and by
``benchmarks/generative_kodak.py``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..codecs.base import Codec, EncodeParams, ProgressFn
from ..errors import LicError

__all__ = ["evaluate_decoders", "published_hific", "published_anchors", "kodak_table_md",
           "DEFAULT_US", "SAME_BUDGET", "same_budget", "hific_card_line", "budget_line",
           "diffusion_card_line", "gan_card_line"]

DEFAULT_US = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: relative difference of two CPU budgets still called "the same" (issue 13: HiFiC and our
#: diffusion decoder are trained on the same CPU budget, so that their comparison is fair)
SAME_BUDGET = 0.10
METRICS = ("psnr", "ms-ssim", "lpips")


def _images(folder: str | Path, limit: Optional[int]) -> list[tuple[str, np.ndarray]]:
    from .run_eval import list_images, load_rgb

    files = list_images(folder, limit)
    if not files:
        raise LicError(f"no images in {folder}")
    return [(p.name, load_rgb(p)) for p in files]


def evaluate_decoders(codec: Codec, folder: str | Path, us: Sequence[float] = DEFAULT_US,
                      decoders: Sequence[str] = ("mse", "diffusion"),
                      limit: Optional[int] = None, steps: Optional[int] = None, seed: int = 0,
                      metrics: Sequence[str] = METRICS,
                      progress: Optional[ProgressFn] = None) -> dict:
    """``{"images": [...], "points": {decoder: [{"u", "bpp", "psnr", "ms_ssim", "lpips"}, ...]},
    "steps", "seed"}`` — means over the images per slider value (see the module docstring).

    ``steps``/``seed`` go into the files (the diffusion decoder reads them from the header);
    ``steps`` None = 6. ``progress(fraction, message)`` may raise CancelledError."""
    from ..metrics import compute_metrics

    imgs = _images(folder, limit)
    decoders = list(decoders)
    if not decoders:
        raise LicError("evaluate_decoders needs at least one decoder")
    first, rest = decoders[0], decoders[1:]
    keys = [_KEY[m] for m in metrics]
    points: dict[str, list[dict]] = {d: [] for d in decoders}
    total = len(us) * len(imgs) * len(decoders)
    done = 0
    n_steps = int(steps) if steps else 6
    for u in us:
        acc = {d: dict.fromkeys(["bpp", *keys], 0.0) for d in decoders}
        for name, img in imgs:
            if progress is not None:
                progress(done / total, f"u={u:g} {name}: encode ({first})")
            res = codec.encode(img, EncodeParams(rate=float(u), decoder=first,
                                                 diffusion_steps=n_steps, seed=int(seed)))
            recs = {first: res.reconstruction}
            done += 1
            for d in rest:
                if progress is not None:
                    progress(done / total, f"u={u:g} {name}: decode ({d})")
                recs[d] = codec.decode(res.data, decoder=d).reconstruction  # type: ignore[call-arg]
                done += 1
            for d, rec in recs.items():
                acc[d]["bpp"] += res.bpp
                for k, v in compute_metrics(img, rec, metrics).items():
                    acc[d][k] += v
        for d in decoders:
            points[d].append({"u": float(u), **{k: v / len(imgs) for k, v in acc[d].items()}})
    if progress is not None:
        progress(1.0, "done")
    return {"images": [n for n, _ in imgs], "points": points, "steps": n_steps, "seed": int(seed)}


_KEY = {"psnr": "psnr", "ms_ssim": "ms_ssim", "ms-ssim": "ms_ssim", "lpips": "lpips"}


def published_hific(dataset: str = "kodak") -> list[dict]:
    """HiFiC's published Lo/Mi/Hi points (bpp, PSNR, MS-SSIM, LPIPS) from the anchors
    (``lic_core/assets/anchors/kodak/hific.json``; tensorflow/compression data.csv)."""
    return published_points("hific", dataset)


#: the published generative anchors of the Kodak table: label → anchor file stem
#: (``lic_core/assets/anchors/<dataset>/<stem>.json``, provenance in its README)
PUBLISHED = {"HiFiC (published, full size)": "hific",
             "MS-ILLM (published, full size)": "ms-illm"}


def published_anchors(dataset: str = "kodak") -> dict[str, list[dict]]:
    """Every published generative anchor of :data:`PUBLISHED` that ships: label → points."""
    out = {label: published_points(stem, dataset) for label, stem in PUBLISHED.items()}
    return {label: pts for label, pts in out.items() if pts}


def published_points(stem: str, dataset: str = "kodak") -> list[dict]:
    """The points (bpp, PSNR, MS-SSIM, LPIPS) of one published anchor with LPIPS ([] if none)."""
    from .anchors import load_anchors

    curves = load_anchors(dataset, "lpips", names=[stem])
    if not curves:
        return []
    c = curves[0]
    out = []
    for i, b in enumerate(c.bpp):
        pt = {"bpp": b}
        for m, key in (("psnr", "psnr"), ("ms-ssim", "ms_ssim"), ("lpips", "lpips")):
            if c.has(m):
                pt[key] = c.values[m][i]
        out.append(pt)
    return out


def _fmt(v: Optional[float], spec: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def kodak_table_md(rows: dict[str, list[dict]], published: Sequence[dict] = (),
                   anchors: Optional[dict[str, list[dict]]] = None) -> str:
    """A markdown table: one row per (label, slider point), HiFiC's published points
    (``published``) and any other published anchors (``anchors``: label → points)."""
    lines = ["| decoder | u | bpp | PSNR (dB) | MS-SSIM | LPIPS |", "|---|---|---|---|---|---|"]
    for label, pts in rows.items():
        for p in pts:
            lines.append(f"| {label} | {_fmt(p.get('u'), '.2f')} | {_fmt(p.get('bpp'), '.3f')} | "
                         f"{_fmt(p.get('psnr'), '.2f')} | {_fmt(p.get('ms_ssim'), '.4f')} | "
                         f"{_fmt(p.get('lpips'), '.4f')} |")
    pub = {"HiFiC (published, full size)": list(published)} if published else {}
    for label, pts in {**pub, **(anchors or {})}.items():
        for p in pts:
            lines.append(f"| {label} | – | {_fmt(p.get('bpp'), '.3f')} | "
                         f"{_fmt(p.get('psnr'), '.2f')} | {_fmt(p.get('ms_ssim'), '.4f')} | "
                         f"{_fmt(p.get('lpips'), '.4f')} |")
    return "\n".join(lines) + "\n"



def diffusion_card_summary(card: dict, row: str = "diffusion decoder") -> dict:
    """What a diffusion (or, with ``row="GAN decoder"``, a GAN) decoder's model card says, for
    one-line labels (``lic models``, the studio's decoder picker): ``preview``, ``steps``,
    ``cpu_hours``, ``images`` and, when the card holds its Kodak table, the mean LPIPS / PSNR of
    it and of the MSE decoder on the same bits over ``points`` slider points (None where the
    card does not say)."""
    ev = card.get("eval") or {}
    rows = ev.get("rows") or {}
    mse, dif = rows.get("MSE decoder (g_s)") or [], rows.get(row) or []

    def mean(points: list, key: str) -> Optional[float]:
        vals = [float(p[key]) for p in points if p.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    images = ev.get("images")
    return {"preview": bool(card.get("preview")),
            "steps": int(card["total_steps"]) if card.get("total_steps") else None,
            "cpu_hours": float(card["cpu_hours"]) if card.get("cpu_hours") else None,
            "lineage_cpu_hours": (float(card["lineage_cpu_hours"])
                                  if card.get("lineage_cpu_hours") else None),
            "images": len(images) if isinstance(images, list) else images,
            "points": len(dif), "lpips": mean(dif, "lpips"), "lpips_mse": mean(mse, "lpips"),
            "psnr": mean(dif, "psnr"), "psnr_mse": mean(mse, "psnr")}


def diffusion_card_line(card: dict, codec_hash: Optional[str] = None,
                        row: str = "diffusion decoder", hash_key: str = "codec_weights_hash",
                        stage: str = "diffusion") -> str:
    """One line: ``trained · 12345 steps · 4.2 CPU-h · Kodak (24 images, 6 points, same bits):
    LPIPS 0.200 vs 0.250 (mse), PSNR 28.50 vs 30.50 dB``; with ``codec_hash`` (the codec
    weights' hash now) it warns when the decoder learned on other codec weights' latents (its
    figures are then not these weights'). ``row``/``hash_key``/``stage``: the card's row, the
    key of the codec hash it learned on, the campaign stage that trains it."""
    s = diffusion_card_summary(card, row)
    trained_on = card.get(hash_key)
    if codec_hash and trained_on and trained_on != codec_hash:
        return (f"{'PREVIEW' if s['preview'] else 'trained'} on other codec weights "
                f"({str(trained_on)[:8]}…, now {codec_hash[:8]}…): its figures are not these "
                f"weights'; retrain it (tools/campaign.sh --stage {stage})")
    parts = ["PREVIEW" if s["preview"] else "trained"]
    if s["steps"]:
        parts.append(f"{s['steps']} steps")
    if s["cpu_hours"]:
        lineage = s.get("lineage_cpu_hours")
        parts.append(f"{s['cpu_hours']:.1f} CPU-h" + (
            f" ({lineage:.1f} with its warm start)" if lineage and lineage > s["cpu_hours"] + 0.05
            else ""))
    if s["lpips"] is not None and s["lpips_mse"] is not None:
        n = s["images"]
        where = ", ".join(x for x in (f"{n} image{'s' if n != 1 else ''}" if n else "",
                                      f"{s['points']} slider points", "same bits") if x)
        kodak = f"Kodak ({where}): LPIPS {s['lpips']:.3f} vs {s['lpips_mse']:.3f} (mse)"
        if s["psnr"] is not None and s["psnr_mse"] is not None:
            kodak += f", PSNR {s['psnr']:.2f} vs {s['psnr_mse']:.2f} dB"
        parts.append(kodak)
    return " · ".join(parts)


def gan_card_line(card: dict, codec_hash: Optional[str] = None) -> str:
    """:func:`diffusion_card_line` for a GAN decoder's card (issue 26), plus the CPU budget of
    the diffusion decoder beside its own, as the card states it."""
    line = diffusion_card_line(card, codec_hash, "GAN decoder", "base_weights_hash", "gan")
    b = card.get("budgets") or {}
    if b.get("diffusion_cpu_hours") and "other codec weights" not in line:
        line += (f" · budget {'=' if b.get('same_budget') else '≠'} the diffusion decoder's "
                 f"({float(b['diffusion_cpu_hours']):.1f} CPU-h)")
    return line


def same_budget(a_hours: Optional[float], b_hours: Optional[float]) -> bool:
    """Two training budgets (hours) are "the same" when both are known and within
    :data:`SAME_BUDGET` of the larger."""
    if not a_hours or not b_hours or a_hours <= 0 or b_hours <= 0:
        return False
    return abs(a_hours - b_hours) <= SAME_BUDGET * max(a_hours, b_hours)


def _gan_row(card: dict) -> list[dict]:
    rows = (card.get("eval") or {}).get("rows") or {}
    for label, pts in rows.items():
        if str(label).endswith("(GAN decoder)"):
            return list(pts)
    return []


def hific_card_line(card: dict) -> str:
    """One line for a HiFiC model card: ``trained (GAN stage) · 10300 steps · 3.3 CPU-h · Kodak
    (24 images, 6 slider points): 0.12–0.61 bpp, LPIPS 0.150, PSNR 27.10 dB`` (means over the
    points); ``PREVIEW (…)`` while only the reconstruction stage (hific-1) has trained."""
    preview = bool(card.get("preview"))
    gan = str(card.get("stage", "")) == "hific-2"
    parts = [("PREVIEW" if preview else "trained")
             + (" (GAN stage)" if gan else " (reconstruction stage only, no GAN yet)")]
    if card.get("total_steps"):
        parts.append(f"{int(card['total_steps'])} steps")
    if card.get("cpu_hours"):
        parts.append(f"{float(card['cpu_hours']):.1f} CPU-h")
    pts = _gan_row(card)
    bpp = [float(p["bpp"]) for p in pts if p.get("bpp") is not None]
    lp = [float(p["lpips"]) for p in pts if p.get("lpips") is not None]
    ps = [float(p["psnr"]) for p in pts if p.get("psnr") is not None]
    if bpp and lp:
        n = len((card.get("eval") or {}).get("images") or [])
        where = ", ".join(x for x in (f"{n} images" if n else "", f"{len(pts)} slider points")
                          if x)
        text = (f"Kodak ({where}): {min(bpp):.2f}–{max(bpp):.2f} bpp, "
                f"LPIPS {sum(lp) / len(lp):.3f}")
        if ps:
            text += f", PSNR {sum(ps) / len(ps):.2f} dB"
        parts.append(text)
    return " · ".join(parts)


def budget_line(hific_card: Optional[dict], diffusion_card: Optional[dict],
                codec_card: Optional[dict] = None) -> tuple[bool, str]:
    """``(same, line)``: whether HiFiC and our diffusion decoder were trained on the same CPU
    budget (issue 13's fairness condition), from their model cards — so the statement holds on
    any checkout, not only where the campaign's runs/ still exist. With ``codec_card`` (the card
    of the codec whose frozen latents the diffusion decoder learned on) the line also says what
    the budgets leave out: HiFiC's hours train its own encoder and hyperprior, ours stand on the
    codec's."""
    from ..weights import lineage_cpu_hours

    # with what each was warm-started from (a continued hific-small books its start too)
    h = float(lineage_cpu_hours(hific_card or {}) or 0.0)
    d = float(lineage_cpu_hours(diffusion_card or {}) or 0.0)
    if not h or not d:
        missing = " and ".join(n for n, v in (("HiFiC", h), ("diffusion decoder", d)) if not v)
        return False, f"training budgets unknown ({missing}: no CPU-hours on the model card)"
    gpu = float((hific_card or {}).get("gpu_hours") or 0) + float(
        (diffusion_card or {}).get("gpu_hours") or 0)
    hw = "GPU + CPU" if gpu else "CPU"
    same = same_budget(h, d)
    line = (f"same {hw} training budget: HiFiC {h:.2f} h, our diffusion decoder {d:.2f} h"
            if same else
            f"NOT the same training budget: HiFiC {h:.2f} CPU-h, our diffusion decoder "
            f"{d:.2f} CPU-h — the comparison favours the one trained longer")
    c = float((codec_card or {}).get("cpu_hours") or 0.0)
    if c:
        name = (diffusion_card or {}).get("codec") or "our codec"
        line += (f" (HiFiC's hours also train its encoder and hyperprior; our decoder learned on "
                 f"the frozen latents of {name}, {c:.1f} CPU-h more)")
    return same, line


def installed_budget_line(hific_name: str = "hific-small") -> tuple[bool, str]:
    """:func:`budget_line` for the weights installed here: HiFiC's card and the diffusion
    decoder card of our first learned codec that has one (``lic models``, the studio's demo)."""
    from ..codecs import PREFERRED_LEARNED
    from ..paths import diffusion_weights_path, weights_path
    from ..weights import read_weights_card

    def card(path: Path) -> Optional[dict]:
        try:
            return read_weights_card(path) if path.is_file() else None
        except Exception:  # noqa: BLE001 - an unreadable card: "unknown", never a crash
            return None

    for name in PREFERRED_LEARNED:
        diffusion = card(diffusion_weights_path(name))
        if diffusion:
            return budget_line(card(weights_path(hific_name)), diffusion,
                               card(weights_path(name)))
    return budget_line(card(weights_path(hific_name)), None)
