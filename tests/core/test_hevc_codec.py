"""The ``hevc`` codec (issue 31): HEVC intra, BPG's encoder, in a HEIF file through pillow-heif.

Round trip (size, PSNR, the file's own picture and chroma), its quality knob, the CLI, ``lic
models``, an install without the plugin, and the Kodak curve committed in
benchmarks/results/classical/ (also shipped as a reference the studio's RD plot offers).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lic_core.codecs.classical as cc
from lic_core.cli import main
from lic_core.codecs import codec_for_file
from lic_core.codecs.base import EncodeParams
from lic_core.codecs.registry import get_codec, list_codecs
from lic_core.errors import CodecUnavailableError, LicFormatError

ROOT = Path(__file__).resolve().parents[2]
KODAK_JSON = ROOT / "benchmarks" / "results" / "classical" / "hevc.json"


def photo_like(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth shading, a sharp-edged patch and mild noise (a tiny stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 90 * np.sin(x / 11.0) * np.cos(y / 17.0), 40 + 180 * x / w,
                    128 + 70 * np.cos((x + y) / 13.0)], -1)
    img[h // 3:h // 2, w // 4:w // 2] = (230, 40, 30)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def hevc():
    codec = get_codec("hevc")
    ok, why = codec.available()
    if not ok:
        pytest.skip(why)
    return codec


def test_registered_as_a_classical_codec():
    assert "hevc" in list_codecs()
    c = get_codec("hevc")
    assert c.family == "classical" and c.file_extension == ".heic" and c.integer_rate
    assert c.rate_range == (10.0, 60.0) and c.rate_increasing
    assert c.rate_range[0] <= c.default_rate <= c.rate_range[1]


def test_round_trip_size_psnr_and_the_files_own_picture(hevc):
    import pillow_heif

    img = photo_like(97, 131)  # odd sizes: x265 pads to its CU grid, the file crops back
    res = hevc.encode(img, EncodeParams(rate=30))
    data = res.data
    # a HEIF file whose HEVC picture needs the range extensions (heix: 4:4:4; 4:2:0 is heic)
    assert data[4:12] == b"ftypheix"
    assert res.codec == "hevc" and res.file_extension == ".heic" and res.params.rate == 30.0
    assert res.reconstruction.shape == img.shape and res.reconstruction.dtype == np.uint8
    assert res.bpp == pytest.approx(8 * len(data) / (97 * 131))
    assert 0.2 < res.bpp < 4.0  # HEVC at CRF 35 on a small, noisy picture
    assert 30.0 < psnr(img, res.reconstruction) < 50.0  # lossy, and sane
    dec = hevc.decode(data)
    np.testing.assert_array_equal(dec.reconstruction, res.reconstruction)
    # 4:4:4 really used (the file says so) and 8 bits
    assert dec.info["format"] == "HEIF" and str(dec.info["chroma"]) == "444"
    assert dec.info["bit_depth"] == 8
    # the picture Pillow shows is the one the file holds: libheif's own decode of its primary
    # (and only) image, no thumbnail
    heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=False)
    assert len(heif) == 1 and not heif.info.get("thumbnails")
    assert str(heif.info["chroma"]) == "444" and heif.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(heif), res.reconstruction)
    with Image.open(__import__("io").BytesIO(data)) as im:
        assert im.size == (131, 97) and im.mode == "RGB"


@pytest.mark.parametrize("h,w", [(1, 1), (7, 5), (17, 33), (64, 200)])
def test_any_size_comes_back_whole(hevc, h, w):
    img = photo_like(h, w, seed=h)
    res = hevc.encode(img, EncodeParams(rate=60))
    assert res.reconstruction.shape == (h, w, 3)
    assert np.abs(res.reconstruction.astype(int) - img).mean() < 12


def test_chroma_is_full_resolution(hevc):
    """4:2:0 would blur a one-pixel colour stripe pattern; 4:4:4 keeps it."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, ::2] = (255, 0, 0)
    img[:, 1::2] = (0, 0, 255)
    ours = hevc.encode(img, EncodeParams(rate=60)).reconstruction
    sub = hevc.encode(img, EncodeParams(rate=60, extra={"chroma": "420"})).reconstruction
    assert psnr(img, ours) > psnr(img, sub) + 6.0


