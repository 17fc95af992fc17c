"""Design TCQ rate tables on training photos (ECTCQ design; :mod:`lic_core.quantizer.tcq_designed`).

The classic entropy-constrained TCQ design alternates two steps on training data: quantize with
the trellis under the current code lengths, then refit the code to the indices it emitted
(Fischer & Wang 1992). Here the first code is the Gaussian midpoint-cell model of docs/methods.md
§4.4, the refit is the count-updated Gaussian of
:func:`~lic_core.quantizer.tcq_designed.build_designed`, and each pass runs the real inference
quantization (:func:`~lic_core.codecs.learned.quantized_latents`, the same steps ``compress()``
runs) on centre crops of the training photos at several slider points. Kodak is never used, so
measuring the tables on Kodak measures them on unseen photos.

    python -m lic_core.train.tcq_design --model lic-lgem-cpu [--every 2] [--crop 256]
        [--iterations 3] [--order 1] [--out FILE] [--install]

``--install`` writes ``<model>.tcq-tables.json`` beside the weights: the codec then codes TCQ
with them, and with the stream order they were designed for, by default, and names both in every
TCQ file's header (older files keep decoding).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..codecs.learned import quantized_latents
from ..errors import LicError
from ..fileio import write_bytes_atomic
from ..paths import shared_dir, weights_dir
from ..quantizer.tcq import (
    DEFAULT_C,
    DEFAULT_DELTA_U,
    STREAM_ORDERS,
    TcqQuantizer,
    TcqTables,
    to_streams,
)
from ..quantizer.tcq_designed import SUFFIX, build_designed, table_document
from .data import list_images, load_rgb, pil_to_tensor

DEFAULT_US = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
DEFAULT_M = 15
DEFAULT_W = 64


class _CountingTcq(TcqQuantizer):
    """The real trellis, with given tables, counting |k| per (scale index, quantizer)."""

    def __init__(self, tables: TcqTables, c: float, m_design: int, order: int = 0) -> None:
        super().__init__(delta_u=tables.delta_u, c=c, order=order)
        self._tables = tables
        self.m = m_design
        self.counts = np.zeros((64, 2, m_design + 2), dtype=np.int64)
        self.bits_total = 0.0  # code length of what was counted, under the tables in use

    def quantize(self, residual: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        k = super().quantize(residual, index)
        j = to_streams(self.states(k, index).cpu()).numpy() >> 1
        kk = to_streams(k.cpu()).numpy()
        sidx = to_streams(index.cpu()).numpy()
        mag = np.minimum(np.abs(kk), self.m + 1)
        flat = (sidx * 2 + j) * (self.m + 2) + mag
        self.counts += np.bincount(flat.ravel(), minlength=self.counts.size).reshape(
            self.counts.shape)
        tab = self._tables
        self.bits_total += float(tab.bits_np[sidx, j, kk + tab.k_max].sum())
        return k


def centre_crops(folders: Sequence[str], every: int, crop: int) -> list[torch.Tensor]:
    """Centre ``crop``² crops (1×3×crop×crop in [0, 1]) of every ``every``-th photo."""
    files = [f for d in folders for f in list_images(d)][::every]
    out = []
    for f in files:
        im = pil_to_tensor(load_rgb(f))
        h, w = im.shape[-2:]
        if min(h, w) < crop:
            continue
        y0, x0 = (h - crop) // 2, (w - crop) // 2
        out.append(im[None, :, y0:y0 + crop, x0:x0 + crop].contiguous())
    if not out:
        raise LicError(f"no photo of at least {crop}×{crop} in {', '.join(folders)}")
    return out


def design(model, crops: Sequence[torch.Tensor], us: Sequence[float] = DEFAULT_US,
           c: float = DEFAULT_C, delta_u: float = DEFAULT_DELTA_U, iterations: int = 2,
           m_design: int = DEFAULT_M, prior_weight: int = DEFAULT_W,
           log: Callable[[str], None] = print, order: int = 0,
           init: Optional[TcqTables] = None) -> tuple[list, list[dict]]:
    """(counts of the last pass, one record per pass: bits per pixel under its tables).

    The first pass codes with ``init`` when given — a release starts from the tables designed
    on the weights it replaces, which fit the new ones far better than §4.4's Gaussian model,
    so fewer passes converge — else with the Gaussian tables."""
    from ..quantizer.tcq import tcq_tables

    tables = init if init is not None else tcq_tables(delta_u)
    first = "gaussian" if init is None else "initial"
    history: list[dict] = []
    counts: list = []
    pixels = sum(int(x.shape[-1] * x.shape[-2]) for x in crops) * len(us)
    for it in range(iterations):
        q = _CountingTcq(tables, c, m_design, order)
        t0 = time.time()
        for u in us:
            for x in crops:
                quantized_latents(model, x, float(u), q)
        counts = q.counts.tolist()
        new = build_designed(delta_u, m_design, prior_weight, counts)
        # what the refit saves shows in the next pass's y_bpp (under the tables it builds)
        rec = {"pass": it, "tables": first if it == 0 else f"designed (pass {it - 1})",
               "y_bpp": round(q.bits_total / pixels, 5), "seconds": round(time.time() - t0, 1)}
        history.append(rec)
        log(f"pass {it}: y {rec['y_bpp']:.4f} bpp under the {rec['tables']} tables "
            f"({len(crops)} crops × {len(us)} slider points, {rec['seconds']} s)")
        tables = new
    return counts, history


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lic_core.train.tcq_design", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lic-lgem-cpu")
    shared = shared_dir()
    ap.add_argument("--data", default=":".join(str(shared / "data" / d)
                                               for d in ("train", "train_extra")) if shared else None,
                    required=shared is None,
                    help="training photos, folders joined by ':' (default ../shared's train + "
                         "train_extra)")
    ap.add_argument("--every", type=int, default=2, help="use every N-th photo (default 2)")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--us", default=",".join(str(u) for u in DEFAULT_US))
    ap.add_argument("--c", type=float, default=DEFAULT_C)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--order", type=int, default=1, choices=sorted(STREAM_ORDERS),
                    help="trellis stream order the tables are designed for and the codec then "
                         "uses (1: ascending scale, the default; 0: channels)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="table file (default: print where --install puts it)")
    ap.add_argument("--install", action="store_true",
                    help=f"write <weights dir>/<model>{SUFFIX} (replaces an older one)")
    a = ap.parse_args(argv)
    from ..models import load_model

    if a.out and Path(a.out).exists():  # before minutes of work, not after
        print(f"error: '{a.out}' already exists (choose another --out; it is never overwritten)")
        return 2
    torch.set_num_threads(max(1, a.threads))
    try:
        model = load_model(a.model)
        crops = centre_crops([d for d in a.data.split(":") if d], a.every, a.crop)
        us = [float(u) for u in a.us.split(",")]
        counts, history = design(model, crops, us, a.c, iterations=a.iterations, order=a.order)
        whash = model.weights_meta["weights_hash_bytes"].hex()
        doc = table_document(DEFAULT_DELTA_U, DEFAULT_M, DEFAULT_W, counts, {
            "base_model": a.model, "base_weights_hash": whash, "order": a.order,
            "design": {"photos": a.data, "every": a.every, "crops": len(crops), "crop": a.crop,
                       "us": us, "c": a.c, "iterations": a.iterations, "passes": history,
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}})
    except LicError as exc:
        print(f"error: {exc}")
        return 2
    data = (json.dumps(doc, indent=None, separators=(",", ":")) + "\n").encode()
    targets = [Path(a.out)] if a.out else []
    if a.install:
        targets.append(weights_dir() / f"{a.model}{SUFFIX}")
    for t in targets:
        try:  # --out never overwrites a file; --install replaces the shipped tables
            write_bytes_atomic(t, data, overwrite=a.install and t.name.endswith(SUFFIX) and
                               t.parent == weights_dir())
        except LicError as exc:
            print(f"error: {exc}")
            return 2
        print(f"wrote {t} (tables id {doc['id']:016x})")
    if not targets:
        print(json.dumps({k: v for k, v in doc.items() if k != "counts"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
