"""Learning curves of a training run: validation records → RD figures of merit → a PNG.

A run's ``log.jsonl`` holds ``val`` records (real bitstreams on the first few Kodak images at a
few slider values, with the cumulative *training* CPU seconds, docs/training.md). Each record is
summarised against a classical reference measured on the **same images** (the per-image numbers
in ``benchmarks/results/classical/*.json``): BD-rate (Bjøntegaard 2001, pchip) when the quality
ranges overlap, else BD-PSNR over the overlapping rates. The curve is drawn with Pillow only.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence, Union

from PIL import Image, ImageDraw

from lic_core.evaluation.bdrate import bd_psnr, bd_rate
from lic_core.evaluation.plot import AXIS, BACKGROUND, GRID, PALETTE, TEXT, fmt, font, nice_ticks


def read_log(path: Union[str, Path]) -> list[dict]:
    """All JSON records of a ``log.jsonl`` (a torn last line from a kill is skipped)."""
    out = []
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def val_records(path: Union[str, Path]) -> list[dict]:
    """The ``val`` records of a run log, in order (those with a training CPU time)."""
    return [r for r in read_log(path) if r.get("type") == "val" and "cpu_s" in r]


#: the quality axis of each metric in a CompressAI-format result file and in a card's points
METRIC_KEYS = {"psnr": ("psnr-rgb", "psnr"), "ms-ssim": ("ms-ssim-rgb", "ms_ssim")}


def quality_axis(metric: str, values: Sequence[float]) -> list[float]:
    """The BD axis of ``metric``: PSNR as is, MS-SSIM in dB (−10·log10(1 − MS-SSIM)), the axis
    BD-rates of MS-SSIM are reported on, where a step of 1 dB means the same at 0.9 and 0.99."""
    if metric == "psnr":
        return [float(v) for v in values]
    from lic_core.metrics.msssim import ms_ssim_db

    return [ms_ssim_db(float(v)) for v in values]


def reference_curve(result_json: Union[str, Path], images: Optional[Sequence[str]] = None,
                    metric: str = "psnr") -> tuple[list[float], list[float]]:
    """(bpp, quality) of a CompressAI-format result file, averaged per rate point over ``images``
    (file names, e.g. ``kodim01.png``) when given, else its overall ``results``. ``metric`` is
    ``psnr`` (dB) or ``ms-ssim`` (the mean MS-SSIM per point, then in dB: :func:`quality_axis`)."""
    key = METRIC_KEYS[metric][0]
    d = json.loads(Path(result_json).read_text())
    if not images:
        return list(d["results"]["bpp"]), quality_axis(metric, d["results"][key])
    per = d["per_image"]
    rows = [per[n] for n in images]
    k = len(rows[0]["bpp"])
    bpp = [sum(r["bpp"][i] for r in rows) / len(rows) for i in range(k)]
    q = [sum(r[key][i] for r in rows) / len(rows) for i in range(k)]
    return bpp, quality_axis(metric, q)


def rd_against(points: Sequence[dict], ref: tuple[list[float], list[float]],
               metric: str = "psnr") -> dict:
    """``{"bd_rate": % or None, "bd_psnr": dB or None}`` of ``points`` ({bpp, psnr[, ms_ssim]})
    vs ``ref`` on ``metric``'s axis (``bd_psnr`` is then the BD-quality in that axis' dB)."""
    bpp = [p["bpp"] for p in points]
    quality = quality_axis(metric, [p[METRIC_KEYS[metric][1]] for p in points])
    out: dict = {"bd_rate": None, "bd_psnr": None}
    try:
        out["bd_rate"] = bd_rate(ref[0], ref[1], bpp, quality)
    except Exception:  # noqa: BLE001 - undefined when the quality ranges do not overlap
        pass
    try:
        out["bd_psnr"] = bd_psnr(ref[0], ref[1], bpp, quality)
    except Exception:  # noqa: BLE001
        pass
    return out


def curve_rows(log_path: Union[str, Path], ref_json: Union[str, Path],
               kodak_names: Sequence[str]) -> list[dict]:
    """One row per validation: step, CPU-hours, the points and BD figures vs the reference
    measured on the same first-N images the validation used."""
    rows = []
    for r in val_records(log_path):
        n = int(r.get("images") or len(kodak_names))
        ref = reference_curve(ref_json, list(kodak_names[:n]))
        rows.append({"step": r["step"], "cpu_h": r["cpu_s"] / 3600.0, "points": r["points"],
                     "images": n, **rd_against(r["points"], ref)})
    return rows


def render_xy(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], path: Union[str, Path],
              xlabel: str, ylabel: str, title: str = "", size: tuple[int, int] = (1000, 620),
              hlines: Sequence[tuple[str, float]] = (),
              dashed: Sequence[tuple[int, Sequence[float], Sequence[float]]] = (),
              bars: Sequence[tuple[int, float, float, float]] = ()) -> Path:
    """A simple line chart (Pillow): one solid line with dots per series, optional labelled
    horizontal reference lines (e.g. "WebP" at 0 %). ``dashed``: (series index for the colour,
    xs, ys) drawn as dashed lines without dots (fits, extrapolations); ``bars``: (series index,
    x, y_lo, y_hi) vertical interval bars. Returns the written path."""
    s = 2.0
    W, H = int(size[0] * s), int(size[1] * s)
    img = Image.new("RGB", (W, H), BACKGROUND)
    d = ImageDraw.Draw(img)
    f_tick, f_lab, f_title = font(int(13 * s)), font(int(15 * s)), font(int(17 * s))
    pl, pr, pt, pb = int(80 * s), W - int(30 * s), int(64 * s), H - int(60 * s)
    xs = [x for _, xv, _ in series for x in xv] + [x for _, xv, _ in dashed for x in xv]
    xs += [b[1] for b in bars]
    ys = [y for _, _, yv in (*series, *dashed) for y in yv if y is not None and math.isfinite(y)]
    ys += [v for _, v in hlines] + [v for b in bars for v in b[2:] if math.isfinite(v)]
    if not xs or not ys:
        d.text((W / 2, H / 2), "no data yet", fill=TEXT, font=f_lab, anchor="mm")
        img = img.resize(size, Image.LANCZOS)
        img.save(path)
        return Path(path)
    xlo, xhi = min(0.0, min(xs)), max(xs) * 1.05 or 1.0
    ylo, yhi = min(ys), max(ys)
    pad = (yhi - ylo) * 0.08 or 1.0
    ylo, yhi = ylo - pad, yhi + pad

    def X(v: float) -> float:
        return pl + (v - xlo) / (xhi - xlo) * (pr - pl)

    def Y(v: float) -> float:
        return pb - (v - ylo) / (yhi - ylo) * (pb - pt)

    xt, yt = nice_ticks(xlo, xhi, 8), nice_ticks(ylo, yhi, 7)
    xs_, ys_ = (xt[1] - xt[0] if len(xt) > 1 else 1.0), (yt[1] - yt[0] if len(yt) > 1 else 1.0)
    for t in xt:
        d.line([(X(t), pt), (X(t), pb)], fill=GRID, width=2)
        d.text((X(t), pb + 8 * s), fmt(t, xs_), fill=TEXT, font=f_tick, anchor="ma")
    for t in yt:
        d.line([(pl, Y(t)), (pr, Y(t))], fill=GRID, width=2)
        d.text((pl - 8 * s, Y(t)), fmt(t, ys_), fill=TEXT, font=f_tick, anchor="rm")
    d.rectangle([pl, pt, pr, pb], outline=AXIS, width=3)
    d.text(((pl + pr) / 2, pb + 32 * s), xlabel, fill=TEXT, font=f_lab, anchor="ma")
    d.text((pl, pt - 10 * s), ylabel, fill=TEXT, font=f_lab, anchor="ld")
    if title:
        d.text(((pl + pr) / 2, 8 * s), title, fill=TEXT, font=f_title, anchor="ma")
    for name, v in hlines:
        y = Y(v)
        for x0 in range(pl, pr, int(14 * s)):
            d.line([(x0, y), (min(x0 + 8 * s, pr), y)], fill=(120, 120, 120), width=3)
        d.text((pr - 6 * s, y - 4 * s), name, fill=(90, 90, 90), font=f_tick, anchor="rd")
    for k, (name, xv, yv) in enumerate(series):
        col = PALETTE[k % len(PALETTE)]
        pts = [(X(x), Y(y)) for x, y in zip(xv, yv) if y is not None and math.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=col, width=int(3 * s), joint="curve")
        for px, py in pts:
            d.ellipse([px - 4 * s, py - 4 * s, px + 4 * s, py + 4 * s], fill=col)
        d.text((pl + 12 * s, pt + 10 * s + k * 20 * s), name, fill=col, font=f_lab, anchor="la")
    for k, xv, yv in dashed:
        pts = [(X(x), Y(y)) for x, y in zip(xv, yv) if y is not None and math.isfinite(y)]
        for j, (a, b) in enumerate(zip(pts, pts[1:])):
            if j % 2 == 0:  # every other segment: dashed when the points are dense
                d.line([a, b], fill=PALETTE[k % len(PALETTE)], width=int(2 * s))
    for k, x, lo, hi in bars:
        col = PALETTE[k % len(PALETTE)]
        d.line([(X(x), Y(lo)), (X(x), Y(hi))], fill=col, width=int(3 * s))
        for yv in (lo, hi):
            d.line([(X(x) - 6 * s, Y(yv)), (X(x) + 6 * s, Y(yv))], fill=col, width=int(3 * s))
    img = img.resize(size, Image.LANCZOS)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out
