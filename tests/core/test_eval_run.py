"""lic eval: CompressAI-format output, means = average of per-image values, cache, CLI errors."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lic_core.evaluation.run_eval as rev
from lic_core.cli import main as lic_main
from lic_core.codecs.classical import PillowCodec
from lic_core.evaluation.anchors import load_curve


@pytest.fixture(autouse=True)
def _metrics_or_fallback(monkeypatch):
    """Use lic_core.metrics when it is there; a plain PSNR otherwise (tests only)."""
    try:
        from lic_core.metrics import compute_metrics  # noqa: F401
    except ImportError:
        def fallback(orig, recon, metrics):
            mse = np.mean((orig.astype(np.float64) - recon) ** 2)
            return {"psnr-rgb": float(10 * np.log10(255.0 ** 2 / mse))}
        monkeypatch.setattr(rev, "compute_point_metrics", fallback)


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        y, x = np.mgrid[0:96, 0:128].astype(np.float32)
        img = np.stack([128 + 90 * np.sin(x / (5 + i)), 255 * y / 96, 255 * x / 128], -1)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"img{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def _count_encodes(monkeypatch):
    calls = {"n": 0}
    orig = PillowCodec.encode

    def counting(self, image, params, progress=None):
        calls["n"] += 1
        return orig(self, image, params, progress)

    monkeypatch.setattr(PillowCodec, "encode", counting)
    return calls


def test_eval_writes_compressai_json_and_means(tiny_folder, tmp_path, monkeypatch):
    calls = _count_encodes(monkeypatch)
    out = tmp_path / "res"
    written = rev.run_eval(tiny_folder, ["jpeg", "webp"], out,
                           rates={"jpeg": [30, 80], "webp": [20, 70]}, metrics=["psnr"],
                           progress=False)
    assert calls["n"] == 2 * 2 * 2
    assert set(written) == {"jpeg", "webp"}
    for name, path in written.items():
        doc = json.loads(path.read_text())
        assert doc["name"] == name and "description" in doc
        res = doc["results"]
        for key in ("bpp", "psnr-rgb", "encoding_time", "decoding_time", "rate"):
            assert len(res[key]) == 2, key
        per = doc["per_image"]
        assert sorted(per) == ["img0.png", "img1.png"]
        for key in ("bpp", "psnr-rgb", "encoding_time", "decoding_time"):
            for j in range(2):
                assert res[key][j] == pytest.approx(np.mean([per[i][key][j] for i in per]))
        assert res["bpp"][0] < res["bpp"][1] and res["psnr-rgb"][0] < res["psnr-rgb"][1]
        # bpp is the real file size: re-encode one image and compare
        img = np.asarray(Image.open(tiny_folder / "img1.png").convert("RGB"))
        from lic_core.codecs.base import EncodeParams
        from lic_core.codecs.registry import get_codec
        r = get_codec(name).encode(img, EncodeParams(rate=res["rate"][1]))
        assert per["img1.png"]["bpp"][1] == pytest.approx(8 * len(r.data) / (96 * 128))
        curve = load_curve(path)
        assert curve.has("psnr") and curve.bpp == sorted(curve.bpp)
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_rerun_hits_cache_and_new_points_only(tiny_folder, tmp_path, monkeypatch):
    out = tmp_path / "res"
    first = rev.run_eval(tiny_folder, ["jpeg"], out, rates={"jpeg": [30, 80]},
                         metrics=["psnr"], progress=False)
    doc1 = json.loads(first["jpeg"].read_text())
    calls = _count_encodes(monkeypatch)
    again = rev.run_eval(tiny_folder, ["jpeg"], out, rates={"jpeg": [30, 80]},
                         metrics=["psnr"], progress=False)
    assert calls["n"] == 0
    assert json.loads(again["jpeg"].read_text())["results"] == doc1["results"]
    rev.run_eval(tiny_folder, ["jpeg"], out, rates={"jpeg": [30, 55, 80]}, metrics=["psnr"],
                 progress=False)
    assert calls["n"] == 2  # only the new rate point, once per image
    # a changed image invalidates only that image's entries
    Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(tiny_folder / "img0.png")
    rev.run_eval(tiny_folder, ["jpeg"], out, rates={"jpeg": [30, 55, 80]}, metrics=["psnr"],
                 progress=False)
    assert calls["n"] == 2 + 3


def test_jobs_pool_matches_serial(tiny_folder, tmp_path):
    a = rev.run_eval(tiny_folder, ["webp"], tmp_path / "a", rates={"*": [40]},
                     metrics=["psnr"], progress=False, jobs=1)
    b = rev.run_eval(tiny_folder, ["webp"], tmp_path / "b", rates={"*": [40]},
                     metrics=["psnr"], progress=False, jobs=2)
    ra = json.loads(a["webp"].read_text())["results"]
    rb = json.loads(b["webp"].read_text())["results"]
    assert ra["bpp"] == rb["bpp"] and ra["psnr-rgb"] == rb["psnr-rgb"]


def test_target_bpp_mode(tiny_folder, tmp_path):
    w = rev.run_eval(tiny_folder, ["j2k"], tmp_path / "t", target_bpp=[0.5, 1.0],
                     metrics=["psnr"], progress=False, limit=1)
    doc = json.loads(w["j2k"].read_text())
    assert w["j2k"].name == "j2k-target.json" and doc["results"]["target_bpp"] == [0.5, 1.0]
    for t, b in zip([0.5, 1.0], doc["results"]["bpp"]):
        assert abs(b - t) <= 0.02 * t


def test_cli_eval_and_errors(tiny_folder, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = lic_main(["eval", str(tiny_folder), "--codecs", "jpeg", "--rates", "jpeg=20,60",
                   "--metrics", "psnr", "--out", str(out), "--quiet", "--limit", "1"])
    assert rc == 0 and (out / "jpeg.json").is_file()
    assert json.loads((out / "jpeg.json").read_text())["meta"]["images"] == 1
    assert lic_main(["eval", str(tiny_folder), "--codecs", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown codec 'nope'" in err and "Traceback" not in err
    assert lic_main(["eval", str(tmp_path / "missing"), "--codecs", "jpeg"]) == 2
    assert "not found" in capsys.readouterr().err
    assert lic_main(["eval", str(tiny_folder), "--metrics", "fid", "--out", str(out)]) == 2


def test_text_progress_bar():
    s = io.StringIO()
    bar = rev.TextProgress(4, stream=s, width=8)
    for _ in range(4):
        bar.update(1, "x")
    text = s.getvalue()
    assert "4/4" in text and "[########]" in text


def test_default_rates():
    from lic_core.codecs.registry import get_codec
    assert rev.default_rates(get_codec("jpeg")) == [float(v) for v in rev.DEFAULT_RATES["jpeg"]]

    class L:
        name, rate_range = "x-learned", (0.0, 1.0)
    assert rev.default_rates(L()) == pytest.approx([0, .2, .4, .6, .8, 1.0])


def test_learned_codec_through_same_interface(tiny_folder, tmp_path, monkeypatch):
    """A learned-style codec (slider u, no decode timing) runs in-process with 6 default points."""
    from lic_core.codecs import registry
    from lic_core.codecs.base import Codec, DecodeResult, EncodeResult

    class FakeLearned(Codec):
        name, family, rate_range, default_rate = "fake-learned", "learned", (0.0, 1.0), 0.5
        decodes = 0

        def encode(self, image, params, progress=None):
            q = 2 + int(params.rate * 30)  # coarser grey levels at low u
            rec = (image // q * q).astype(np.uint8)
            data = bytes(8 + int(params.rate * 500))
            return EncodeResult(data=data, reconstruction=rec, bpp=8 * len(data) / image.shape[0]
                                / image.shape[1], params=params, codec=self.name,
                                file_extension=".lic", timings={"encode": 0.01})

        def decode(self, data, progress=None):
            type(self).decodes += 1
            return DecodeResult(reconstruction=np.zeros((1, 1, 3), np.uint8), codec=self.name)

    monkeypatch.setitem(registry._FACTORIES, "fake-learned", FakeLearned)
    monkeypatch.delitem(registry._CACHE, "fake-learned", raising=False)
    w = rev.run_eval(tiny_folder, ["fake-learned"], tmp_path / "l", metrics=["psnr"],
                     progress=False, jobs=2)
    doc = json.loads(w["fake-learned"].read_text())
    assert doc["results"]["rate"] == pytest.approx([0, .2, .4, .6, .8, 1.0])
    assert doc["meta"]["family"] == "learned"
    assert FakeLearned.decodes == 2 * 6  # decode timed once per point when the codec did not
    assert all(t >= 0 for t in doc["results"]["decoding_time"])
    registry._CACHE.pop("fake-learned", None)
