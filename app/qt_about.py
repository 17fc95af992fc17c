"""The "About this model" card: provenance of a codec in plain words (``Codec.describe()``).

Describing a learned codec loads its weights, so the card is written in a worker: the dialog
opens at once with a placeholder and fills in when the worker reports back.
"""
from __future__ import annotations

import html
from typing import Any, Optional

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from lic_core.codecs import get_codec
from lic_core.weights import is_preview, provenance_line

from .qt_workers import QtWorkerPool

_PROVENANCE_WORDS = {
    "trained": "TRAINED — weights come from a real training run; numbers are meaningful.",
    "preview": "PREVIEW — a small or briefly trained model; it shows how the codec works, "
               "its rate–distortion numbers are NOT representative.",
}


def describe_html(codec_name: str) -> str:
    """HTML for the card (also used by tests: it must state the provenance in words)."""
    try:
        c = get_codec(codec_name)
        info: dict[str, Any] = dict(c.describe())
        ok, why = c.available()
    except Exception as exc:
        return f"<h3>{html.escape(codec_name)}</h3><p>cannot describe: {html.escape(str(exc))}</p>"
    parts = [f"<h3>{html.escape(str(info.get('label') or info.get('name') or codec_name))}</h3>"]
    fam = info.get("family", c.family)
    prov = str(info.get("provenance", "")).lower()
    if fam == "learned":
        # "preview" wins: a preview card may also say it was "trained briefly"
        key = "preview" if ("preview" in prov or is_preview(info)) else (
            "trained" if "trained" in prov else "")
        words = _PROVENANCE_WORDS.get(key, "Provenance not stated by the codec.")
        color = "#2a7" if key == "trained" else "#c60"
        parts.append(f"<p style='color:{color}'><b>{html.escape(words)}</b></p>")
        if ok:
            parts.append(f"<p><b>{html.escape(provenance_line(info))}</b></p>")
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


class QtAboutModelDialog(QDialog):
    """Non-blocking dialog showing :func:`describe_html`, computed in ``pool`` (a worker)."""

    def __init__(self, codec_name: str, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About this model — {codec_name}")
        self.resize(560, 480)
        self.browser = QTextBrowser()
        self.browser.setHtml(f"<h3>{html.escape(codec_name)}</h3><p>Reading the model card…</p>")
        #: True once the card is in (tests wait on it)
        self.ready = False
        self._pool = pool or QtWorkerPool(max_threads=1, parent=self)
        self._pool.submit(lambda name, sink: describe_html(name), codec_name, self._show,
                          self._failed)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)

    def _show(self, _name: str, text: str) -> None:
        self.browser.setHtml(text)
        self.ready = True

    def _failed(self, name: str, exc: BaseException) -> None:
        self._show(name, f"<h3>{html.escape(name)}</h3><p>cannot describe: "
                         f"{html.escape(str(exc))}</p>")
