"""Make small CompressAI checkpoints the way users' are made (tests of issues 32 and 25).

``make_checkpoint(arch, path, how)`` builds CompressAI's own class at a tiny width, trains it a
few steps on a fixed synthetic batch (so the weights and entropy parameters are not the
initial ones), and saves it like ``examples/train.py`` (``how="train"``: a dict with
``state_dict`` and optimizer states, no ``update()``), like ``compressai.utils.update_model``
(``how="update"``: the bare state dict after ``update(force=True)``) or with DataParallel's
``module.`` prefixes (``how="dataparallel"``).  Needs compressai (installed by the README's test
command).
"""
from __future__ import annotations

from pathlib import Path

import torch

#: arch → (compressai class name, constructor kwargs at a tiny width)
TINY = {
    "bmshj2018-factorized": ("FactorizedPrior", dict(N=16, M=24)),
    "bmshj2018-factorized-relu": ("FactorizedPriorReLU", dict(N=16, M=24)),
    "bmshj2018-hyperprior": ("ScaleHyperprior", dict(N=16, M=24)),
    "mbt2018-mean": ("MeanScaleHyperprior", dict(N=16, M=24)),
    "mbt2018": ("JointAutoregressiveHierarchicalPriors", dict(N=16, M=24)),
    "cheng2020-anchor": ("Cheng2020Anchor", dict(N=16)),
    "cheng2020-attn": ("Cheng2020Attention", dict(N=16)),
    "elic2022-official": ("Elic2022Official", dict(N=16, M=160)),
    "elic2022-chandelier": ("Elic2022Chandelier", dict(N=16, M=160)),
}


def compressai_model(arch: str, seed: int = 0):
    import compressai.models as cm

    cls, kw = TINY[arch]
    torch.manual_seed(seed)
    return getattr(cm, cls)(**kw)


def smooth_image(h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    """A 1×3×h×w picture with structure at several scales (not noise: it compresses)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([0.5 + 0.4 * torch.sin(6 * xx + 3 * yy), 0.5 + 0.3 * torch.cos(9 * yy),
                        0.4 + 0.3 * xx * yy])
    blobs = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g),
                                            size=(h, w), mode="bilinear", align_corners=False)
    return (0.7 * base[None] + 0.3 * blobs).clamp(0, 1)


def train_a_little(net, steps: int = 3, seed: int = 0) -> None:
    """A few Adam steps of λ·255²·MSE + bpp (+ aux loss) so nothing is at its initial value."""
    from compressai.losses import RateDistortionLoss

    torch.manual_seed(seed)
    x = torch.cat([smooth_image(64, 64, seed + k) for k in range(2)])
    main = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in net.named_parameters() if n.endswith(".quantiles")]
    opt, aopt = torch.optim.Adam(main, 1e-3), torch.optim.Adam(aux, 1e-2)
    crit = RateDistortionLoss(lmbda=0.01)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        aopt.zero_grad()
        crit(net(x), x)["loss"].backward()
        opt.step()
        net.aux_loss().backward()
        aopt.step()
    net.eval()


def make_checkpoint(arch: str, path: Path, how: str = "train", seed: int = 0, steps: int = 3):
    """Save a tiny trained CompressAI ``arch`` at ``path`` (see the module docstring); returns
    the CompressAI model (eval mode, ``update(force=True)`` called) for reference coding."""
    net = compressai_model(arch, seed)
    train_a_little(net, steps, seed)
    path = Path(path)
    if how == "train":
        opt = torch.optim.Adam(net.parameters(), 1e-4)
        torch.save({"epoch": 3, "state_dict": net.state_dict(), "loss": 1.0,
                    "optimizer": opt.state_dict(), "aux_optimizer": opt.state_dict(),
                    "lr_scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(opt).state_dict()},
                   path)
        net.update(force=True)
    elif how == "update":
        net.update(force=True)
        torch.save(net.state_dict(), path)
    elif how == "dataparallel":
        net.update(force=True)
        torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    else:
        raise ValueError(how)
    return net.eval()


def compressai_picture(net, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """CompressAI's own eval pipeline on 1×3×H×W: centred zero padding to 64, compress,
    decompress, crop, 8-bit; returns (uint8 H×W×3 tensor, total string bytes)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    H, W = (h + 63) // 64 * 64, (w + 63) // 64 * 64
    left, top = (W - w) // 2, (H - h) // 2
    pad = (left, W - w - left, top, H - h - top)
    xp = F.pad(x, pad, mode="constant", value=0)
    with torch.no_grad():
        enc = net.compress(xp)
        dec = net.decompress(enc["strings"], enc["shape"])
    xh = F.pad(dec["x_hat"], tuple(-p for p in pad))
    nbytes = _nbytes(enc["strings"])
    pic = (xh[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    return pic, nbytes


def _nbytes(strings) -> int:
    """Total bytes of CompressAI's (nested) string lists."""
    if isinstance(strings, (bytes, bytearray)):
        return len(strings)
    return sum(_nbytes(s) for s in strings)
