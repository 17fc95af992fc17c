"""The GAN decoder's campaign stage (issue 26): ``tools/campaign.sh --stage gan`` start / stop /
CPU budget / resume / export / install, on tiny models (``$LIC_WEIGHTS_DIR`` points at a
temporary weights folder)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from campaign.base import CampaignError
from campaign.stages import open_stage
from lic_core.codecs.learned import LearnedCodec
from lic_core.models import build_model
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from lic_core.weights import save_weights
from test_campaign_stages import _photos, _wait_step, _wait_stopped

TINY = "lic-lgem-tiny"
RECIPE = ["--model", TINY, "--batch", "1", "--crop", "64", "--lr", "1e-3", "--gan-start", "1",
          "--threads", "1", "--log-every", "1", "--disc-widths", "8,8,16,16", "--disc-cond", "4"]


@pytest.fixture()
def weights_dir(tmp_path, monkeypatch) -> Path:
    """Tiny codec weights as "the shipped" lic-lgem-tiny; $LIC_WEIGHTS_DIR points there."""
    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.manual_seed(0)
    m = build_model(TINY).eval()
    m.prior.update_tables()
    with torch.no_grad():  # a random g_a is nearly flat: spread the latents so symbols vary
        m.gains.gain.weight.mul_(6.0)
    save_weights(m, wdir / f"{TINY}.safetensors", {"model": TINY, "preview": True})
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    return wdir


@pytest.mark.slow
def test_gan_stage_start_stop_budget_resume_export_install(tmp_path, weights_dir):
    data = _photos(tmp_path / "photos")
    c = open_stage("gan", tmp_path / "campaign")
    assert "no training yet" in c.status()
    msg = c.start(data=str(data), recipe=RECIPE, extra=["--steps", "2"], nice=5)
    assert "gan stage started" in msg and "shipped weights' decoder" in msg
    assert "no CPU budget" in msg
    _wait_stopped(c)
    ck = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck["step"] == 2 and ck["kind"] == "gan-decoder", c.out_file.read_text()[-2000:]
    line = c.status()
    assert "step 2" in line and "CPU-h" in line and "GAN on" in line and "\n" not in line

    # a long run stops on request (SIGTERM) with a checkpoint; meanwhile no other stage starts
    msg = c.start(extra=["--steps", "100000"], nice=5)
    assert "resuming ckpt-00000002.pt" in msg
    _wait_step(c, 3)
    with pytest.raises(CampaignError, match="the gan stage is running"):
        open_stage("finetune-round", c.root).start(data=str(data), nice=5)
    assert "stopped" in c.stop(timeout=240)
    ck = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck["step"] > 3

    # a CPU budget (remembered for later starts) stops the run by itself
    budget = float(ck["cpu_s"]) / 60.0
    msg = c.start(extra=["--steps", "100000", "--cpu-budget-min", f"{budget:.6f}"], nice=5)
    assert "CPU budget" in msg and "no CPU budget" not in msg
    assert c.state()["cpu_budget_min"] == pytest.approx(budget, rel=1e-3)
    _wait_stopped(c)
    assert "budget reached" in c.status()

    s = c.export(eval_dir=str(data), eval_limit=1, us=(0.0, 1.0), install=True,
                      force_install=True)
    name = f"{TINY}-gan"
    assert s["name"] == name and s["installed"]
    for suffix in (".safetensors", ".md", ".json", ".curve.png"):
        assert (weights_dir / f"{name}{suffix}").is_file()
    card = json.loads((weights_dir / f"{name}.json").read_text())
    assert card["total_steps"] == ck["step"] and card["cpu_hours"] > 0
    assert card["base_weights_hash"] == c.state()["base_weights_hash"]
    assert "base g_s" in card["warm_start"] and "C_P" in card["objective"]
    assert set(card["budgets"]) == {"gan_cpu_hours", "diffusion_cpu_hours", "same_budget", "note"}
    rows = card["eval"]["rows"]
    assert set(rows) == {"MSE decoder (g_s)", "GAN decoder"}
    assert [p["bpp"] for p in rows["GAN decoder"]] == [p["bpp"] for p in rows["MSE decoder (g_s)"]]
    assert len(card["lpips_below_mse"]) == 2 and set(card["published"]) == {
        "HiFiC (published, full size)", "MS-ILLM (published, full size)"}
    md = (weights_dir / f"{name}.md").read_text()
    assert "GAN decoder" in md and "MS-ILLM (published" in md and "CPU budgets" in md
    assert any("GAN decoder" in x for x in c.summary_lines(s))
    assert "gan" in LearnedCodec(TINY).decoders  # the codec offers it now