def test_quality_knob_is_libheifs_crf_mapping(hevc):
    """x265 gets CRF ⌊(100 − q)/2⌋: q and q + 1 (q odd) give the same file, q − 1 a smaller one."""
    img = photo_like(64, 96, seed=4)
    a, b, c = (hevc.encode(img, EncodeParams(rate=q)).data for q in (40, 41, 42))
    assert b == c and len(b) > len(a)
    assert hevc.encode(img, EncodeParams(rate=99)).params.rate == 60.0  # clamped to the range
    assert hevc.encode(img, EncodeParams(rate=3.4)).params.rate == 10.0


def test_bpg_settings_and_overrides(hevc):
    """Psycho-visual RD is off (BPG's tune ssim); ``extra`` reaches x265 on top of the set-up."""
    assert cc.HEVC_X265_PARAMS["x265:psy-rd"] == "0" and cc.HEVC_X265_PARAMS["preset"] == "veryslow"
    img = photo_like(64, 96, seed=5)
    base = hevc.encode(img, EncodeParams(rate=34))
    psy = hevc.encode(img, EncodeParams(rate=34, extra={"x265:psy-rd": "2.0",
                                                        "x265:psy-rdoq": "2.0"}))
    assert psy.data != base.data
    again = hevc.encode(img, EncodeParams(rate=34, extra={"enc_params": {"preset": "veryslow"}}))
    assert again.data == base.data  # deterministic, and the defaults survive a partial override
    with pytest.raises(ValueError):
        hevc.encode(img, EncodeParams(rate=34, extra={"preset": "no-such-preset"}))


