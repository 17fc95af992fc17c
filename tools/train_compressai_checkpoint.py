"""Train a CompressAI model briefly on our training photos and save it the way users' checkpoints
are saved — the reference checkpoints of docs/compressai.md (benchmarks of issues 25 and 32).

    python tools/train_compressai_checkpoint.py ARCH OUT.pth.tar [--minutes M] [--steps K]
        [--lmbda L] [--quality Q] [--crop C] [--batch B] [--update]

CompressAI's own ``examples/train.py`` recipe (Adam 1e-4, aux Adam 1e-3 on the quantiles,
gradient clipping 1.0, λ·255²·MSE + bpp), batch 8 of random crops with horizontal flips from
``../shared/data/train`` + ``train_extra``, the zoo's width for ``--quality``.  The file is
``{"epoch", "state_dict", "loss", "optimizer", "aux_optimizer", "lr_scheduler"}`` without
``update()`` (as examples/train.py writes it); ``--update`` writes the bare state dict after
``update(force=True)`` (as ``compressai.utils.update_model`` does).  Needs compressai (the test
environment's; README).  Niced training on 2 threads; not for shipping: nothing here is a product.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _photos(folders: list[Path]) -> list[Path]:
    out = []
    for d in folders:
        out += [Path(p) for p in glob.glob(str(d / "*"))
                if p.lower().endswith((".png", ".jpg", ".jpeg"))]
    return sorted(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("arch")
    p.add_argument("out")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--lmbda", type=float, default=0.0067)
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--update", action="store_true")
    p.add_argument("--init", default=None,
                   help="start from this checkpoint's weights (another λ of the same model: a "
                        "second rate point costs a fraction of the first)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    a = p.parse_args(argv)
    from compressai.losses import RateDistortionLoss
    from compressai.zoo import image_models

    out = Path(a.out)
    if out.exists():
        print(f"error: {out} exists", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    files = _photos([Path(a.data) / "train", Path(a.data) / "train_extra"])
    if not files:
        print(f"error: no training photos under {a.data}", file=sys.stderr)
        return 2
    imgs = []
    for f in files:
        im = Image.open(f).convert("RGB")
        s = 512 / max(im.size)  # smaller photos: crops hold more structure per pixel
        if s < 1:
            im = im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)
        if min(im.size) >= a.crop:
            imgs.append(np.asarray(im))

    def batch() -> torch.Tensor:
        out = []
        for _ in range(a.batch):
            x = random.choice(imgs)
            h, w = x.shape[:2]
            i, j = random.randrange(h - a.crop + 1), random.randrange(w - a.crop + 1)
            c = x[i:i + a.crop, j:j + a.crop]
            if random.random() < 0.5:
                c = c[:, ::-1]
            out.append(torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1).float() / 255)
        return torch.stack(out)

    net = image_models[a.arch](quality=a.quality)
    if a.init:
        ck = torch.load(a.init, map_location="cpu", weights_only=True)
        net.load_state_dict(ck.get("state_dict", ck) if isinstance(ck, dict) else ck)
    main_p = [q for n, q in net.named_parameters() if not n.endswith(".quantiles")]
    aux_p = [q for n, q in net.named_parameters() if n.endswith(".quantiles")]
    opt, aux = torch.optim.Adam(main_p, 1e-4), torch.optim.Adam(aux_p, 1e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min")
    crit = RateDistortionLoss(lmbda=a.lmbda)
    t0, step, losses = time.time(), 0, []
    cpu0 = time.process_time()
    while time.time() - t0 < a.minutes * 60 and (not a.steps or step < a.steps):
        x = batch()
        opt.zero_grad()
        aux.zero_grad()
        o = crit(net(x), x)
        o["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        al = net.aux_loss()
        al.backward()
        aux.step()
        step += 1
        losses.append(float(o["loss"].detach()))
        if step % 200 == 0:
            print(f"step {step}: loss {np.mean(losses[-200:]):.4f} bpp "
                  f"{float(o['bpp_loss']):.3f} ({time.time() - t0:.0f} s)", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if a.update:
        net.update(force=True)
        torch.save(net.state_dict(), tmp)
    else:
        torch.save({"epoch": 0, "state_dict": net.state_dict(),
                    "loss": float(np.mean(losses[-200:])), "optimizer": opt.state_dict(),
                    "aux_optimizer": aux.state_dict(), "lr_scheduler": sched.state_dict()}, tmp)
    os.replace(tmp, out)
    meta = {"arch": a.arch, "quality": a.quality, "lmbda": a.lmbda, "steps": step,
            "init": a.init,
            "crop": a.crop, "batch": a.batch, "wall_s": round(time.time() - t0, 1),
            "cpu_s": round(time.process_time() - cpu0, 1), "photos": len(imgs),
            "final_loss": float(np.mean(losses[-200:])) if losses else None}
    out.with_name(out.name + ".json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
