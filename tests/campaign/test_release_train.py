"""The release train end to end (issue 27 item 3) on tiny weights and synthetic photos: new codec
weights replace shipped ones with every dependent — TCQ tables, two fine-tuned decoders, the GAN
and the diffusion decoder — re-derived in the background and bound to the new weights; a stop in
the middle continues at the stage it was in; nothing in the shipped folder changes before the
install; files of the outgoing weights decode the same afterwards."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from campaign.base import CampaignError
from campaign.learning_curve import read_log
from campaign.release import ReleaseTrain
from campaign.stages import open_stage
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.finetuned import finetuned_base_hash
from lic_core.quantizer.tcq_designed import read_table_file
from lic_core.weights import read_weights_card, read_weights_hash
from synthetic_photos import striped_photos
from test_release import tree, write_export
from test_release_frozen import TINY, ship_dependents, ship_tiny

FT = ["--model", TINY, "--batch", "1", "--crop", "64", "--lr", "1e-3", "--threads", "1",
      "--log-every", "1"]
RECIPES = {
    "finetune-round": FT, "finetune-tcq": FT,
    "gan": FT + ["--gan-start", "1", "--disc-widths", "8,8,16,16", "--disc-cond", "4"],
    "diffusion": ["--model", TINY, "--diffusion-config", "tiny-cpu", "--warmup", "1", "--batch",
                  "2", "--crop", "64", "--lr", "1e-3", "--threads", "1", "--workers", "0",
                  "--log-every", "1", "--ckpt-every", "0", "--downscale", "1", "1"],
}


def ship_diffusion(wdir: Path, data: Path, tmp: Path) -> None:
    """A tiny diffusion decoder of the shipped tiny weights (one training step)."""
    import argparse
    import shutil

    from lic_core.train.diffusion import add_arguments, run

    p = argparse.ArgumentParser()
    add_arguments(p)
    run(p.parse_args(["--data", str(data), "--out", str(tmp / "diffusion-run"),
                      *RECIPES["diffusion"], "--steps", "1"]), log=lambda s: None)
    ema = [f for f in (tmp / "diffusion-run").glob("*.safetensors") if "train" not in f.name]
    shutil.copy2(ema[0], wdir / f"{TINY}-diffusion.safetensors")


def wait(pred, what: str, timeout: float = 900.0) -> None:
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, what
        time.sleep(0.3)


@pytest.mark.slow
def test_release_train_end_to_end_with_a_stop(tmp_path, monkeypatch):
    data = striped_photos(tmp_path / "photos", n=3, size=80)
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    old_hash = ship_tiny(wdir, 0)
    ship_dependents(wdir, 0, quantizers=("round", "tcq"))
    ship_diffusion(wdir, data, tmp_path)
    photo = np.asarray(Image.open(data / "img1.png"))
    codec = LearnedCodec(TINY)
    assert codec.decoders == ("mse", "gan", "diffusion")
    old_files = [codec.encode(photo, EncodeParams(rate=0.5, quantizer=q, decoder=d,
                                                  diffusion_steps=2 if d == "diffusion" else 0))
                 for q, d in (("tcq", "mse"), ("round", "gan"), ("round", "diffusion"))]
    root = tmp_path / "campaign"
    write_export(root, 1)
    shipped = tree(wdir)

    train = ReleaseTrain(root)  # stopped by the conftest net however the test ends
    options = dict(name=TINY, data=str(data), kodak=str(data), eval_limit=1, us=(0.0, 1.0), nice=5,
                   results_dir=tmp_path / "results", recipes=RECIPES,
                   probe={"n": 2, "crop": 64}, tcq_design={"every": 1, "crop": 64},
                   force_install=True)
    msg = train.start(force=True, max_steps=100000, **options)
    assert "release train started" in msg and "finetune-round, finetune-tcq, diffusion, gan" in msg
    ft = open_stage("finetune-round", train.run_dir)
    wait(lambda: any(r.get("type") == "train" and r["step"] >= 2
                     for r in read_log(ft.run_dir / "log.jsonl")),
         f"finetune-round did not train: {train.status()}\n"
         f"{train.out_file.read_text()[-2000:] if train.out_file.is_file() else ''}")
    with pytest.raises(CampaignError, match="the release stage is running"):
        open_stage("gan", root).start(data=str(data), nice=5)  # one campaign job at a time
    assert "finetune-round" in train.status() and "tcq-tables         measured" in train.status()

    # stopped in the middle: the running stage checkpoints, the release stays at it
    assert "stopped at finetune-round" in train.stop(timeout=600)
    st = train.state()
    item = {it["stage"]: it for it in st["plan"]}
    assert st["current"] == "finetune-round" and item["finetune-round"]["status"] == "training"
    assert st["stopped"]  # a stop, which the cycle tells from a crash (test_cycle.py)
    assert item["tcq-tables"]["status"] == "measured" and ft.pid() is None and train.pid() is None
    assert tree(wdir) == shipped  # nothing shipped changed yet
    assert (train.staging / f"{TINY}.tcq-tables.json").is_file()

    # continued: the stage resumes its checkpoint, the rest runs, everything installs together
    train.start(max_steps=3)
    wait(lambda: train.pid() is None, f"the release did not finish: {train.status()}", 1800)
    st = train.state()
    assert st["phase"] == "installed", train.status() + "\n" + train.out_file.read_text()[-3000:]
    assert "stopped" not in st
    assert "resuming ckpt-" in ft.out_file.read_text().split("== ")[-1]
    new_hash = st["export"]["weights_hash"]
    assert read_weights_hash(wdir / f"{TINY}.safetensors") == new_hash != old_hash
    for q in ("round", "tcq"):
        assert finetuned_base_hash(wdir / f"{TINY}-ft-{q}.safetensors") == new_hash
    assert finetuned_base_hash(wdir / f"{TINY}-gan.safetensors") == new_hash
    assert read_weights_card(wdir / f"{TINY}-diffusion.safetensors")[
        "codec_weights_hash"] == new_hash
    assert read_table_file(wdir / f"{TINY}.tcq-tables.json")["base_weights_hash"] == new_hash
    fresh = LearnedCodec(TINY)
    assert fresh.decoders == ("mse", "gan", "diffusion") and not fresh.describe().get(
        "stale_finetuned_decoders")
    man = json.loads((wdir / f"{TINY}.release.json").read_text())
    assert [s["stage"] for s in man["stages"]] == ["tcq-tables", "finetune-round",
                                                   "finetune-tcq", "diffusion", "gan"]
    # the GAN card states its budget against the new diffusion decoder's (staged before it)
    gan_budget = read_weights_card(wdir / f"{TINY}-gan.safetensors")["budgets"]
    assert gan_budget["diffusion_cpu_hours"] == pytest.approx(read_weights_card(
        wdir / f"{TINY}-diffusion.safetensors")["cpu_hours"], abs=1e-3)
    assert all(s["cpu_h"] > 0 for s in man["stages"]) and man["training_cpu_hours"] > 0
    ws = {s["stage"]: s["warm_start"] for s in man["stages"] if s["warm_start"]}
    assert ws["diffusion"]["from"] == "previous" and ws["gan"]["probe"]["metric"] == "lpips"
    assert ws["finetune-tcq"]["from"] in ("base", "transplant")
    assert man["stages"][2]["result"]["curves"]["tcq/after"]["bpp"]  # measured on real files
    assert (wdir / "frozen" / f"{TINY}-{old_hash}" / f"{TINY}-diffusion.safetensors").is_file()
    for r in old_files:  # the outgoing weights' files, every decoder, decode the same
        assert np.array_equal(fresh.decode(r.data).reconstruction, r.reconstruction)
    assert "installed" in train.status()
