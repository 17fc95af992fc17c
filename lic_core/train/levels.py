"""More rate levels for a trained codec: new λ, gain tables extended in log–log (issue 27 item 1).

A gain-unit codec (Cui et al., CVPR 2021; docs/methods.md §5.1) covers the rates between its
lowest and highest λ: the slider u ∈ [0, 1] walks the levels, so widening the slider's range means
more levels. Training them from scratch would throw away the campaign; instead the tables of a
trained checkpoint are extended and training continues with the new λ list.

How the new rows are initialised, and why: a level's gain scales the latent before rounding, so
it acts as an inverse quantizer step. For a rate–distortion optimum at high rate the step size
follows ``Δ ∝ λ^(−1/2)`` (the distortion term's slope), i.e. ``log g`` is affine in ``log λ``.
The trained G of lic-lgem-cpu is close to that: the per-channel affine fit leaves 0.03 (rms, in
``log g``) against 0.18 between adjacent levels, and extrapolating level 5 from levels 3–4 misses
by 0.07. G' and the hyper tables fit worse (leave-one-out misses of 0.25, 0.07 and 0.89 against
steps of 0.27, 0.03 and 0.34), so their new rows are only a start that training corrects. Each
channel's ``log |g|`` is interpolated, or extrapolated from the two nearest trained levels,
linearly in ``log λ``. A λ already in the old list keeps its row
exactly, so the old levels start where they were. All four tables (G, G', H, H') are extended the
same way; so is the EMA's copy, which validation and export use.

The optimizer's moments of the gain tables no longer fit their shape: the continued run starts
with a fresh optimizer (``lic train codec --init <out> --continue-schedule``, which re-warms it).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..errors import LicError

__all__ = ["GAIN_KEYS", "extend_table", "extend_state", "extend_checkpoint", "main"]

#: the state-dict keys of the four gain tables (:class:`lic_core.rate.gain.GainUnits`)
GAIN_KEYS = ("gains.gain.weight", "gains.inv_gain.weight", "gains.hyper_gain.weight",
             "gains.inv_hyper_gain.weight")


def _check(lams: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in lams]
    if len(out) < 2 or any(not (v > 0) for v in out) or any(b <= a for a, b in zip(out, out[1:])):
        raise LicError(f"{what} λ must be ≥ 2 positive values in increasing order, got {out}")
    return out


def extend_table(table: torch.Tensor, old: Sequence[float], new: Sequence[float]) -> torch.Tensor:
    """``len(new) × C`` gains from a trained ``len(old) × C`` table (see the module docstring).

    Rows whose λ is in ``old`` are copied bit for bit; the others get ``exp`` of the affine
    interpolation (extrapolation beyond the ends) of ``log |g|`` over ``log λ`` through the two
    nearest old levels."""
    old, new = _check(old, "old"), _check(new, "new")
    if table.shape[0] != len(old):
        raise LicError(f"a gain table has {table.shape[0]} levels, the old λ list {len(old)}")
    logg = table.detach().abs().double().clamp_min(1e-12).log()
    x = [math.log(v) for v in old]
    rows = []
    for lam in new:
        hit = [i for i, v in enumerate(old) if math.isclose(v, lam, rel_tol=1e-9)]
        if hit:
            rows.append(table[hit[0]].detach().clone())
            continue
        t = math.log(lam)
        j = min(max(sum(1 for v in x if v < t), 1), len(x) - 1)  # segment [j-1, j], ends extended
        w = (t - x[j - 1]) / (x[j] - x[j - 1])
        rows.append(((1.0 - w) * logg[j - 1] + w * logg[j]).exp().to(table.dtype))
    return torch.stack(rows)


def extend_state(state: dict, old: Sequence[float], new: Sequence[float]) -> dict:
    """A copy of a state dict with its four gain tables extended (other tensors shared)."""
    out = dict(state)
    found = [k for k in GAIN_KEYS if k in state]
    if len(found) != len(GAIN_KEYS):
        raise LicError(f"not a gain-unit codec state: missing {sorted(set(GAIN_KEYS) - set(found))}")
    for k in GAIN_KEYS:
        out[k] = extend_table(state[k], old, new)
    return out


def extend_checkpoint(ck: dict, new: Sequence[float]) -> dict:
    """A training checkpoint (``lic train codec``) with ``new`` λ: model and EMA gain tables
    extended, ``config.lambdas`` and ``train.lambdas`` replaced, the optimizers dropped (their
    moments no longer fit) — an ``--init`` for the continued run."""
    cfg = dict(ck.get("config") or {})
    # the tables have one row per *model* level (config.lambdas); a run's train.lambdas may differ
    old = cfg.get("lambdas") or (ck.get("train") or {}).get("lambdas")
    if not old:
        raise LicError("the checkpoint records no λ list")
    new = _check(new, "new")
    out = {k: v for k, v in ck.items() if k not in ("optimizer", "aux_optimizer", "_path")}
    out["model"] = extend_state(ck["model"], old, new)
    if isinstance(ck.get("ema"), dict) and "shadow" in ck["ema"]:
        out["ema"] = {**ck["ema"], "shadow": extend_state(ck["ema"]["shadow"], old, new)}
    cfg["lambdas"] = tuple(new)
    out["config"] = cfg
    out["train"] = {**(ck.get("train") or {}), "lambdas": list(new)}
    out["levels_extended"] = {"from": list(map(float, old)), "to": list(new),
                              "step": int(ck.get("step", 0))}
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    import sys

    from ..fileio import write_bytes_atomic
    from .checkpoint import load_checkpoint

    ap = argparse.ArgumentParser(prog="python -m lic_core.train.levels",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a `lic train codec` checkpoint (.pt)")
    ap.add_argument("out", help="the extended checkpoint to write (an --init for the next run)")
    ap.add_argument("--lambdas", type=float, nargs="+", required=True,
                    help="the new λ list, increasing (old values keep their rows)")
    ap.add_argument("--force", action="store_true", help="overwrite OUT")
    args = ap.parse_args(argv)
    try:
        out = Path(args.out)
        if out.exists() and not args.force:
            raise LicError(f"{out} exists; pass --force to overwrite it")
        ck = extend_checkpoint(load_checkpoint(args.checkpoint), args.lambdas)
        import io

        buf = io.BytesIO()
        torch.save(ck, buf)
        write_bytes_atomic(out, buf.getvalue(), args.force)  # refuses one made meanwhile
    except (LicError, OSError) as exc:
        print(f"levels: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: λ {ck['levels_extended']['from']} → {ck['levels_extended']['to']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
