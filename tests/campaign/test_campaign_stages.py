"""The campaign's generative stages (issue 13): ``--stage diffusion`` and ``--stage hific`` start
in the background, train a few steps of a tiny config, stop on request with a checkpoint that
books CPU time, resume from it, refuse to run beside another stage, and export weights + model
card (CPU-hours, steps, Kodak table beside the MSE decoder and HiFiC's published points, both
stages' budgets) + learning curve."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from campaign.base import Campaign, CampaignError
from campaign.generative import budgets
from campaign.stages import REGISTRY, open_stage
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from synthetic_photos import striped_photos as _photos
from synthetic_photos import wait_stopped as _wait_stopped


def _wait_step(c: Campaign, above: int, timeout: float = 240.0) -> None:
    from campaign.learning_curve import read_log

    t0 = time.monotonic()
    while not any(r.get("type") == "train" and r["step"] > above
                  for r in read_log(c.run_dir / "log.jsonl")):
        assert time.monotonic() - t0 < timeout, "no training progress"
        assert c.pid() is not None, c.out_file.read_text()[-2000:]
        time.sleep(0.3)


COMMON = ["--batch", "2", "--crop", "64", "--lr", "1e-3", "--threads", "1", "--workers", "0",
          "--log-every", "1", "--ckpt-every", "0", "--downscale", "1", "1"]
DIFFUSION = ["--stage", "diffusion", "--model", "lic-lgem-tiny", "--diffusion-config",
             "tiny-cpu", "--warmup", "1", *COMMON]
HIFIC = ["--stage", "hific-1", "--hific-config", "hific-tiny", "--gan-start", "2",
         "--perceptual", "tiny", *COMMON]


@pytest.fixture()
def weights_dir(tmp_path, monkeypatch) -> Path:
    """A weights folder holding tiny codec weights ("the shipped codec" of the diffusion stage);
    $LIC_WEIGHTS_DIR points there, and the stage processes inherit it."""
    from lic_core.models import build_model
    from lic_core.weights import save_weights

    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    save_weights(m, wdir / "lic-lgem-tiny.safetensors", {"model": "lic-lgem-tiny", "preview": True})
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    return wdir


def _start_stop_resume(c: Campaign, data: Path, recipe: list[str]) -> None:
    msg = c.start(data=str(data), kodak=str(data), recipe=recipe + ["--steps", "3"], nice=5)
    assert "starting from scratch" in msg and f"{c.stage} stage started" in msg
    _wait_stopped(c)
    ck = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck["step"] == 3 and ck["cpu_s"] > 0
    line = c.status()
    assert "step 3" in line and "CPU-h" in line and "\n" not in line

    # resume: same recipe, more steps; the CPU-time booking carries on
    msg = c.start(extra=["--steps", "5"], nice=5)
    assert "resuming ckpt-00000003.pt" in msg
    _wait_stopped(c)
    ck2 = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck2["step"] == 5 and ck2["cpu_s"] > ck["cpu_s"], c.out_file.read_text()[-2000:]

    # a long run stops on request (SIGTERM) with a checkpoint; meanwhile no other stage starts
    c.start(extra=["--steps", "100000"], nice=5)
    _wait_step(c, 5)
    for other in (open_stage(name, c.root) for name in REGISTRY if name != c.stage):
        with pytest.raises(CampaignError, match=f"the {c.stage} stage is running"):
            other.start(data=str(data), kodak=str(data), nice=5)
    assert "stopped" in c.stop(timeout=240)
    assert c.pid() is None
    assert load_checkpoint(latest_checkpoint(c.run_dir))["step"] > 5


def _check_card(c: Campaign, s: dict) -> dict:
    card = json.loads((c.export_dir / f"{s['name']}.json").read_text())
    assert card["total_steps"] == s["card"]["total_steps"] > 5
    assert card["cpu_hours"] > 0 and card["recipe"]
    b = card["budgets"]
    assert set(b) == {"diffusion_cpu_hours", "hific_cpu_hours", "same_budget", "note"}
    assert len(card["published_hific"]) == 3  # HiFiC lo / mi / hi, paper points
    assert all({"bpp", "psnr", "lpips"} <= set(p) for p in card["published_hific"])
    for suffix in (".safetensors", ".json", ".md", ".curve.png"):
        assert (c.export_dir / f"{s['name']}{suffix}").is_file()
    md = (c.export_dir / f"{s['name']}.md").read_text()
    assert "LPIPS" in md and "HiFiC (published" in md and "CPU-hours" in md
    return card


@pytest.mark.slow
def test_diffusion_stage_start_stop_resume_export(tmp_path, weights_dir):
    data = _photos(tmp_path / "photos")
    c = open_stage("diffusion", tmp_path / "campaign")
    assert "no training yet" in c.status()
    _start_stop_resume(c, data, DIFFUSION)
    assert c.state()["codec_weights_hash"]  # the codec weights it learned on are recorded

    s = c.export(eval_dir=str(data), eval_limit=1, us=(0.0, 1.0), install=True,
                       force_install=True)
    card = _check_card(c, s)
    assert s["name"] == "lic-lgem-tiny-diffusion" and card["codec"] == "lic-lgem-tiny"
    rows = card["eval"]["rows"]
    mse, dif = rows["MSE decoder (g_s)"], rows["diffusion decoder"]
    assert [p["u"] for p in mse] == [0.0, 1.0]
    # the same bitstreams: the two decoders share their bpp to the byte
    assert [p["bpp"] for p in mse] == [p["bpp"] for p in dif]
    assert all(np.isfinite(p["lpips"]) for p in mse + dif)
    assert len(card["lpips_below_mse"]) == 2 and card["sampling_steps"] == 3
    # installed under the name the codec looks for: the codec now offers the diffusion decoder
    assert s["installed"] and (weights_dir / "lic-lgem-tiny-diffusion.safetensors").is_file()
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.decoder.diffusion import DiffusionDecoder

    assert "diffusion" in LearnedCodec("lic-lgem-tiny").decoders
    dec = DiffusionDecoder.load(weights_dir / "lic-lgem-tiny-diffusion.safetensors")
    assert json.loads(dec.meta["card"])["cpu_hours"] == card["cpu_hours"]
    # `lic models` says what the installed decoder is, as its card says: a force-installed
    # decoder whose LPIPS did not beat the MSE decoder's is a PREVIEW (a few steps of a tiny
    # model usually don't, but can by chance: the label must follow the card either way)
    from lic_core.cli.cmd_models import _diffusion_text

    line = _diffusion_text("lic-lgem-tiny")
    label = "PREVIEW · " if card["preview"] else "trained · "
    assert card["preview"] == (not all(card["lpips_below_mse"]))
    assert line.startswith(label) and "Kodak (1 image, 2 slider points, same bits)" in line
    from safetensors.torch import load_file

    shipped = load_file(weights_dir / "lic-lgem-tiny-diffusion.safetensors")
    assert all(v.dtype == torch.float16 for v in shipped.values() if v.is_floating_point())


@pytest.mark.slow
def test_hific_stage_start_stop_resume_export(tmp_path, weights_dir):
    data = _photos(tmp_path / "photos")
    c = open_stage("hific", tmp_path / "campaign")
    _start_stop_resume(c, data, HIFIC)
    assert load_checkpoint(latest_checkpoint(c.run_dir))["stage"] == "hific-2"  # GAN from step 2
    assert "hific-2" in c.status()
    # a recipe changed mid-run (here: a bigger crop) goes on the card with the step it changed at
    step = load_checkpoint(latest_checkpoint(c.run_dir))["step"]
    c.start(recipe=HIFIC + ["--steps", str(step + 1), "--crop", "128"], nice=5)
    _wait_stopped(c)
    assert load_checkpoint(latest_checkpoint(c.run_dir))["step"] == step + 1

    s = c.export(name="hific-small", eval_dir=str(data), eval_limit=1, us=(0.0, 1.0),
                       install=True)
    card = _check_card(c, s)
    change = card["recipe_changes"][-1]
    assert change["at_step"] == step and "--crop 64" in change["before"]
    assert change["after"].endswith("--crop 128") and card["recipe"].endswith("--crop 128")
    assert f"until step {step}:" in (c.export_dir / "hific-small.md").read_text()
    assert card["stage"] == "hific-2" and s["installed"]  # earned: the GAN stage began
    assert [p["u"] for p in card["eval"]["rows"]["hific-small (GAN decoder)"]] == [0.0, 1.0]
    # the installed weights are the codec's: encode + decode round trip
    from lic_core.codecs import EncodeParams
    from lic_core.codecs.hific import HificCodec

    codec = HificCodec()  # reads hific-small.safetensors from $LIC_WEIGHTS_DIR
    img = np.asarray(Image.open(data / "img0.png"))
    r = codec.encode(img, EncodeParams(rate=0.5, decoder="gan"))
    assert np.array_equal(codec.decode(r.data).reconstruction, r.reconstruction)
    # `lic models` shows its card's Kodak figures and whether it had the diffusion budget
    from lic_core.cli.cmd_models import codec_table, describe_block

    row = next(r for r in codec_table() if r["name"] == "hific-small")
    text = "\n".join(describe_block(row))
    assert row["available"] and "LPIPS" in text and "slider points" in text
    assert "budget" in text and "HiFiC" in text


def test_budget_line_says_same_only_when_it_is(tmp_path):
    def log(stage: str, cpu_s: float) -> None:
        d = tmp_path / stage
        d.mkdir(parents=True, exist_ok=True)
        (d / "log.jsonl").write_text(json.dumps({"type": "train", "step": 9, "cpu_s": cpu_s})
                                     + "\n")

    log("diffusion", 3600.0)
    log("hific", 3500.0)
    b = budgets(tmp_path)
    assert b["same_budget"] and "same CPU budget" in b["note"]
    log("hific", 1800.0)
    b = budgets(tmp_path)
    assert not b["same_budget"] and "NOT the same CPU budget" in b["note"]
    assert b["diffusion_cpu_hours"] == 1.0 and b["hific_cpu_hours"] == 0.5


@pytest.mark.slow
def test_diffusion_stage_continues_its_committed_seed_when_runs_is_lost(tmp_path, weights_dir,
                                                                        monkeypatch):
    """runs/ is lost with its machine: `seed` keeps the weights, the step, the booked CPU time and
    the learning log in a few committed MB, and `start` continues from there."""
    from campaign import seeds as S
    from campaign.learning_curve import read_log
    from lic_core.decoder.diffusion import DiffusionDecoder

    seeds = tmp_path / "seeds"
    monkeypatch.setenv("LIC_CAMPAIGN_SEEDS_DIR", str(seeds))
    data = _photos(tmp_path / "photos")
    c = open_stage("diffusion", tmp_path / "campaign")
    c.start(data=str(data), kodak=str(data), recipe=DIFFUSION + ["--steps", "3"], nice=5)
    _wait_stopped(c)
    ck = load_checkpoint(latest_checkpoint(c.run_dir))
    r = S.write_seed(c)
    assert r["step"] == 3 and Path(r["path"]).parent == seeds
    meta = S.read_seed("diffusion")
    assert meta["step"] == 3 and meta["cpu_s"] == pytest.approx(ck["cpu_s"])
    assert meta["codec_weights_hash"] == ck["codec_weights_hash"] != ""
    from safetensors.torch import load_file

    seed_w = load_file(r["path"])
    assert all(v.dtype == torch.float16 for v in seed_w.values())  # a few MB, not the checkpoint
    assert seed_w.keys() == ck["ema"]["shadow"].keys()
    n_log = len(read_log(c.run_dir / "log.jsonl"))

    # the machine is replaced: runs/ is gone, the committed seed is not
    import shutil

    shutil.rmtree(c.root)
    msg = c.start(data=str(data), kodak=str(data), recipe=DIFFUSION + ["--steps", "5"], nice=5)
    assert "continuing the committed seed" in msg and "step 3" in msg
    _wait_stopped(c)
    assert "resumed diffusion weights from" in c.out_file.read_text()
    ck2 = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck2["step"] == 5 and ck2["cpu_s"] > ck["cpu_s"]  # steps and CPU-hours carry on
    recs = read_log(c.run_dir / "log.jsonl")
    assert len(recs) > n_log and [r["step"] for r in recs if r.get("type") == "train"][:3] == \
        [1, 2, 3]  # the learning curve keeps its start
    # a resumed run folder wins over the seed
    assert "resuming ckpt-00000005.pt" in c.start(extra=["--steps", "5"], nice=5)
    _wait_stopped(c)
    # the seed is training state only: the codec never offers it as a decoder
    assert not (weights_dir / "lic-lgem-tiny-diffusion.safetensors").exists()
    from lic_core.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="not a LIC diffusion decoder file"):
        DiffusionDecoder.load(r["path"])


def test_seed_refuses_what_it_cannot_continue(tmp_path, monkeypatch):
    from campaign import seeds as S

    monkeypatch.setenv("LIC_CAMPAIGN_SEEDS_DIR", str(tmp_path / "seeds"))
    (tmp_path / "weights").mkdir()  # no installed diffusion weights either
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(tmp_path / "weights"))
    with pytest.raises(CampaignError, match="no seed yet"):
        S.write_seed(open_stage("finetune-tcq", tmp_path / "campaign"))
    c = open_stage("diffusion", tmp_path / "campaign")
    with pytest.raises(CampaignError, match="no checkpoint"):
        S.write_seed(c)
    assert S.adopt_seed(c) is None  # nothing committed: the stage starts from scratch
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "diffusion.safetensors").write_bytes(b"torn")
    with pytest.raises(CampaignError, match="not a readable campaign seed"):
        S.adopt_seed(c)


@pytest.mark.slow
def test_hific_stage_continues_its_seed_in_the_gan_stage(tmp_path, weights_dir, monkeypatch):
    """The HiFiC seed keeps E/G/hyperprior, D (the GAN stage began at step 2) and the step, so a
    lost runs/ continues stage 2 instead of restarting stage 1."""
    import shutil

    from safetensors.torch import load_file

    from campaign import seeds as S

    monkeypatch.setenv("LIC_CAMPAIGN_SEEDS_DIR", str(tmp_path / "seeds"))
    data = _photos(tmp_path / "photos")
    c = open_stage("hific", tmp_path / "campaign")
    c.start(data=str(data), kodak=str(data), recipe=HIFIC + ["--steps", "3"], nice=5)
    _wait_stopped(c)
    ck = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck["stage"] == "hific-2"
    r = S.write_seed(c)
    w = load_file(r["path"])
    assert any(k.startswith("disc.") for k in w) and any(k.startswith("model.") for k in w)
    assert S.read_seed("hific")["trainer_stage"] == "hific-2"
    # mark one generator weight in the seed, to see that the run continues the seed (a run from
    # scratch would draw the very same initialisation as the first run: same torch seed)
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(r["path"], framework="pt") as f:
        meta = f.metadata()
    key = next(k for k, v in w.items() if k.startswith("model.") and v.is_floating_point()
               and v.numel() > 100 and "weight" in k)
    w[key] = torch.full_like(w[key], 0.25)
    save_file(w, r["path"], metadata=meta)
    shutil.rmtree(c.root)
    msg = c.start(data=str(data), kodak=str(data), recipe=HIFIC + ["--steps", "5"], nice=5)
    assert "continuing the committed seed" in msg
    _wait_stopped(c)
    assert "resumed the seed" in c.out_file.read_text()
    ck2 = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck2["step"] == 5 and ck2["stage"] == "hific-2" and ck2["cpu_s"] > ck["cpu_s"]
    # the generator continued from the seed: the marked weight, two small steps on
    v = ck2["model"][key[len("model."):]].float()
    assert (v - 0.25).abs().mean() < 0.05 < (ck["model"][key[len("model."):]].float()
                                              - 0.25).abs().mean()


@pytest.mark.slow
def test_installed_diffusion_weights_are_the_seed_when_they_are_the_newest(tmp_path, weights_dir,
                                                                           monkeypatch):
    """After `export --install` of the newest checkpoint, `seed` writes only the log (the shipped
    fp16 file is the same state: no second copy in git), and a lost runs/ continues the shipped
    weights at their step."""
    import shutil

    from campaign import seeds as S

    seeds = tmp_path / "seeds"
    monkeypatch.setenv("LIC_CAMPAIGN_SEEDS_DIR", str(seeds))
    data = _photos(tmp_path / "photos")
    c = open_stage("diffusion", tmp_path / "campaign")
    c.start(data=str(data), kodak=str(data), recipe=DIFFUSION + ["--steps", "2"], nice=5)
    _wait_stopped(c)
    S.write_seed(c)  # an older seed (step 2) …
    c.start(extra=["--steps", "4"], nice=5)
    _wait_stopped(c)
    c.export(eval_dir=str(data), eval_limit=1, us=(0.5,), install=True,
                   force_install=True)
    r = S.write_seed(c)  # … superseded by the installed step-4 weights
    assert r["step"] == 4 and r["installed"]
    assert Path(r["path"]) == weights_dir / "lic-lgem-tiny-diffusion.safetensors"
    assert not (seeds / "diffusion.safetensors").exists() and (seeds / "diffusion.log.jsonl").exists()
    shutil.rmtree(c.root)
    msg = c.start(data=str(data), kodak=str(data), recipe=DIFFUSION + ["--steps", "5"], nice=5)
    assert "continuing the committed seed lic-lgem-tiny-diffusion.safetensors (step 4" in msg
    _wait_stopped(c)
    assert load_checkpoint(latest_checkpoint(c.run_dir))["step"] == 5