def test_bad_bytes_are_one_line_errors(hevc):
    with pytest.raises(LicFormatError):
        hevc.decode(b"not a heif file")
    good = hevc.encode(photo_like(32, 32), EncodeParams(rate=30)).data
    with pytest.raises(LicFormatError) as err:
        hevc.decode(good[: len(good) // 2])
    assert "\n" not in str(err.value)


def test_describe_and_lic_models_name_encoder_and_versions(hevc, capsys):
    import pillow_heif

    d = hevc.describe()
    assert "x265" in d["encoder"] and "libheif" in d["encoder"]
    assert pillow_heif.__version__ in d["encoder"] and "libde265" in d["decoder"]
    assert "4:4:4" in d["settings"] and "psy-rd 0" in d["settings"]
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    block = out.split("\nhevc  (classical, available)\n", 1)[1].split("\n\n", 1)[0]
    assert "encoder" in block and "x265" in block and "libde265" in block
    assert "quality 10..60" in block and ".heic" in block


def test_cli_compress_and_eval(hevc, tmp_path, capsys):
    src = tmp_path / "imgs" / "a.png"
    src.parent.mkdir()
    img = photo_like(80, 112, seed=6)
    Image.fromarray(img).save(src)
    Image.fromarray(photo_like(64, 64, seed=7)).save(src.parent / "b.png")
    assert main(["compress", str(src), "--codec", "hevc", "--rate", "40", "--quiet"]) == 0
    out = src.with_suffix(".heic")  # the codec's extension
    data = out.read_bytes()
    codec = codec_for_file(data, out)
    assert codec.name == "hevc"
    assert psnr(img, codec.decode(data).reconstruction) > 30.0
    res = tmp_path / "res"
    assert main(["eval", str(src.parent), "--codecs", "jpeg,hevc", "--rates", "hevc=20,40",
                 "--rates", "jpeg=50", "--out", str(res), "--quiet"]) == 0
    d = json.loads((res / "hevc.json").read_text())
    assert d["results"]["rate"] == [20.0, 40.0] and d["meta"]["images"] == 2
    assert d["results"]["bpp"][0] < d["results"]["bpp"][1]
    capsys.readouterr()
    assert main(["bdrate", str(res / "hevc.json"), str(res / "jpeg.json"), "--reference",
                 "hevc"]) == 0
    assert "vs 'hevc'" in capsys.readouterr().out


def test_eval_default_rates_are_distinct_crf_steps():
    from lic_core.evaluation.run_eval import DEFAULT_RATES, default_rates

    rates = default_rates(get_codec("hevc"))
    assert rates == [float(v) for v in DEFAULT_RATES["hevc"]] and rates == sorted(rates)
    lo, hi = get_codec("hevc").rate_range
    assert all(lo <= r <= hi and r % 2 == 0 for r in rates)  # even q: one CRF each


def test_without_the_plugin_it_is_listed_but_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # None in sys.modules → ImportError
    codec = get_codec("hevc")
    ok, why = codec.available()
    assert not ok and "pillow-heif" in why
    assert "hevc" in list_codecs()
    with pytest.raises(CodecUnavailableError):
        codec.encode(photo_like(16, 16), EncodeParams(rate=30))
    from lic_core.cli.cmd_models import codec_table

    row = next(r for r in codec_table() if r["name"] == "hevc")
    assert row["available"] is False and "pillow-heif" in row["reason"]


def test_a_build_without_x265_says_so(monkeypatch):
    monkeypatch.setattr(cc, "_heif_info", lambda: {"pillow_heif": "9.9", "libheif": "1.0",
                                                   "HEIF": "", "encoders": {},
                                                   "decoders": {"libde265": "x"}})
    ok, why = get_codec("hevc").available()
    assert not ok and "x265" in why


# ------------------------------------------------------------------ the Kodak curve


def _kodak() -> dict:
    if not KODAK_JSON.is_file():
        pytest.fail(f"{KODAK_JSON} is missing (issue 31: the measured Kodak curve is committed)")
    return json.loads(KODAK_JSON.read_text())


def test_kodak_curve_is_committed_and_spans_the_range():
    d = _kodak()
    r = d["results"]
    assert d["name"] == "hevc" and d["meta"]["images"] == 24
    assert d["meta"]["codec"]["name"] == "hevc" and "x265" in d["meta"]["codec"]["encoder"]
    assert r["rate"] == [float(v) for v in
                         __import__("lic_core.evaluation.run_eval",
                                    fromlist=["DEFAULT_RATES"]).DEFAULT_RATES["hevc"]]
    assert min(r["bpp"]) < 0.13 and max(r["bpp"]) > 1.8  # ~0.1 to ~2 bpp on Kodak
    assert r["bpp"] == sorted(r["bpp"]) and r["psnr-rgb"] == sorted(r["psnr-rgb"])
    assert len(r["ms-ssim-rgb"]) == len(r["lpips"]) == len(r["bpp"])
    assert len(d["per_image"]) == 24


def test_kodak_curve_ships_as_a_reference_near_published_bpg():
    """The studio and ``lic bdrate`` can use it as a reference; it lands within a few percent of
    the published BPG curve (the same encoder and settings, a different build and container)."""
    from lic_core.evaluation.anchors import load_anchors, load_measured
    from lic_core.evaluation.compare import bd_rate_curves

    shipped = load_measured("kodak", "psnr")
    assert [c.extra["id"] for c in shipped] == ["hevc"]
    ref = shipped[0]
    assert ref.kind == "measured" and "measured" in ref.name
    d = _kodak()
    assert ref.bpp == d["results"]["bpp"] and ref.values["psnr"] == d["results"]["psnr-rgb"]
    bpg = load_anchors("kodak", "psnr", names=["bpg444"])[0]
    assert abs(bd_rate_curves(ref, bpg, "psnr")) < 10.0
    assert load_measured("kodak", "lpips")  # all three metrics travel with it
    assert load_measured("no-such-set", "psnr") == []


@pytest.mark.shared
def test_one_kodak_image_reproduces_the_committed_point(hevc, shared_dir):
    """The committed curve is what this codec gives (x265 is deterministic at any thread count);
    only checked with the pillow-heif it was measured with."""
    import pillow_heif

    d = _kodak()
    if pillow_heif.__version__ not in d["meta"]["codec"]["encoder"]:
        pytest.skip("measured with another pillow-heif build")
    from lic_core.image import load_image

    img = load_image(shared_dir / "data" / "kodak" / "kodim23.png")
    res = hevc.encode(img, EncodeParams(rate=28))
    rows = d["per_image"]
    row = rows.get("kodim23.png") if isinstance(rows, dict) else None
    if row is None:
        pytest.skip("per_image layout without kodim23.png")
    k = d["results"]["rate"].index(28.0)
    assert res.bpp == pytest.approx(row["bpp"][k], rel=1e-9)
    assert psnr(img, res.reconstruction) == pytest.approx(row["psnr-rgb"][k], abs=1e-6)
