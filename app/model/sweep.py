"""RD-sweep planning (Qt-free): which knob values a sweep of a codec encodes.

A sweep (Encode → Sweep pane A's codec, and the dataset curves of ``app.model.dataset``) encodes
one codec at ``points`` values of its rate knob spread over 10 %…95 % of its range — the ends
are left out, where a learned codec's slider or a classical quality says little — each value
once; a model that steps through checkpoints (an added CompressAI model: ``integer_rate``) takes
every checkpoint once when there are no more of them than points.
"""
from __future__ import annotations

from lic_core.codecs import get_codec

from .encoding import PaneSettings

#: the share of the knob's range a sweep spans: [first, first + span]
SWEEP_FIRST, SWEEP_SPAN = 0.1, 0.85


def plan_rates(lo: float, hi: float, points: int = 6, integer: bool = False) -> list[float]:
    """``points`` knob values over ``[lo, hi]`` (see the module docstring), in increasing order,
    each once: whole numbers for an ``integer`` knob, else rounded to 4 decimals."""
    lo, hi = float(lo), float(hi)
    if integer and hi - lo + 1 <= points:
        return [float(v) for v in range(int(lo), int(hi) + 1)]  # every checkpoint once
    rates = []
    for k in range(points):
        r = lo + (hi - lo) * (SWEEP_FIRST + SWEEP_SPAN * k / max(1, points - 1))
        rates.append(float(round(r)) if integer else round(r, 4))
    return list(dict.fromkeys(rates))


def sweep_rates(codec_name: str, points: int = 6) -> list[float]:
    """The knob values a sweep of ``codec_name`` encodes (:func:`plan_rates` over its range)."""
    codec = get_codec(codec_name)
    lo, hi = codec.rate_range
    return plan_rates(lo, hi, points, bool(getattr(codec, "integer_rate", False)))


def sweep_settings(settings: PaneSettings, points: int = 6) -> list[PaneSettings]:
    """A pane's settings at each knob value of its codec's sweep (its quantizer, decoder, steps
    and seed kept; a target bpp dropped: a sweep sets the knob itself)."""
    out = []
    for r in sweep_rates(settings.codec, points):
        d = settings.to_dict()
        d.update(rate=r, target_bpp=None)
        out.append(PaneSettings.from_dict(d))
    return out
