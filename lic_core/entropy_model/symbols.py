"""What a quantizer hands the entropy coder: symbol models as plain data (docs/methods.md §6.2–6.3).

A quantizer chooses integer symbols and knows under which pmf each one is coded; the entropy
coder (:mod:`lic_core.entropy_coder.symbols`) turns (model, symbols) pairs into bits.  The two
meet only through these descriptions, so quantizers never import a coding library and the coder
never knows about trellises or dead zones.

A quantizer describes the coding of one (group, pass) block as a *symbol plan*: a generator that
yields ``(model, symbols)`` chunks in bitstream order and receives back the symbols as coded
(encoding: the clamped symbols it yielded; decoding: ``symbols`` is None and it receives the
decoded ones).  Sequential codes (TCQ: the model of step t depends on the states reached by the
symbols of step t−1) are plans with many chunks; a scalar quantizer's plan is one chunk.  The
plan *returns* ``(indices, n_clamped)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generator, Optional, Union

import numpy as np
import torch


@dataclass(frozen=True)
class QuantizedGaussianModel:
    """Zero-mean discretized Gaussians over the integers ``[−bound, bound]``, one std per symbol.

    ``std`` (float64) is the *table* value of every symbol's scale index, never a raw network σ
    (§6.4).  Layout: one constriction ``QuantizedGaussian(−bound, bound)`` call over all symbols.
    """

    std: np.ndarray
    bound: int


@dataclass(frozen=True)
class CategoricalModel:
    """One pmf row per symbol (``n×W`` float64); value ``v`` is coded as table entry ``v + offset``.

    Layout: one constriction ``Categorical(perfect=False)`` call over the rows.
    """

    rows: np.ndarray
    offset: int


SymbolModel = Union[QuantizedGaussianModel, CategoricalModel]
#: ``(model, symbols or None)`` chunks out, coded symbols in, ``(indices, n_clamped)`` at the end
SymbolPlan = Generator[tuple[SymbolModel, Optional[np.ndarray]], np.ndarray,
                       tuple[torch.Tensor, int]]
