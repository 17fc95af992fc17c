"""The one-line labels of a diffusion decoder's model card (``lic models``, the studio):
they say only what the card measured."""
from __future__ import annotations

import pytest


def test_diffusion_card_line_reports_only_what_the_card_measured():
    from lic_core.evaluation.generative import diffusion_card_line, diffusion_card_summary

    pts = [{"u": u, "bpp": 0.2 + u, "psnr": 28.0 + 2 * u, "lpips": 0.3 - 0.1 * u}
           for u in (0.0, 0.5, 1.0)]
    card = {"preview": False, "total_steps": 9000, "cpu_hours": 3.04,
            "eval": {"images": ["a.png", "b.png"],
                     "rows": {"MSE decoder (g_s)": pts,
                              "diffusion decoder": [{**p, "lpips": p["lpips"] / 2,
                                                     "psnr": p["psnr"] - 1} for p in pts]}}}
    s = diffusion_card_summary(card)
    assert s["points"] == 3 and s["images"] == 2
    assert s["lpips"] == pytest.approx(s["lpips_mse"] / 2) and s["psnr_mse"] == pytest.approx(29.0)
    assert diffusion_card_line(card) == ("trained · 9000 steps · 3.0 CPU-h · Kodak (2 images, "
                                         "3 slider points, same bits): LPIPS 0.125 vs 0.250 "
                                         "(mse), PSNR 28.00 vs 29.00 dB")
    # a card without its Kodak table: provenance only, nothing invented
    assert diffusion_card_line({"preview": True, "total_steps": 10}) == "PREVIEW · 10 steps"


def test_diffusion_card_line_warns_when_the_codec_weights_moved_on():
    from lic_core.evaluation.generative import diffusion_card_line

    card = {"total_steps": 10, "codec_weights_hash": "aa" * 8,
            "eval": {"rows": {"MSE decoder (g_s)": [{"lpips": 0.3}],
                              "diffusion decoder": [{"lpips": 0.2}]}}}
    assert "LPIPS 0.200 vs 0.300" in diffusion_card_line(card, "aa" * 8)
    line = diffusion_card_line(card, "bb" * 8)
    assert "other codec weights" in line and "LPIPS" not in line and "retrain" in line


def _hific_card(cpu_hours: float, stage: str = "hific-2") -> dict:
    return {"preview": stage != "hific-2", "stage": stage, "total_steps": 10300,
            "cpu_hours": cpu_hours, "gpu_hours": 0.0,
            "eval": {"images": ["a.png", "b.png"],
                     "rows": {"hific-small (GAN decoder)": [
                         {"u": 0.0, "bpp": 0.12, "psnr": 26.0, "lpips": 0.20},
                         {"u": 1.0, "bpp": 0.60, "psnr": 30.0, "lpips": 0.10}],
                         "lic-lgem-cpu MSE decoder": [
                         {"u": 0.0, "bpp": 0.19, "psnr": 28.0, "lpips": 0.90}]}}}


def test_hific_card_line_reads_the_gan_row_and_the_stage():
    from lic_core.evaluation.generative import hific_card_line

    line = hific_card_line(_hific_card(3.3))
    assert line.startswith("trained (GAN stage)")
    assert "10300 steps" in line and "3.3 CPU-h" in line
    # the GAN row's means, not the MSE reference row's LPIPS 0.90
    assert "0.12–0.60 bpp" in line and "LPIPS 0.150" in line and "PSNR 28.00 dB" in line
    assert "2 images, 2 slider points" in line
    early = hific_card_line(_hific_card(1.0, stage="hific-1"))
    assert early.startswith("PREVIEW (reconstruction stage only")


def test_budget_line_says_whether_the_comparison_is_fair():
    from lic_core.evaluation.generative import SAME_BUDGET, budget_line, same_budget

    diffusion = {"cpu_hours": 3.27, "gpu_hours": 0.0}
    same, line = budget_line(_hific_card(3.20), diffusion)
    assert same and "same CPU training budget" in line and "3.20" in line and "3.27" in line
    same, line = budget_line(_hific_card(1.0), diffusion)
    assert not same and line.startswith("NOT the same")
    same, line = budget_line(None, diffusion)
    assert not same and "unknown" in line and "HiFiC" in line
    # what the two budgets leave out is said when the codec's card is known
    same, line = budget_line(_hific_card(3.20), {**diffusion, "codec": "lic-lgem-cpu"},
                             {"cpu_hours": 6.38})
    assert same and "lic-lgem-cpu, 6.4 CPU-h more" in line
    # the edge of "the same": within SAME_BUDGET of the larger, both sides
    assert same_budget(1.0, 1.0 - SAME_BUDGET + 1e-9) and not same_budget(1.0, 0.85)
    assert not same_budget(0.0, 0.0) and not same_budget(None, 1.0)
