"""Bjøntegaard delta rate / delta PSNR (pchip and classic cubic), and ``lic bdrate``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lic_core.cli import main
from lic_core.errors import LicError
from lic_core.evaluation.bdrate import BDRateError, bd_distortion, bd_psnr, bd_rate

RATE = [0.12, 0.2, 0.31, 0.46, 0.66, 0.91]
PSNR = [27.7, 29.36, 31.13, 32.95, 34.97, 36.91]


@pytest.mark.parametrize("method", ["pchip", "poly"])
def test_identical_curves_give_zero(method):
    assert bd_rate(RATE, PSNR, RATE, PSNR, method=method) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr(RATE, PSNR, RATE, PSNR, method=method) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["pchip", "poly"])
def test_scaled_rates_give_exact_percentage(method):
    for f in (0.9, 0.5, 1.25):
        got = bd_rate(RATE, PSNR, [r * f for r in RATE], PSNR, method=method)
        assert got == pytest.approx((f - 1) * 100, abs=1e-9)
    # Shuffled input order must not matter.
    perm = [3, 0, 5, 1, 4, 2]
    got = bd_rate(RATE, PSNR, [RATE[i] * 0.9 for i in perm], [PSNR[i] for i in perm],
                  method=method)
    assert got == pytest.approx(-10.0, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "poly"])
def test_psnr_offset_gives_exact_bd_psnr(method):
    assert bd_psnr(RATE, PSNR, RATE, [p + 0.5 for p in PSNR], method=method) == \
        pytest.approx(0.5, abs=1e-9)
    assert bd_distortion is bd_psnr


@pytest.mark.parametrize("method", ["pchip", "poly"])
def test_hand_computed_case(method):
    # a: log10 R = (D - 30)/10 at D = 30, 32, 34, 36; b: log10 R = (D - 30)/10 + 0.01 (D - 30)
    # at D = 31, 33, 35, 37. Both are linear in D, which pchip and the cubic fit reproduce
    # exactly. Overlap [31, 36], mean of 0.01 (D - 30) there = 0.035 -> 10^0.035 - 1.
    da, db = [30, 32, 34, 36], [31, 33, 35, 37]
    ra = [10 ** ((d - 30) / 10) for d in da]
    rb = [10 ** ((d - 30) / 10 + 0.01 * (d - 30)) for d in db]
    assert bd_rate(ra, da, rb, db, method=method) == pytest.approx((10 ** 0.035 - 1) * 100,
                                                                   abs=1e-9)
    # BD-PSNR: D_a = 30 + 10 L, D_b = 30 + 10 L / 1.1 with L = log10 R. Overlap of L is
    # [0.11, 0.6]; mean of D_b - D_a = -(10 - 10/1.1) * mean(L) = -(10/11) * 0.355.
    assert bd_psnr(ra, da, rb, db, method=method) == pytest.approx(-(10 / 11) * 0.355, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "poly"])
def test_sign_symmetry(method):
    rb = [r * (1.1 - 0.03 * i) for i, r in enumerate(RATE)]
    pb = [p + 0.1 * math.sin(i) for i, p in enumerate(PSNR)]
    ab, ba = bd_rate(RATE, PSNR, rb, pb, method), bd_rate(rb, pb, RATE, PSNR, method)
    assert (1 + ab / 100) * (1 + ba / 100) == pytest.approx(1.0, abs=1e-12)
    assert ab > 0 > ba
    assert bd_psnr(RATE, PSNR, rb, pb, method) == pytest.approx(-bd_psnr(rb, pb, RATE, PSNR,
                                                                         method), abs=1e-12)


# Independent port of the JCT-VC/JVET CTC spreadsheet macro (bdRIntEnc / pchipend), 4 points.
def _pchipend(h1, h2, d1, d2):
    d = ((2 * h1 + h2) * d1 - h1 * d2) / (h1 + h2)
    if d * d1 < 0:
        d = 0.0
    elif d1 * d2 < 0 and abs(d) > abs(3 * d1):
        d = 3 * d1
    return d


def _bdrint(rate, dist, low, high):
    order = np.argsort(dist)
    y = np.log10(np.asarray(rate, float)[order])
    x = np.asarray(dist, float)[order]
    h = np.diff(x)
    delta = np.diff(y) / h
    d = np.zeros(4)
    d[0] = _pchipend(h[0], h[1], delta[0], delta[1])
    for i in (1, 2):
        d[i] = (3 * h[i - 1] + 3 * h[i]) / ((2 * h[i] + h[i - 1]) / delta[i - 1]
                                            + (h[i] + 2 * h[i - 1]) / delta[i])
    d[3] = _pchipend(h[2], h[1], delta[2], delta[1])
    c = (3 * delta - 2 * d[:3] - d[1:]) / h
    b = (d[:3] - 2 * delta + d[1:]) / h ** 2
    total = 0.0
    for i in range(3):
        s0 = min(max(x[i], low), high) - x[i]
        s1 = min(max(x[i + 1], low), high) - x[i]
        if s1 > s0:
            total += (s1 - s0) * y[i] + (s1 ** 2 - s0 ** 2) * d[i] / 2
            total += (s1 ** 3 - s0 ** 3) * c[i] / 3 + (s1 ** 4 - s0 ** 4) * b[i] / 4
    return total


def test_pchip_matches_ctc_spreadsheet_macro():
    ra, da = [0.09, 0.21, 0.44, 0.92], [28.1, 31.0, 34.2, 37.6]
    rb, db = [0.1, 0.19, 0.41, 0.8], [28.6, 31.2, 34.0, 36.9]
    lo, hi = max(min(da), min(db)), min(max(da), max(db))
    gap = (_bdrint(rb, db, lo, hi) - _bdrint(ra, da, lo, hi)) / (hi - lo)
    assert bd_rate(ra, da, rb, db) == pytest.approx((10 ** gap - 1) * 100, abs=1e-9)
    # ... and differs from the classic cubic fit (the two methods are not the same thing).
    assert abs(bd_rate(ra, da, rb, db, method="poly") - bd_rate(ra, da, rb, db)) > 1e-4


def test_errors():
    with pytest.raises(BDRateError, match="overlap"):
        bd_rate(RATE, PSNR, RATE, [p + 20 for p in PSNR])
    with pytest.raises(BDRateError, match="at least 4"):
        bd_rate(RATE[:3], PSNR[:3], RATE, PSNR, method="poly")
    with pytest.raises(BDRateError, match="positive"):
        bd_rate([0.0] + RATE[1:], PSNR, RATE, PSNR)
    with pytest.raises(BDRateError, match="repeated"):
        bd_rate(RATE, [30, 30, 31, 32, 33, 34], RATE, PSNR)
    with pytest.raises(ValueError):
        bd_rate(RATE, PSNR, RATE, PSNR, method="akima")
    assert issubclass(BDRateError, LicError)


@pytest.mark.shared
def test_classic_poly_matches_published_derived_table(shared_dir):
    # ../shared/anchors/derived/kodak_bdrate.csv: classic cubic-fit BD-rate vs VTM.
    kodak = shared_dir / "anchors" / "compressai" / "image" / "kodak"
    if not kodak.is_dir():
        pytest.skip("anchors absent")
    load = lambda n: json.loads((kodak / f"{n}.json").read_text())["results"]  # noqa: E731
    vtm = load("vtm")
    expected = {"jpeg": (210.22, -5.75), "webp": (78.14, -3.04), "hm": (23.39, -1.02),
                "compressai-mbt2018-mean_mse_cuda": (21.03, -0.92)}
    for name, (rate, dpsnr) in expected.items():
        t = load(name)
        args = (vtm["bpp"], vtm["psnr-rgb"], t["bpp"], t["psnr-rgb"])
        assert round(bd_rate(*args, method="poly"), 2) == rate
        assert round(bd_psnr(*args, method="poly"), 2) == dpsnr
        assert abs(bd_rate(*args) - rate) < 2.0  # pchip close to the cubic fit here


# ---- CLI ----------------------------------------------------------------------------------
def _write(path, name, bpp, psnr, msssim=None, lpips=None):
    res = {"bpp": bpp, "psnr-rgb": psnr}
    if msssim is not None:
        res["ms-ssim-rgb"] = msssim
    if lpips is not None:
        res["lpips"] = lpips
    path.write_text(json.dumps({"name": name, "description": "test", "results": res}))
    return str(path)


def test_cli_table(tmp_path, capsys):
    ms = [0.92, 0.945, 0.962, 0.975, 0.984, 0.99]
    lp = [0.4, 0.3, 0.22, 0.15, 0.1, 0.07]
    a = _write(tmp_path / "a.json", "anchor", RATE, PSNR, ms, lp)
    b = _write(tmp_path / "b.json", "ours", [r * 0.9 for r in RATE], PSNR, ms, lp)
    c = _write(tmp_path / "c.json", "psnr-only", RATE, [p + 1 for p in PSNR])
    assert main(["bdrate", a, b, c, "--reference", "anchor"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("ours"))
    assert "-10.00" in line
    assert main(["bdrate", a, b, c, "--reference", "a", "--metric", "lpips", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in table["rows"]}
    assert rows["ours"]["bd_rate"] == pytest.approx(-10.0, abs=1e-9)
    assert rows["anchor"]["note"] == "reference"
    assert rows["psnr-only"]["bd_rate"] is None and "lpips" in rows["psnr-only"]["note"]
    assert main(["bdrate", a, b, "--reference", "a", "--metric", "ms-ssim",
                 "--method", "poly"]) == 0
    assert "-10.00" in capsys.readouterr().out
    assert main(["bdrate", a, b, "--reference", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
