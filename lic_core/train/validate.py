"""Validation of a learned codec on full images (Kodak) at several slider points.

Preferred path: **real entropy coding** through the learned codec
(:func:`evaluate_model`: one dict per u with at least ``bpp`` and ``psnr``), which measures
actual bitstream sizes. When the codec refuses the model the estimate ``Σ −log2 p / #pixels`` from the model's eval-mode
likelihoods is used instead; the result says which (``mode`` = ``"coded"`` or ``"estimated"``) so
logs and model cards never mix the two silently (docs/methods.md §11 item 5: the two agree within
~1 % once the tables are fresh).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .data import KodakEval

#: the default slider grid of the model card (≥ 6 points, docs/methods.md §11.3).
CARD_U_VALUES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def refresh_tables(model: nn.Module) -> int:
    """Rebuild the factorized prior's coding tables (after training / loading new weights).

    Calls ``model.update_tables()`` when the model defines it, else ``update_tables()`` on every
    sub-module that has one. Returns the number of modules refreshed.
    """
    fn = getattr(model, "update_tables", None)
    if callable(fn):
        fn()
        return 1
    n = 0
    for m in model.modules():
        if m is not model and callable(getattr(m, "update_tables", None)):
            m.update_tables()
            n += 1
    return n


def evaluate_model(model: nn.Module, images: list[np.ndarray], u_values: Sequence[float],
                   quantizer: str = "round") -> list[dict[str, float]]:
    """Real-entropy-coded bpp and PSNR of an in-memory model (training validation)."""
    from ..codecs.base import EncodeParams
    from ..codecs.learned import LearnedCodec
    from ..metrics.psnr import psnr

    codec = LearnedCodec(model.config.name, model=model)
    was_training = model.training
    model.eval()
    model.prior.update_tables()
    rows = []
    try:
        for u in u_values:
            bpps, psnrs = [], []
            for img in images:
                r = codec.encode(img, EncodeParams(rate=u, quantizer=quantizer))
                bpps.append(r.bpp)
                psnrs.append(psnr(img, r.reconstruction))
            rows.append({"u": u, "bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))})
    finally:
        model.train(was_training)
    return rows


def _coded_with_msssim(model: nn.Module, images: List[np.ndarray],
                       u_values: Sequence[float]) -> List[dict]:
    """Real bitstreams through :class:`lic_core.codecs.learned.LearnedCodec` (bpp from the byte
    count) with PSNR and MS-SSIM of the decoder's reconstruction."""
    from ..codecs.base import EncodeParams
    from ..codecs.learned import LearnedCodec
    from ..metrics.msssim import ms_ssim
    from ..metrics.psnr import psnr

    refresh_tables(model)
    codec = LearnedCodec(getattr(model.config, "name", "model"), model=model)
    rows = []
    for u in u_values:
        b, p, m, nm = 0.0, 0.0, 0.0, 0
        for img in images:
            r = codec.encode(img, EncodeParams(rate=float(u)))
            b += r.bpp
            p += psnr(img, r.reconstruction)
            if min(img.shape[:2]) >= 161:
                m += ms_ssim(img, r.reconstruction)
                nm += 1
        row = {"u": float(u), "bpp": b / len(images), "psnr": p / len(images)}
        if nm:
            row["ms_ssim"] = m / nm
        rows.append(row)
    return rows


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """1×3×H×W or 3×H×W in [0,1] → H×W×3 uint8 (round half up, as the codec boundary does)."""
    if x.dim() == 4:
        x = x[0]
    return (x.clamp(0, 1) * 255.0 + 0.5).floor().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def estimate_model(model: nn.Module, dataset: KodakEval, u_values: Sequence[float],
                   device: Union[str, torch.device] = "cpu",
                   with_msssim: bool = True) -> List[dict]:
    """Mean estimated bpp / PSNR (8-bit) / MS-SSIM per u, from the eval-mode likelihoods."""
    from ..metrics.msssim import ms_ssim
    from ..metrics.psnr import psnr

    was_training = model.training
    model.eval()
    acc = [{"bpp": 0.0, "psnr": 0.0, "ms_ssim": 0.0, "n_ms": 0} for _ in u_values]
    try:
        for i in range(len(dataset)):
            item = dataset[i]
            h, w = item["size"]
            x = item["x"].unsqueeze(0).to(device)
            ref = _to_uint8(item["x"][:, :h, :w])
            for k, u in enumerate(u_values):
                out = model(x, float(u))
                bits = sum(-torch.log2(lk.float()).sum() for lk in out["likelihoods"].values())
                rec = _to_uint8(out["x_hat"][..., :h, :w].float())
                acc[k]["bpp"] += float(bits) / (h * w)
                acc[k]["psnr"] += psnr(ref, rec)
                if with_msssim and min(h, w) >= 161:  # MS-SSIM needs 5 scales of an 11-px window
                    acc[k]["ms_ssim"] += ms_ssim(ref, rec)
                    acc[k]["n_ms"] += 1
    finally:
        model.train(was_training)
    n = len(dataset)
    res = []
    for u, a in zip(u_values, acc):
        r = {"u": float(u), "bpp": a["bpp"] / n, "psnr": a["psnr"] / n}
        if a["n_ms"]:
            r["ms_ssim"] = a["ms_ssim"] / a["n_ms"]
        res.append(r)
    return res


def evaluate(model: nn.Module, val_dir: Union[str, Path], u_values: Sequence[float] = CARD_U_VALUES,
             limit: Optional[int] = None, device: Union[str, torch.device] = "cpu",
             prefer_coded: bool = True, with_msssim: bool = True) -> dict:
    """Evaluate ``model`` on the images of ``val_dir`` (first ``limit``) at each slider value.

    Returns ``{"mode": "coded"|"estimated", "images": n, "points": [{"u", "bpp", "psnr",
    ["ms_ssim"]}, ...], "note": str}``.
    """
    ds = KodakEval(val_dir, limit=limit)
    note = ""
    if prefer_coded:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if with_msssim:  # the card needs MS-SSIM: code each image, score the decode
                    pts = _coded_with_msssim(model, list(ds.arrays()), u_values)
                    how = "LearnedCodec.encode, reconstructions = decoder output"
                else:
                    pts = [{**{k: float(v) for k, v in dict(p).items()
                               if isinstance(v, (int, float))}, "u": float(u)}
                           for u, p in zip(u_values, evaluate_model(model, list(ds.arrays()),
                                                                    list(u_values)))]
                    how = "lic_core.train.validate.evaluate_model"
            return {"mode": "coded", "images": len(ds), "points": pts,
                    "note": f"real entropy coding ({how})"}
        except Exception as exc:  # a codec that refuses this model: fall back, say why
            note = f"coded evaluation unavailable ({type(exc).__name__}: {exc}); "
        finally:
            model.train(was_training)
    pts = estimate_model(model, ds, u_values, device=device, with_msssim=with_msssim)
    return {"mode": "estimated", "images": len(ds), "points": pts,
            "note": note + "bpp estimated from likelihoods (Σ −log2 p / pixels)"}


def format_points(res: dict) -> str:
    """One line per evaluation: ``[coded] u=0.00 0.152 bpp 27.41 dB | ...``."""
    parts = []
    for p in res["points"]:
        s = f"u={p['u']:.2f} {p['bpp']:.4f} bpp {p['psnr']:.2f} dB"
        if "ms_ssim" in p and not math.isnan(p["ms_ssim"]):
            s += f" {p['ms_ssim']:.4f}"
        parts.append(s)
    return f"[{res['mode']}, {res['images']} img] " + " | ".join(parts)
