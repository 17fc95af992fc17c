"""What a pane's controls offer for a codec, and the slider ↔ rate mapping (Qt-free).

``app/qt_pane_controls.py`` draws these: the codec chooser's entries (:func:`codec_choices`:
label, tooltip, enabled, the PREVIEW badge and provenance line), and for the chosen codec its
knobs (:class:`CodecKnobs`: the rate knob's range and words, quantizers, decoders).  The rate
slider is an integer widget of :data:`SLIDER_STEPS` steps over the codec's rate range;
:meth:`CodecKnobs.to_slider` and :meth:`CodecKnobs.from_slider` map between the two (an added
CompressAI model's knob steps through whole checkpoints).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from lic_core.codecs import get_codec

from . import services
from .provenance import codec_provenance

#: positions of the rate slider (0 … SLIDER_STEPS)
SLIDER_STEPS = 1000
#: the codec chooser's tooltip when the chosen codec has no provenance line
CODEC_TIP = "Codec for this pane (unavailable codecs are greyed out; hover them for the reason)"


@dataclass(frozen=True)
class CodecKnobs:
    """The knobs a codec offers a pane.

    Attributes
    ----------
    name, family : the codec.
    lo, hi : its rate range; ``integer``: the knob takes whole values (checkpoints).
    rate_label : the codec's name for its knob (``rate u``, ``quality``…).
    quantizers, decoders : what the pane's choosers list.
    """

    name: str
    family: str
    lo: float
    hi: float
    integer: bool
    rate_label: str
    quantizers: tuple[str, ...]
    decoders: tuple[str, ...]

    @property
    def slider_u(self) -> bool:
        """A learned codec's continuous slider u (gain units); added CompressAI models are
        learned but step through checkpoints."""
        return self.family == "learned" and not self.integer

    @property
    def label(self) -> str:
        """The rate row's short label (three panes side by side fit 1366 px)."""
        return "Rate u" if self.slider_u else self.rate_label.split(" (")[0].capitalize()

    @property
    def tooltip(self) -> str:
        return ("Rate slider u ∈ [0, 1]: one model, continuous rate (gain units)" if self.slider_u
                else f"{self.rate_label} {self.lo:g}…{self.hi:g} (higher = more bits)")

    @property
    def decimals(self) -> int:
        """Decimals of the rate spin box."""
        return 0 if self.integer else 3

    @property
    def spin_step(self) -> float:
        """The rate spin box's single step: one checkpoint, else 1 % of the range."""
        return 1.0 if self.integer else (self.hi - self.lo) / 100

    @property
    def decoder_choice(self) -> bool:
        """Whether the pane shows a decoder row (more than one decoder to choose from)."""
        return len(self.decoders) > 1

    def to_slider(self, rate: float) -> int:
        """The slider position of ``rate`` (0 for a codec with a one-value range)."""
        lo, hi = self.lo, self.hi
        return int(round((rate - lo) / (hi - lo) * SLIDER_STEPS)) if hi > lo else 0

    def from_slider(self, position: int) -> float:
        """The rate at slider ``position``: whole for an integer knob, else to 4 decimals."""
        r = self.lo + (self.hi - self.lo) * position / SLIDER_STEPS
        if self.integer:
            r = float(round(r))
        return round(r, 4)


def codec_knobs(name: str) -> Optional[CodecKnobs]:
    """The knobs of codec ``name``, or None when it cannot even be built."""
    try:
        c = get_codec(name)
    except Exception:  # noqa: BLE001 - a broken provider leaves the controls as they are
        return None
    lo, hi = c.rate_range
    return CodecKnobs(name=name, family=c.family, lo=lo, hi=hi,
                      integer=bool(getattr(c, "integer_rate", False)), rate_label=c.rate_label,
                      quantizers=tuple(c.quantizers), decoders=tuple(c.decoders))


@dataclass(frozen=True)
class CodecChoice:
    """One entry of the codec chooser.

    Attributes
    ----------
    name : the codec; ``label`` what the chooser shows (``  — PREVIEW``, ``  (learned)``).
    tooltip : why it is unavailable, else its provenance line, else its rate knob.
    enabled : it can run here.
    preview, line : its weights are a preview; their one-line provenance ("" without weights).
    """

    name: str
    label: str
    tooltip: str
    enabled: bool
    preview: bool
    line: str


def codec_choice(name: str) -> CodecChoice:
    """The chooser entry of codec ``name`` (:func:`codec_provenance` for learned weights)."""
    ok, why = services.codec_availability(name)
    knobs = codec_knobs(name)
    family = knobs.family if knobs is not None else ""
    preview, line = codec_provenance(name) if ok else (False, "")
    # "(learned)" marks the models; a classical codec's name says enough (and fits three panes
    # at 1366 px: "webp  (classical" was cut)
    label = name + ("  — PREVIEW" if preview else "") + (
        f"  ({family})" if family and family != "classical" else "")
    if not ok:
        tip = why
    elif line:
        tip = f"{name}: {line}"
    else:
        tip = f"{label}: rate knob '{knobs.rate_label if knobs is not None else ''}'"
    return CodecChoice(name=name, label=label, tooltip=tip, enabled=ok, preview=preview,
                       line=line)


def codec_choices() -> list[CodecChoice]:
    """Every registered codec's chooser entry, learned codecs first."""
    return [codec_choice(n) for n in services.codec_names()]


def provenance_text(preview: bool, line: str) -> str:
    """The provenance row's text beside the PREVIEW badge: the line without the word the
    badge already says."""
    return line[len("PREVIEW · "):] if preview and line.startswith("PREVIEW · ") else line
