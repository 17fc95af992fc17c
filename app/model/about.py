"""The "About this model" card's content: a codec's provenance in plain words, as HTML (Qt-free).

What the weights are (preview or trained, in one sentence, and the one-line summary of the card)
comes from :func:`lic_core.weights.weights_provenance`, the function ``lic models`` prints from
too, so the studio and the CLI never describe the same weights differently.  Describing a learned
codec loads its weights: the dialog (``app/qt_about.py``) calls :func:`describe_html` in a worker.
"""
from __future__ import annotations

import html
from typing import Any

from lic_core.codecs import get_codec
from lic_core.weights import weights_provenance


def describe_html(codec_name: str) -> str:
    """HTML for the card: provenance in words, the ``describe()`` fields, measured points."""
    try:
        c = get_codec(codec_name)
        info: dict[str, Any] = dict(c.describe())
        ok, why = c.available()
    except Exception as exc:  # a codec that cannot be built is described in one line
        return cannot_describe_html(codec_name, str(exc))
    parts = [f"<h3>{html.escape(str(info.get('label') or info.get('name') or codec_name))}</h3>"]
    fam = info.get("family", c.family)
    if fam == "learned":
        prov = weights_provenance(info)
        color = "#2a7" if prov.status == "trained" else "#c60"
        parts.append(f"<p style='color:{color}'><b>{html.escape(prov.words)}</b></p>")
        if ok:
            parts.append(f"<p><b>{html.escape(prov.line)}</b></p>")
    else:
        parts.append("<p>Classical codec (standard library through Pillow): "
                     "no learned weights.</p>")
    if not ok:
        parts.append(f"<p style='color:#d33'>Unavailable here: {html.escape(why)}</p>")
    card = info.pop("model_card", None)
    evaluation = info.pop("eval", None)
    rows = "".join(f"<tr><td><b>{html.escape(str(k))}</b></td>"
                   f"<td>{html.escape(readable_value(v))}</td></tr>"
                   for k, v in info.items() if k not in ("label",))
    parts.append(f"<table cellspacing=4>{rows}</table>")
    parts.append(eval_table_html(evaluation))
    if card:
        parts.append("<h4>Model card</h4><pre style='white-space:pre-wrap'>"
                     f"{html.escape(str(card))}</pre>")
    return "".join(parts)


def cannot_describe_html(codec_name: str, message: str) -> str:
    """The card when describing failed (one line, no traceback)."""
    return f"<h3>{html.escape(codec_name)}</h3><p>cannot describe: {html.escape(message)}</p>"


def placeholder_html(codec_name: str) -> str:
    """What the dialog shows while the worker reads the card."""
    return f"<h3>{html.escape(codec_name)}</h3><p>Reading the model card…</p>"


def readable_value(value: Any, depth: int = 0) -> str:
    """A card value as words: numbers rounded, dicts as ``key: value`` pairs, no Python repr."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, dict):
        if depth > 1:
            return "…"
        return "; ".join(f"{k}: {readable_value(v, depth + 1)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable_value(v, depth + 1) for v in value)
    return str(value)


def eval_table_html(evaluation: Any) -> str:
    """The card's measured points as a small table ("" when the card has none)."""
    if not isinstance(evaluation, dict) or not evaluation.get("points"):
        return ""
    cols = [("u", "slider u", "{:.2f}"), ("bpp", "bpp", "{:.3f}"), ("psnr", "PSNR dB", "{:.2f}"),
            ("ms_ssim", "MS-SSIM", "{:.4f}")]
    head = "".join(f"<th>{t}</th>" for _, t, _ in cols)
    body = ""
    for p in evaluation["points"]:
        cells = "".join("<td align=right>"
                        + (f.format(p[k]) if isinstance(p.get(k), (int, float)) else "—")
                        + "</td>" for k, _, f in cols)
        body += f"<tr>{cells}</tr>"
    where = html.escape(str(evaluation.get("folder", "")).rstrip("/").split("/")[-1] or "eval")
    n = evaluation.get("images")
    title = f"Measured on {where}" + (f" ({n} images)" if n else "")
    return f"<h4>{title}</h4><table cellspacing=2 cellpadding=2><tr>{head}</tr>{body}</table>"
