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
