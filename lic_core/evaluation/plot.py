"""Rate-distortion plots rendered with Pillow only (no matplotlib, no Qt in lic_core).

Drawn at ``supersample``× the requested size and downscaled with a Lanczos filter, which gives
anti-aliased lines and text.  Our curves are solid with filled markers; published anchors are
dashed with small markers.  MS-SSIM is plotted in dB (−10·log10(1 − MS-SSIM)), as CompressAI's
RD plots do, so the high-rate end stays readable.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence, Union

from PIL import Image, ImageChops, ImageDraw, ImageFont

from ..errors import LicError
from .anchors import Curve, normalize_metric

BACKGROUND = (255, 255, 255)
AXIS = (40, 40, 40)
GRID = (225, 225, 225)
TEXT = (30, 30, 30)
#: Tableau-10: distinguishable and colour-blind friendlier than pure RGB
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
AXIS_LABEL = {"psnr": "PSNR-RGB (dB)", "ms-ssim": "MS-SSIM (dB)", "lpips": "LPIPS (lower is better)"}


def font(px: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``px`` pixels (the fixed bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 × 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], start
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 10))
        v += step
    return ticks


def fmt(v: float, step: float) -> str:
    """Fewest decimals that show every multiple of ``step`` exactly (0.25 → 2, 2.5 → 1)."""
    d = 0
    while d < 4 and abs(step * 10 ** d - round(step * 10 ** d)) > 1e-6:
        d += 1
    return f"{v:.{d}f}"


def _display_values(curve: Curve, metric: str) -> list[float]:
    vals = curve.values[metric]
    if metric == "ms-ssim":
        return [-10.0 * math.log10(max(1.0 - v, 1e-12)) for v in vals]
    return list(vals)


def curve_colors(curves: Sequence[Curve]) -> list[tuple[int, int, int]]:
    """Colour of each curve as drawn: ours first through the palette, then the anchors."""
    ours = [i for i, c in enumerate(curves) if c.kind != "anchor"]
    anchors = [i for i, c in enumerate(curves) if c.kind == "anchor"]
    colors: list = [None] * len(curves)
    for k, i in enumerate(ours + anchors):
        colors[i] = PALETTE[k % len(PALETTE)]
    return colors


def _dash_pattern(curves: Sequence[Curve], curve: Curve) -> tuple[float, float]:
    """Dash/gap lengths (1× pixels): long dashes on the first pass through the palette, short
    ones when colours repeat."""
    order = [c for c in curves if c.kind != "anchor"] + [c for c in curves if c.kind == "anchor"]
    k = next(i for i, c in enumerate(order) if c is curve)
    return (9.0, 6.0) if (k // len(PALETTE)) % 2 == 0 else (3.0, 4.0)


def _dashed(draw: ImageDraw.ImageDraw, pts, color, width, dash, gap) -> None:
    on, left = True, dash
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        seg = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < seg:
            step = min(left, seg - pos)
            if on:
                a, b = pos / seg, (pos + step) / seg
                draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                           (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=color, width=width)
            pos += step
            left -= step
            if left <= 1e-9:
                on = not on
                left = dash if on else gap


def _panel(img: Image.Image, box: tuple[int, int, int, int], curves: Sequence[Curve],
           colors, metric: str, s: float, title: Optional[str],
           xlim: Optional[tuple[float, float]], legend: bool) -> None:
    draw = ImageDraw.Draw(img)
    f_tick, f_label, f_title, f_leg = font(int(13 * s)), font(int(15 * s)), \
        font(int(17 * s)), font(int(12 * s))
    x0, y0, x1, y1 = box
    pl, pr, pt, pb = x0 + int(72 * s), x1 - int(18 * s), y0 + int(40 * s), y1 - int(58 * s)
    drawn = [(c, col) for c, col in zip(curves, colors) if c.has(metric)]
    if not drawn:
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), f"no {metric} data", fill=TEXT, font=f_label,
                  anchor="mm")
        return
    # x range: our curves decide (anchors often run to 4+ bpp); anchors alone: all points
    ours = [c for c, _ in drawn if c.kind != "anchor"] or [c for c, _ in drawn]
    if xlim is None:
        xmax = max(max(c.bpp) for c in ours) * 1.08
        xlim = (0.0, xmax)
    xs_in = lambda c: [(b, v) for b, v in zip(c.bpp, _display_values(c, metric))
                       if xlim[0] <= b <= xlim[1] and math.isfinite(v)]
    vals = [v for c, _ in drawn for _, v in xs_in(c)]
    if not vals:
        vals = [v for c, _ in drawn for v in _display_values(c, metric) if math.isfinite(v)]
    ylo, yhi = min(vals), max(vals)
    pad = (yhi - ylo) * 0.06 or max(abs(yhi) * 0.05, 0.01)
    ylim = (ylo - pad, yhi + pad)
    if metric == "lpips":
        ylim = (max(0.0, ylim[0]), ylim[1])

    def X(b):
        return pl + (b - xlim[0]) / (xlim[1] - xlim[0]) * (pr - pl)

    def Y(v):
        return pb - (v - ylim[0]) / (ylim[1] - ylim[0]) * (pb - pt)

    # grid and ticks
    xt, yt = nice_ticks(*xlim, target=8), nice_ticks(*ylim, target=7)
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    for t in xt:
        draw.line([(X(t), pt), (X(t), pb)], fill=GRID, width=max(1, int(s)))
        draw.line([(X(t), pb), (X(t), pb + 5 * s)], fill=AXIS, width=max(1, int(s)))
        draw.text((X(t), pb + 8 * s), fmt(t, xstep), fill=TEXT, font=f_tick, anchor="ma")
    for t in yt:
        draw.line([(pl, Y(t)), (pr, Y(t))], fill=GRID, width=max(1, int(s)))
        draw.line([(pl - 5 * s, Y(t)), (pl, Y(t))], fill=AXIS, width=max(1, int(s)))
        draw.text((pl - 8 * s, Y(t)), fmt(t, ystep), fill=TEXT, font=f_tick, anchor="rm")
    draw.rectangle([pl, pt, pr, pb], outline=AXIS, width=max(1, int(1.5 * s)))
    draw.text(((pl + pr) / 2, pb + 32 * s), "bits per pixel (bpp)", fill=TEXT, font=f_label,
              anchor="ma")
    ylabel = AXIS_LABEL[metric]
    tw = int(draw.textlength(ylabel, font=f_label)) + 4
    lab = Image.new("RGBA", (tw, int(22 * s)), (0, 0, 0, 0))
    ImageDraw.Draw(lab).text((tw / 2, 11 * s), ylabel, fill=TEXT, font=f_label, anchor="mm")
    lab = lab.rotate(90, expand=True)
    img.paste(lab, (int(x0 + 6 * s), int((pt + pb) / 2 - lab.height / 2)), lab)
    if title:
        draw.text(((pl + pr) / 2, y0 + 12 * s), title, fill=TEXT, font=f_title, anchor="ma")

    # curves, clipped to the plot area by drawing them on their own layer
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ld = ImageDraw.Draw(layer)
    order = sorted(range(len(drawn)), key=lambda i: drawn[i][0].kind != "anchor")  # anchors under
    for i in order:
        c, col = drawn[i]
        pts = [(X(b), Y(v)) for b, v in zip(c.bpp, _display_values(c, metric))
               if math.isfinite(v)]
        if c.kind == "anchor":
            if len(pts) > 1:
                dash, gap = _dash_pattern(curves, c)
                _dashed(ld, pts, col + (255,), int(2 * s), dash * s, gap * s)
            r = 2.6 * s
        else:
            if len(pts) > 1:
                ld.line(pts, fill=col + (255,), width=int(3 * s), joint="curve")
            r = 4.5 * s
        for px, py in pts:
            ld.ellipse([px - r, py - r, px + r, py + r], fill=col + (255,))
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).rectangle([pl + 1, pt + 1, pr - 1, pb - 1], fill=255)
    alpha = ImageChops.darker(layer.getchannel("A"), mask)  # min(): clip to the plot area
    img.paste(layer.convert("RGB"), (0, 0), alpha)

    if not legend:
        return
    # legend in the corner RD curves leave empty: lower right for rising curves (PSNR,
    # MS-SSIM), upper right for falling ones (LPIPS)
    rows = [(c, col) for c, col in drawn]
    lh = 18 * s
    lw = max(draw.textlength(c.name, font=f_leg) for c, _ in rows) + 44 * s
    lx0 = pr - 10 * s - lw
    ly0 = pb - 10 * s - lh * len(rows) - 8 * s if metric != "lpips" else pt + 10 * s
    draw.rectangle([lx0, ly0, lx0 + lw, ly0 + lh * len(rows) + 8 * s], fill=(255, 255, 255),
                   outline=(190, 190, 190), width=max(1, int(s)))
    for k, (c, col) in enumerate(sorted(rows, key=lambda r: r[0].kind == "anchor")):
        cy = ly0 + 4 * s + lh * k + lh / 2
        seg = [(lx0 + 8 * s, cy), (lx0 + 34 * s, cy)]
        if c.kind == "anchor":
            dash, gap = _dash_pattern(curves, c)
            _dashed(draw, seg, col, int(2 * s), dash * 0.8 * s, gap * 0.7 * s)
        else:
            draw.line(seg, fill=col, width=int(3 * s))
            r = 4 * s
            draw.ellipse([lx0 + 21 * s - r, cy - r, lx0 + 21 * s + r, cy + r], fill=col)
        draw.text((lx0 + 40 * s, cy), c.name, fill=TEXT, font=f_leg, anchor="lm")


def render_rd(curves: Sequence[Curve], metric: str = "psnr",
              size: tuple[int, int] = (1200, 800), title: Optional[str] = None,
              xlim: Optional[tuple[float, float]] = None, supersample: int = 2) -> Image.Image:
    """RGB image of the RD curves for ``metric`` ("psnr" | "ms-ssim" | "lpips" | "all": one
    panel per metric side by side)."""
    if not curves:
        raise LicError("nothing to plot: no curves")
    w, h = int(size[0]), int(size[1])
    if w < 200 or h < 150:
        raise LicError("plot size must be at least 200x150 pixels")
    s = max(1, int(supersample))
    img = Image.new("RGB", (w * s, h * s), BACKGROUND)
    colors = curve_colors(curves)
    metrics = ["psnr", "ms-ssim", "lpips"] if metric == "all" else [normalize_metric(metric)]
    metrics = [m for m in metrics if any(c.has(m) for c in curves)] or metrics
    pw = w * s / len(metrics)
    scale = s * min(1.0, max(0.6, min(pw / s, h) / 800))  # shrink text on small panels
    for k, m in enumerate(metrics):
        box = (int(k * pw), 0, int((k + 1) * pw), h * s)
        _panel(img, box, curves, colors, m, scale, title if len(metrics) == 1 else
               (f"{title}: {m}" if title else m), xlim, legend=True)
    return img.resize((w, h), Image.Resampling.LANCZOS) if s > 1 else img


def save_rd_plot(curves: Sequence[Curve], path: Union[str, Path], metric: str = "psnr",
                 size: tuple[int, int] = (1200, 800), title: Optional[str] = None,
                 xlim: Optional[tuple[float, float]] = None) -> Path:
    """Render with :func:`render_rd` and write a PNG (atomically)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img = render_rd(curves, metric, size, title, xlim)
    tmp = out.with_name(f".{out.name}.tmp")
    img.save(tmp, format="PNG")
    tmp.replace(out)
    return out
