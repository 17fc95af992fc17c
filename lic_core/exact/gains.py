"""Gains of a slider code on the exact path (Cui et al. 2021, Eq. 8; docs/methods.md §5.1).

From the u16 slider code: s, rem = divmod(code·(n−1), 65535), l = rem/65535,
G = exp((1−l)·ln|G_s| + l·ln|G_{s+1}|) with the deterministic exp/ln of :mod:`.dmath`, rounded
once to float32 (the levels themselves, l ∈ {0, 1}, are returned exactly).  Every exact network
that takes gains (LGEM's entropy parameters and g_s, HiFiC's hyperprior) reads them from here.
"""
from __future__ import annotations

from typing import Any

import torch

from ..rate.gain import SLIDER_SCALE, GainTable
from . import dmath


def exact_gain(table: GainTable, code: int) -> torch.Tensor:
    """Gains 1×C×1×1 (float64 holding float32 values) of a :class:`GainTable` at slider code."""
    w = table.weight.detach().to("cpu", torch.float64).abs()
    n = table.levels
    if n == 1:
        g = w[0]
    else:
        s, rem = divmod(int(code) * (n - 1), SLIDER_SCALE)
        if s >= n - 1:  # u = 1: level n−1 is the upper end of the last interval
            s, rem = n - 2, SLIDER_SCALE
        if rem == 0:
            g = w[s]
        elif rem == SLIDER_SCALE:
            g = w[s + 1]
        else:
            l = rem / SLIDER_SCALE  # one correctly rounded division (Python float = IEEE double)
            g = dmath.exp(dmath.log(w[s]) * (1.0 - l) + dmath.log(w[s + 1]) * l)
    g = g.to(torch.float32).to(torch.float64)  # one rounding to a float32 value (exact grid)
    return g[None, :, None, None]


def exact_gains(units: Any, code: int, device="cpu") -> dict[str, torch.Tensor]:
    """G, G', H, H' (1×C×1×1 float64) of a ``GainUnits`` module at u16 slider ``code``."""
    tables = {"G": units.gain, "G_inv": units.inv_gain, "H": units.hyper_gain,
              "H_inv": units.inv_hyper_gain}
    out = {k: exact_gain(t, code).to(device) for k, t in tables.items()}
    out["code"] = torch.tensor([int(code)])
    return out


def cached_exact_gains(cache: dict, units: Any, code: int, device="cpu") -> dict[str, torch.Tensor]:
    """:func:`exact_gains` through an engine's per-code ``cache`` (cleared past 32 codes: a slider
    drag must not grow it without bound). One ``get``: another thread may clear it meanwhile."""
    code = int(code)
    hit = cache.get(code)
    if hit is None:
        if len(cache) > 32:
            cache.clear()
        hit = cache[code] = exact_gains(units, code, device)
    return hit
