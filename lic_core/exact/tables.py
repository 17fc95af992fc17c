"""The frozen coding-scale table on the exact path (docs/methods.md §6.4; docs/bitstream.md).

The 64 scales are exact float64 literals (:data:`lic_core.entropy_model.gaussian.SCALE_TABLE_64`,
which ``scale_table()`` returns everywhere): numpy's ``exp`` differs in its last bits between
machines, so the table is never recomputed.  σ·G → index is a comparison against them.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..entropy_model.gaussian import SCALE_BOUND, SCALE_TABLE_64

LEVELS = len(SCALE_TABLE_64)


def scale_table_tensor(device="cpu") -> torch.Tensor:
    return torch.tensor(SCALE_TABLE_64, dtype=torch.float64, device=device)


#: bits of a float64 below its exponent and top 4 mantissa bits: ``bits >> BUCKET_SHIFT`` orders
#: positive numbers by buckets at most 2^(1/16) wide — narrower than the table's ratio (≈ 1.13),
#: so no bucket holds two entries (checked when the lookup is built)
BUCKET_SHIFT = 48
_BUCKETS: dict = {}


def _bucket_lookup(device) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    """(first bucket, last bucket, entries below each bucket (int64), the entry in each bucket
    (float64; +inf where none)) over the buckets of the table's range, per device."""
    key = str(device)
    hit = _BUCKETS.get(key)
    if hit is None:
        table = scale_table_tensor()
        tb = table.view(torch.int64) >> BUCKET_SHIFT
        lo, hi = int(tb[0]), int(tb[-1])
        if bool((tb[1:] <= tb[:-1]).any()):
            raise AssertionError("two scale-table entries share a bucket")
        below = torch.searchsorted(tb - lo, torch.arange(hi - lo + 1), right=False)
        entry = torch.full((hi - lo + 1,), float("inf"), dtype=torch.float64)
        entry[tb - lo] = table
        hit = _BUCKETS[key] = (lo, hi, below.to(device), entry.to(device))
    return hit


def scale_index(sigma_gained: torch.Tensor) -> torch.Tensor:
    """Index of the smallest table entry ≥ σ·G (comparisons only), clamped to 63, int64.

    The exact path's index, which files are coded with; the float path's
    :func:`lic_core.entropy_model.gaussian.scale_index` (float32 table) is a separate function.

    ``searchsorted(table, σ·G)`` (the number of entries < σ·G) without a binary search: the
    top bits of σ·G name its bucket (:data:`BUCKET_SHIFT`; values below the table's range fall in
    its first bucket, above it in its last), the entries of earlier buckets are all below σ·G,
    later ones all above, and the bucket holds at most one entry, compared with σ·G exactly —
    the same index for every float64 (NaN: 63, as the search gives), 3–4× faster.
    """
    if sigma_gained.dtype != torch.float64:
        raise TypeError("scale_index of the exact path needs float64 σ·G")
    lo, hi, below, entry = _bucket_lookup(sigma_gained.device)
    x = sigma_gained.reshape(-1)
    b = (x.view(torch.int64) >> BUCKET_SHIFT).clamp_(lo, hi).sub_(lo)
    idx = below.index_select(0, b)
    idx += entry.index_select(0, b) < x
    idx = idx.view(sigma_gained.shape).clamp_max_(LEVELS - 1)
    return idx.masked_fill_(torch.isnan(sigma_gained), LEVELS - 1)


def table_std(index: torch.Tensor) -> torch.Tensor:
    """The coding standard deviation (float64) of each index, on index's device — the one home
    of index → std (the scalar quantizers import it)."""
    return scale_table_tensor(index.device)[index]


def sigma_index(sigma: torch.Tensor,
                gain: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale index, σ·G): σ bounded below at 0.11, one multiplication, a comparison."""
    sigma = torch.clamp_min(sigma, SCALE_BOUND)
    sg = sigma if gain is None else sigma * gain
    return scale_index(sg), sg
