"""benchmarks/heldout_photos.py (issue 27, held-out photos): extraction from a scikit-image wheel
(a tiny fake one built here, never the real one), the error without any source, and the
summary's BD-rates and orderings against the existing BD-rate function on synthetic RD curves.
Nothing is encoded here."""
from __future__ import annotations

import importlib.util
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import load_benchmark


@pytest.fixture(scope="module")
def hp():
    return load_benchmark("heldout_photos")


def _png(mode: str, size=(7, 5), seed: int = 0) -> bytes:
    rng = np.random.RandomState(seed)
    chans = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.randint(0, 256, (size[1], size[0], chans), dtype=np.uint8)
    img = Image.fromarray(arr[..., 0] if chans == 1 else arr, mode)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _fake_wheel(path: Path, hp, modes=None, version: str = "9.9.1", skip=()) -> dict:
    """A zip laid out like scikit-image's wheel: skimage/data/<photo>.png + dist-info METADATA."""
    modes = modes or {}
    data = {}
    with zipfile.ZipFile(path, "w") as z:
        for i, name in enumerate(hp.PHOTOS):
            if name in skip:
                continue
            data[name] = _png(modes.get(name, "RGB"), seed=i)
            z.writestr(f"skimage/data/{name}", data[name])
        z.writestr("skimage/data/README.txt", "sample data\n")
        z.writestr(f"scikit_image-{version}.dist-info/METADATA",
                   f"Metadata-Version: 2.1\nName: scikit-image\nVersion: {version}\n")
    return data


def _no_installed_skimage(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "skimage" else real(name, *a, **k))


# ------------------------------------------------------------------------------ extraction
def test_extract_from_a_wheel_copies_rgb_bytes_and_converts_others(hp, tmp_path):
    whl = tmp_path / "scikit_image-9.9.1-py3-none-any.whl"
    src = _fake_wheel(whl, hp, modes={"coffee.png": "RGBA"})
    out = tmp_path / "photos"
    notes: list[str] = []
    man = hp.extract(out, wheel=str(whl), say=notes.append)

    assert man["source"]["version"] == "9.9.1" and man["source"]["kind"] == "wheel"
    assert man["source"]["wheel"] == whl.name
    assert [p["name"] for p in man["photos"]] == list(hp.PHOTOS)
    for rec in man["photos"]:
        f = out / rec["name"]
        assert rec["sha256"] and rec["bytes"] == f.stat().st_size
        assert (rec["width"], rec["height"]) == (7, 5)
        with Image.open(f) as im:
            assert im.mode == "RGB" and im.format == "PNG"
        if rec["name"] == "coffee.png":  # RGBA in the wheel: converted, and said so
            assert rec["converted_from"] == "PNG RGBA"
            assert any("converted" in n and "coffee" in n for n in notes)
            want = np.asarray(Image.open(io.BytesIO(src["coffee.png"])).convert("RGB"))
            assert np.array_equal(np.asarray(Image.open(f)), want)
        else:  # RGB: the very bytes of the wheel
            assert "converted_from" not in rec
            assert f.read_bytes() == src[rec["name"]]
    assert json.loads((out / hp.MANIFEST).read_text()) == man
    # the run step accepts what extract wrote
    assert hp.check_photos(out)["photos"] == man["photos"]


def test_extract_never_overwrites_other_content_unasked(hp, tmp_path):
    whl = tmp_path / "skimage.whl"
    src = _fake_wheel(whl, hp)
    out = tmp_path / "photos"
    hp.extract(out, wheel=str(whl), say=lambda *_: None)
    hp.extract(out, wheel=str(whl), say=lambda *_: None)  # same bytes again: fine
    mine = out / "chelsea.png"
    mine.write_bytes(b"the user's own file")
    with pytest.raises(hp.HeldoutError, match="--force"):
        hp.extract(out, wheel=str(whl), say=lambda *_: None)
    assert mine.read_bytes() == b"the user's own file"
    with pytest.raises(hp.HeldoutError, match="differs"):  # run refuses changed photos
        hp.check_photos(out)
    hp.extract(out, wheel=str(whl), force=True, say=lambda *_: None)
    assert mine.read_bytes() == src["chelsea.png"]
    assert not list(out.glob(".*.part"))  # atomic writes leave no temp file


