"""A warm-started decoder's CPU-hours count what it was built on (issue 26's budget fairness): a
card's ``lineage_cpu_hours``, carried by a release's transplant and by ``--init-decoder``, and the
GAN stage's card that adds its own run to it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from campaign.gan import GanStage
from campaign.warmstart import transplant
from lic_core.models import load_model
from lic_core.train.finetune import load_init_decoder, save_finetuned
from lic_core.weights import lineage_cpu_hours, read_weights_hash
from test_release_frozen import TINY, ship_tiny


@pytest.fixture()
def wdir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(d))
    ship_tiny(d, 0)
    return d


def _decoder(wdir: Path, path: Path, card: dict) -> Path:
    m = load_model(TINY, wdir / f"{TINY}.safetensors")
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.startswith("g_s."):
                p.add_(0.01)
    save_finetuned(m, path, {"base_model": TINY, **card})
    return path


def test_lineage_prefers_the_lineage_then_the_own_hours():
    assert lineage_cpu_hours({"cpu_hours": 0.4, "lineage_cpu_hours": 0.78}) == 0.78
    assert lineage_cpu_hours({"card": {"cpu_hours": 0.4}}) == 0.4
    assert lineage_cpu_hours({"cpu_hours": "n/a"}) is None and lineage_cpu_hours({}) is None


def test_an_init_decoder_and_a_transplant_carry_the_lineage(tmp_path, wdir):
    dec = _decoder(wdir, tmp_path / "gan.safetensors", {"cpu_hours": 0.4,
                                                        "lineage_cpu_hours": 0.78})
    model = load_model(TINY, wdir / f"{TINY}.safetensors")
    assert load_init_decoder(model, dec)["lineage_cpu_hours"] == pytest.approx(0.78)
    plain = _decoder(wdir, tmp_path / "plain.safetensors", {})
    assert load_init_decoder(model, plain)["lineage_cpu_hours"] is None  # unknown, not 0

    staging = tmp_path / "staging"
    staging.mkdir()
    ship_tiny(staging, 1)
    t = transplant(wdir / f"{TINY}.safetensors", dec, staging / f"{TINY}.safetensors",
                   tmp_path / "t.safetensors")
    new = load_model(TINY, staging / f"{TINY}.safetensors")
    assert load_init_decoder(new, t)["lineage_cpu_hours"] == pytest.approx(0.78)
    again = tmp_path / "again"  # a transplant of a transplant keeps the lineage too
    again.mkdir()
    ship_tiny(again, 2)
    t2 = transplant(staging / f"{TINY}.safetensors", t, again / f"{TINY}.safetensors",
                    tmp_path / "t2.safetensors")
    assert load_init_decoder(load_model(TINY, again / f"{TINY}.safetensors"),
                             t2)["lineage_cpu_hours"] == pytest.approx(0.78)


def test_the_gan_card_adds_its_run_to_the_warm_start(tmp_path, wdir):
    from lic_core.paths import gan_weights_path

    assert GanStage.lineage_hours(TINY, None, 1.25) == 1.25  # from the base g_s: its own run
    init = {"file": "x.safetensors", "weights_hash": "00" * 8, "lineage_cpu_hours": 0.78}
    assert GanStage.lineage_hours(TINY, init, 1.25) == pytest.approx(2.03)
    # a checkpoint from before the lineage: the installed GAN decoder's card when it was the init
    inst = _decoder(wdir, gan_weights_path(TINY), {"cpu_hours": 0.5})
    old = {"file": inst.name, "weights_hash": read_weights_hash(inst)}
    assert GanStage.lineage_hours(TINY, old, 1.0) == pytest.approx(1.5)
    assert GanStage.lineage_hours(TINY, {**old, "weights_hash": "11" * 8}, 1.0) is None
    note = GanStage.budget_note(1.0, 1.5, 1.5, True)
    assert "the same CPU budget" in note and "1.00 in this run, 0.50 in its warm start" in note
    assert GanStage.budget_note(1.0, None, 3.0, False).startswith("NOT")


def test_the_budget_line_reads_the_installed_cards_when_runs_is_lost(tmp_path, monkeypatch):
    """runs/ goes with its machine; the cards of the installed weights still know the hours."""
    from campaign.generative import budgets
    from lic_core.paths import weights_path
    from lic_core.weights import read_weights_card

    hific = weights_path("hific-small")
    if not hific.is_file():
        pytest.fail("hific-small ships in the repository")
    b = budgets(tmp_path)  # no stage logs at all
    assert b["hific_cpu_hours"] == round(float(read_weights_card(hific)["cpu_hours"]), 4) > 0
    empty = tmp_path / "none"
    empty.mkdir()
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(empty))
    assert budgets(tmp_path)["hific_cpu_hours"] == 0.0  # nothing installed, nothing booked


def test_the_models_line_says_what_a_warm_start_adds():
    from lic_core.evaluation.generative import diffusion_card_line

    card = {"total_steps": 5000, "cpu_hours": 2.98, "lineage_cpu_hours": 3.76, "preview": False}
    assert "3.0 CPU-h (3.8 with its warm start)" in diffusion_card_line(card)
    assert "with its warm start" not in diffusion_card_line({**card, "lineage_cpu_hours": 2.98})
