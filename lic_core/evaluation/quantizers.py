"""Quantizers compared on real bitstreams (issue "TCQ and fine-tuning on real weights").

One RD curve per (quantizer, decoder): every image is compressed at every slider point with the
codec's real ``encode`` (entropy-coded file, exact decoder), and the curve is the mean bpp and
mean PSNR over the images at each point. BD-rates (PSNR, pchip) are taken against plain rounding
with the base decoder, the codec's default, so a negative number is a saving over what
``lic compress`` does by default. ``benchmarks/quantizer_kodak.py`` and the campaign's
fine-tuning stages (the repository's ``campaign/finetune.py``) both measure through here.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..codecs import EncodeParams
from ..metrics import psnr
from .bdrate import BDRateError, bd_rate

__all__ = ["quantizer_curve", "bd_table", "quantizer_table_path", "quantizer_report",
           "merge_quantizer_table"]


def quantizer_curve(codec: Any, images: Sequence[np.ndarray], quantizer: str,
                    us: Sequence[float], quantizer_params: Optional[dict] = None,
                    progress: Optional[Callable[[str], None]] = None) -> dict[str, list[float]]:
    """Mean bpp, PSNR (dB) and encode seconds over ``images`` at each slider point ``us``."""
    pts: dict[str, list[float]] = {"u": [], "bpp": [], "psnr": [], "encode_s": []}
    for u in us:
        bpp, ps, te = [], [], []
        for img in images:
            t0 = time.perf_counter()
            r = codec.encode(img, EncodeParams(rate=float(u), quantizer=quantizer,
                                               quantizer_params=dict(quantizer_params or {})))
            te.append(time.perf_counter() - t0)
            bpp.append(r.bpp)
            ps.append(psnr(img, r.reconstruction))
        pts["u"].append(float(u))
        pts["bpp"].append(float(np.mean(bpp)))
        pts["psnr"].append(float(np.mean(ps)))
        pts["encode_s"].append(float(np.mean(te)))
        if progress is not None:
            progress(f"{quantizer} u={u:.2f}: {pts['bpp'][-1]:.4f} bpp "
                     f"{pts['psnr'][-1]:.2f} dB (encode {pts['encode_s'][-1]:.2f} s)")
    return pts


def bd_table(curves: dict[str, dict], reference: str) -> dict[str, dict[str, Any]]:
    """BD-rate (PSNR, %) of every curve against ``curves[reference]`` (+ mean encode seconds);
    ``None`` where the curves do not allow one (too few points, no overlap, not monotonic)."""
    ref = curves[reference]
    table: dict[str, dict[str, Any]] = {}
    for key, c in curves.items():
        try:
            bd: Optional[float] = float(bd_rate(ref["bpp"], ref["psnr"], c["bpp"], c["psnr"]))
        except BDRateError:
            bd = None
        table[key] = {"bd_rate_percent": bd, "mean_encode_s": float(np.mean(c["encode_s"]))}
    return table


def quantizer_table_path(codec_name: str, folder: Optional[Path] = None) -> Path:
    """``<weights dir>/<codec>.quantizers.json``: the measured quantizer curves of the shipped
    weights (written by ``benchmarks/quantizer_kodak.py --install-table`` and the fine-tuning
    stages' ``export --install``)."""
    from ..paths import weights_dir

    return (Path(folder) if folder else weights_dir()) / f"{codec_name}.quantizers.json"


def quantizer_report(codec_name: str, folder: Optional[Path] = None) -> dict[str, dict[str, Any]]:
    """Per quantizer of a learned codec, what was measured on its shipped weights, from file
    metadata only (cheap enough for a GUI): ``{"round": {"bd_before": 0.0, "bd_after": None,
    "finetuned": False, "stale": False, "images": 24}, ...}``. BD-rates (PSNR, %) are against
    rounding with the base decoder; ``finetuned`` says a decoder tuned for that quantizer on
    these very weights is in use, ``stale`` that one exists but was tuned on other weights;
    ``tcq`` also has ``rate_tables`` (``{"id", "crops", "order"}`` of the designed TCQ rate tables shipped
    for these weights, else None). Measurements of other weights are not reported."""
    import json

    from ..decoder.finetuned import finetuned_base_hash
    from ..paths import finetuned_path, weights_dir
    from ..weights import read_weights_hash

    wdir = Path(folder) if folder else weights_dir()
    wpath = wdir / f"{codec_name}.safetensors"
    if not wpath.is_file():
        return {}
    base = read_weights_hash(wpath)
    table: dict[str, Any] = {}
    tpath = quantizer_table_path(codec_name, wdir)
    if tpath.is_file():
        try:
            table = json.loads(tpath.read_text())
        except ValueError:
            table = {}
        if table.get("base_weights_hash") != base:
            table = {}
    bd = table.get("bd_vs_round_percent") or {}
    out: dict[str, dict[str, Any]] = {}
    for q in ("round", "deadzone", "rdoq", "tcq"):
        ft = finetuned_path(codec_name, q, wdir)
        tuned_on = finetuned_base_hash(ft) if ft.is_file() else None
        out[q] = {"bd_before": bd.get(f"{q}/before"), "bd_after": bd.get(f"{q}/after"),
                  "finetuned": ft.is_file() and tuned_on in (None, base),
                  "stale": ft.is_file() and tuned_on not in (None, base),
                  "images": len(table.get("images") or [])}
    from ..quantizer.tcq_designed import shipped_table_for

    try:
        doc = shipped_table_for(codec_name, base, wdir)
    except Exception:  # an unreadable table file: TCQ codes with the Gaussian tables
        doc = None
    out["tcq"]["rate_tables"] = None if doc is None else {
        "id": f"{doc['id']:016x}", "crops": (doc.get("design") or {}).get("crops"),
        "order": int(doc.get("order") or 0)}
    return out


def merge_quantizer_table(path: Path, base_hash: str, us: Sequence[float], images: list[str],
                          curves: dict[str, dict]) -> dict:
    """Merge measured curves into ``<codec>.quantizers.json`` (the studio's tooltips) and
    recompute its BD-rates against ``round/before``; curves of other base weights are dropped."""
    import datetime as dt
    import json

    from ..fileio import write_bytes_atomic

    table = json.loads(path.read_text()) if path.is_file() else {}
    if table.get("base_weights_hash") != base_hash or table.get("us") != list(us) \
            or table.get("images") != images:
        table = {"base_weights_hash": base_hash, "us": list(us), "images": images, "curves": {}}
    table["curves"].update(curves)
    if "round/before" in table["curves"]:
        table["bd_vs_round_percent"] = {k: v["bd_rate_percent"] for k, v in
                                        bd_table(table["curves"], "round/before").items()}
    table["updated"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_bytes_atomic(path, (json.dumps(table, indent=1, sort_keys=True) + "\n").encode(), True)
    return table