def test_extract_from_an_installed_scikit_image(hp, tmp_path, monkeypatch):
    """Without --wheel the photos come from an installed skimage (found, not imported)."""
    pkg = tmp_path / "site" / "skimage"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('not to be imported')\n")
    src = {n: _png("RGB", seed=i) for i, n in enumerate(hp.PHOTOS)}
    for n, b in src.items():
        (pkg / "data" / n).write_bytes(b)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    out = tmp_path / "photos"
    man = hp.extract(out, say=lambda *_: None)
    assert man["source"]["kind"] == "installed"
    assert man["source"]["where"] == str(pkg / "data")
    assert all((out / n).read_bytes() == b for n, b in src.items())


def test_no_source_is_one_line_and_a_nonzero_exit(hp, tmp_path, monkeypatch, capsys):
    _no_installed_skimage(monkeypatch)
    out = tmp_path / "photos"
    assert hp.main(["extract", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install scikit-image" in err and "--wheel" in err
    assert not out.exists()
    # a wheel that is missing, not a zip, or without the photos: one line too
    assert hp.main(["extract", "--out", str(out), "--wheel", str(tmp_path / "nope.whl")]) == 2
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    assert hp.main(["extract", "--out", str(out), "--wheel", str(bad)]) == 2
    partial = tmp_path / "partial.whl"
    _fake_wheel(partial, hp, skip=("astronaut.png",))
    assert hp.main(["extract", "--out", str(out), "--wheel", str(partial)]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3 and all(e.startswith("heldout_photos: error: ") for e in errs)
    assert "astronaut.png" in errs[2]
    # run without extracted photos says what to do
    assert hp.main(["run", "--photos", str(out)]) == 2
    assert "extract" in capsys.readouterr().err


# ------------------------------------------------------------------------------ BD-rates
R = np.geomspace(0.1, 2.0, 6)


def _curve(k: float, dq: float = 0.0) -> list[dict]:
    """A codec needing k times the bits of a unit codec at equal quality: PSNR and MS-SSIM (dB)
    linear in log2(bpp / k), so every BD-rate between two such curves is exactly k_a/k_b − 1."""
    db = 12.0 + 3.0 * np.log2(R) + dq
    return [{"bpp": float(k * r), "psnr": float(30.0 + 4.0 * np.log2(r) + dq),
             "ms_ssim": float(1.0 - 10.0 ** (-d / 10.0))} for r, d in zip(R, db)]


def _result_json(path: Path, name: str, per_image: dict[str, list[dict]]) -> None:
    """A lic eval result file (CompressAI format + per_image) of these curves."""
    def cols(pts):
        return {"bpp": [p["bpp"] for p in pts], "psnr-rgb": [p["psnr"] for p in pts],
                "ms-ssim-rgb": [p["ms_ssim"] for p in pts], "rate": list(range(len(pts)))}

    per = {img: cols(pts) for img, pts in per_image.items()}
    imgs = list(per.values())
    means = {k: [float(np.mean([c[k][i] for c in imgs])) for i in range(len(imgs[0]["bpp"]))]
             for k in imgs[0]}
    path.write_text(json.dumps({"name": name, "meta": {"images": len(per)}, "results": means,
                                "per_image": per}))


def test_bd_agrees_with_the_existing_bd_rate_function(hp):
    from lic_core.evaluation.bdrate import bd_psnr, bd_rate
    from lic_core.metrics.msssim import ms_ssim_db

    rng = np.random.RandomState(3)
    ref = [{"bpp": b, "psnr": q, "ms_ssim": s} for b, q, s in
           zip(np.geomspace(0.12, 1.9, 9), np.linspace(26.0, 38.0, 9) + rng.rand(9) * 0.2,
               np.linspace(0.90, 0.994, 9))]
    test = [{"bpp": b, "psnr": q, "ms_ssim": s} for b, q, s in
            zip(np.geomspace(0.09, 1.4, 6), np.linspace(25.8, 33.6, 6), np.linspace(0.9, 0.99, 6))]
    for metric, key, axis in (("psnr", "psnr", lambda v: v), ("ms-ssim", "ms_ssim", ms_ssim_db)):
        got = hp.bd(test, ref, metric)
        args = ([p["bpp"] for p in ref], [axis(p[key]) for p in ref],
                [p["bpp"] for p in test], [axis(p[key]) for p in test])
        assert got["bd_rate"] == pytest.approx(bd_rate(*args), rel=1e-12)
        assert got["bd_quality"] == pytest.approx(bd_psnr(*args), rel=1e-12)
        lo, hi = got["overlap_db"]  # the common range: the test curve's top, the ref's bottom
        assert lo == pytest.approx(max(args[1][0], args[3][0]))
        assert hi == pytest.approx(min(args[1][-1], args[3][-1]))
    # curves that do not overlap: no BD-rate, and no place in the ordering
    far = [{**p, "bpp": p["bpp"] * 100, "psnr": p["psnr"] + 40.0} for p in ref]
    assert hp.bd(test, far, "psnr") == {"bd_rate": None, "bd_quality": None, "overlap_db": None}
    assert hp.ordering({"a": None, "b": 5.0}, "t") == ["b", "t"]


FACTORS = {"lic": 1.0, "jpeg": 2.0, "webp": 1.25, "avif": 0.9, "jxl": 1.5}


def test_summary_bd_rates_orderings_and_kodak_comparison(hp, tmp_path):
    photos = ["a.png", "b.png"]
    ev = tmp_path / "eval"
    ev.mkdir()
    for c, k in FACTORS.items():  # photo b is 1 dB better everywhere: the same BD-rates
        _result_json(ev / f"{c}.json", c, {"a.png": _curve(k), "b.png": _curve(k, dq=1.0)})
    # Kodak: the learned codec from its card's points, the classical curves from result files;
    # WebP and JPEG XL swap places there (AVIF stays above the learned codec, the rest below)
    kodak = tmp_path / "classical"
    kodak.mkdir()
    kf = {**FACTORS, "webp": 1.5, "jxl": 1.25}
    for c, k in kf.items():
        if c != "lic":
            _result_json(kodak / f"{c}.json", c, {f"kodim{i:02d}.png": _curve(k) for i in (1, 2)})
    card = {"eval": {"images": 2, "points": _curve(1.0)}, "bd_rate": {"jpeg": -50.0}}
    codecs = list(FACTORS)
    s = hp.summarize(ev, codecs, "lic", photos, card=card, kodak_classical=kodak)

    for m in hp.METRICS:
        for r in codecs[1:]:
            assert s["bd_rate"][m][r] == pytest.approx((1.0 / FACTORS[r] - 1.0) * 100, abs=1e-6)
            assert s["kodak"]["bd_rate"][m][r] == pytest.approx((1.0 / kf[r] - 1.0) * 100,
                                                                abs=1e-6)
            for p in photos:
                assert s["per_photo"][p]["bd_rate"][m][r] == pytest.approx(
                    s["bd_rate"][m][r], abs=1e-6)
        assert s["ordering"][m] == ["avif", "lic", "webp", "jxl", "jpeg"]
        assert s["kodak"]["ordering"][m] == ["avif", "lic", "jxl", "webp", "jpeg"]
        assert s["position"][m] == {"better_than_test": ["avif"],
                                    "worse_than_test": ["jpeg", "jxl", "webp"]}
        assert s["same_as_kodak"][m] == {"ordering": False, "position": True}
        # pairwise entries are the same function between the other pairs
        assert s["pairwise_bd_rate"][m]["webp"]["jxl"] == pytest.approx(
            (1.25 / 1.5 - 1.0) * 100, abs=1e-6)
        assert s["pairwise_bd_rate"][m]["jxl"]["lic"] == pytest.approx(50.0, abs=1e-6)
    assert s["kodak"]["card_bd_rate"]["psnr"] == {"jpeg": -50.0}
    assert s["rd_points"]["webp"]["bpp"] == pytest.approx(list(1.25 * R))
    assert all(math.isfinite(v) for v in s["rd_points"]["lic"]["ms_ssim"])
