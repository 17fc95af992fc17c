"""BD-rate glue between Curves / anchors and lic_core.evaluation.bdrate."""
from __future__ import annotations

import pytest

from lic_core.errors import LicError
from lic_core.evaluation.anchors import Curve, load_anchors
from lic_core.evaluation.compare import bd_rate_curves, bd_rate_vs_anchor, bd_table


def test_scaled_rate_gives_known_bd_rate():
    ref = load_anchors("kodak", "psnr", names=["webp"])[0]
    for factor in (0.8, 1.25):
        test = Curve("scaled", [b * factor for b in ref.bpp], {"psnr": list(ref.values["psnr"])})
        assert bd_rate_curves(test, ref, "psnr") == pytest.approx((factor - 1) * 100, abs=1e-6)
        assert bd_rate_vs_anchor(test, "webp") == pytest.approx((factor - 1) * 100, abs=1e-6)


def test_ms_ssim_and_lpips_axes_oriented_better_is_higher():
    ref = Curve("r", [0.2, 0.4, 0.8, 1.6], {"ms-ssim": [0.90, 0.95, 0.975, 0.99],
                                            "lpips": [0.30, 0.20, 0.12, 0.06]})
    cheaper = Curve("t", [b * 0.5 for b in ref.bpp], dict(ref.values))
    assert bd_rate_curves(cheaper, ref, "ms-ssim") == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate_curves(cheaper, ref, "lpips") == pytest.approx(-50.0, abs=1e-6)


def test_bd_table_and_errors():
    a = load_anchors("kodak", "psnr", names=["jpeg", "vtm"])
    hific = load_anchors("kodak", "lpips", names=["hific"])[0]
    tab = bd_table(a, a + [hific], "psnr")
    for name in tab:
        assert tab[name][name] == pytest.approx(0.0, abs=1e-9)
    jpeg = next(c for c in a if "JPEG" in c.name)
    vtm = next(c for c in a if "VTM" in c.name)
    assert tab[jpeg.name][vtm.name] > 100  # JPEG needs >2x VTM's rate (ANCHORS.md: +210 %)
    with pytest.raises(LicError):
        bd_rate_curves(Curve("x", [0.1, 0.2], {}), jpeg, "psnr")
    with pytest.raises(LicError):
        bd_rate_vs_anchor(jpeg, "no-such-anchor")
