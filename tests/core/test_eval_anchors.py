"""Curated anchors: provenance present, values equal to the published files they cite."""
from __future__ import annotations

import json

import pytest

from lic_core.errors import LicError
from lic_core.evaluation.anchors import anchors_dir, load_anchors, load_curve


def test_anchor_files_have_source_and_format():
    files = sorted((anchors_dir() / "kodak").glob("*.json"))
    stems = {f.stem for f in files}
    for need in ("jpeg", "webp", "av1", "bpg444", "vtm", "bmshj2018-hyperprior",
                 "mbt2018-mean", "cheng2020-anchor", "elic", "hific"):
        assert need in stems, need
    for f in files:
        d = json.loads(f.read_text())
        assert d["name"] and d["source"] and d["meta"]["dataset"] == "kodak"
        assert len(d["results"]["bpp"]) == len(d["results"]["psnr-rgb"]) >= 3


def test_load_anchors_by_metric():
    psnr = load_anchors("kodak", "psnr")
    assert len(psnr) >= 12 and all(c.kind == "anchor" for c in psnr)
    for c in psnr:
        assert c.bpp == sorted(c.bpp) and c.has("psnr")
    lp = load_anchors("kodak", "lpips")
    assert [c.extra["id"] for c in lp] == ["hific", "ms-illm"]
    illm = lp[1]  # NeuralCompression projects/illm/results.csv, rows MS-ILLM,kodak (issue 26)
    assert illm.bpp[2] == pytest.approx(0.1531745) and illm.values["lpips"][2] == pytest.approx(
        0.0731798) and illm.values["psnr"][2] == pytest.approx(27.5334797)
    ms = load_anchors("kodak", "ms_ssim")
    assert all(0.5 < v < 1 for c in ms for v in c.values["ms-ssim"])
    with pytest.raises(LicError):
        load_anchors("no-such-set")
    with pytest.raises(LicError):
        load_anchors("kodak", "fid")


@pytest.mark.shared
def test_anchor_values_match_published_files(shared_dir):
    """Reference values: copied verbatim from ../shared/anchors (the files cited in 'source')."""
    src = json.loads((shared_dir / "anchors/compressai/image/kodak/jpeg.json").read_text())
    ours = load_curve(anchors_dir() / "kodak" / "jpeg.json")
    pairs = sorted(zip(src["results"]["bpp"], src["results"]["psnr-rgb"]))
    assert ours.bpp == [b for b, _ in pairs]
    assert ours.values["psnr"] == [p for _, p in pairs]
    hific = load_curve(anchors_dir() / "kodak" / "hific.json")
    assert hific.bpp[0] == pytest.approx(0.1825587)
    assert hific.values["lpips"][0] == pytest.approx(0.06864742)
    elic = load_curve(anchors_dir() / "kodak" / "elic.json")
    assert elic.bpp[-1] == pytest.approx(1.4898326) and elic.values["psnr"][-1] == pytest.approx(
        41.0702996)
