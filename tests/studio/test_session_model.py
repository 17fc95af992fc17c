"""Session model tests. These tests do not require Qt and can run in headless mode.

They cover the Qt-free half of the studio (app/model): events, request ids (stale results never
overwrite newer ones), the result cache, persistence, the inspection maps, atomic export, and the
worker job function with cancellation through the codec's progress callback.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.model import (
    EventedModel,
    SessionModel,
    export,
    inspect_maps,
    params_key,
    services,
)
from app.model.jobs import run_encode
from lic_core.codecs import EncodeParams, Inspection, list_codecs
from lic_core.errors import CancelledError, LicError

REPO = Path(__file__).resolve().parents[2]


def _image(h: int = 48, w: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _fake_inspection(m: int = 8, h: int = 4, w: int = 8, seed: int = 0) -> Inspection:
    rng = np.random.default_rng(seed)
    y_hat = np.round(rng.normal(0, 3, (m, h, w))).astype(np.float32)
    scales = rng.uniform(0.2, 4, (m, h, w)).astype(np.float32)
    bits_y = rng.uniform(0, 3, (m, h, w)).astype(np.float32)
    bits_y[2] += 10  # channel 2 is the most expensive
    bits_z = rng.uniform(0, 1, (4, h // 4, w // 4)).astype(np.float32)
    return Inspection(y_hat=y_hat, means=np.zeros_like(y_hat), scales=scales, bits_y=bits_y,
                      bits_z=bits_z, channel_groups=[2, 2, 4],
                      group_bits={"g0/anchor": 1.0, "g0/non-anchor": 2.0}, header_bytes=20,
                      z_bytes=5, y_bytes=40, estimated_bits=float(bits_y.sum() + bits_z.sum()))


@pytest.mark.slow
def test_model_imports_no_qt():
    """app.model must not import Qt or pyqtgraph (checked in a fresh interpreter)."""
    code = ("import sys; import app.model, app.model.jobs, app.model.export, "
            "app.model.inspect_maps, app.model.services, app.model.session, "
            "app.model.display, app.model.memory, app.model.inspect_jobs; "
            "bad=[m for m in sys.modules if m.split('.')[0] in "
            "('PySide6','PyQt5','PyQt6','shiboken6','pyqtgraph','qtpy')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stdout + r.stderr
    for f in (REPO / "app" / "model").glob("*.py"):
        text = f.read_text()
        assert "PySide" not in text and "pyqtgraph" not in text and "QtCore" not in text, f


def test_evented_model_emits_only_on_change():
    """Setting a field to an equal value emits nothing (breaks view↔model loops)."""

    class M(EventedModel):
        _defaults = {"zoom": 1.0, "items": []}

    m = M()
    seen = []
    m.events.zoom.connect(lambda e: seen.append((e.value, e.old)))
    m.zoom = 2.0
    m.zoom = 2.0
    m.zoom = 3.0
    assert seen == [(2.0, 1.0), (3.0, 2.0)]
    assert M().items is not M().items  # mutable defaults are copied
    with pytest.raises(TypeError):
        M(nope=1)


def test_params_key_ignores_learned_only_knobs_for_classical():
    p1 = EncodeParams(rate=50, decoder="mse", seed=1)
    p2 = EncodeParams(rate=50, decoder="diffusion", seed=7)
    assert params_key("jpeg", p1) == params_key("jpeg", p2)
    assert params_key("x", p1, family="learned") != params_key("x", p2, family="learned")
    p3 = EncodeParams(rate=50, quantizer="tcq")
    assert params_key("x", p1, family="learned") != params_key("x", p3, family="learned")
    assert params_key("jpeg", p1) != params_key("jpeg", EncodeParams(rate=51))
    assert params_key("jpeg", p1, target_bpp=0.5) != params_key("jpeg", p1)


def _session_with_image() -> SessionModel:
    s = SessionModel(codecs=["jpeg", "jpeg"])
    s.set_image(_image(), path=None)
    return s


@pytest.mark.skipif("jpeg" not in list_codecs(), reason="classical codecs not installed")
def test_stale_results_never_overwrite_newer():
    """An older request finishing last is cached and plotted but not shown in the pane."""
    s = _session_with_image()
    s.panes[0].set(rate=20)
    old = s.make_request(0)
    s.panes[0].set(rate=80)
    new = s.make_request(0)
    enc_new = run_encode(new)
    enc_old = run_encode(old)
    assert s.finish(new, enc_new) is True
    assert s.finish(old, enc_old) is False  # arrives late: ignored by the pane
    assert s.panes[0].encoding is enc_new
    assert {e.params.rate for e in s.history} == {20.0, 80.0}
    assert s.cache.get(s.image_id, old.key) is enc_old


@pytest.mark.skipif("jpeg" not in list_codecs(), reason="classical codecs not installed")
def test_cache_answers_a_slider_moved_back():
    s = _session_with_image()
    s.panes[0].set(rate=30)
    req = s.make_request(0)
    s.finish(req, run_encode(req))
    first = s.panes[0].encoding
    s.panes[0].set(rate=60)
    assert s.show_cached(0) is False
    s.panes[0].set(rate=30)
    assert s.show_cached(0) is True
    assert s.panes[0].encoding is first
    # a new image invalidates pane results but the cache is keyed by content
    s.set_image(_image(seed=1))
    assert s.panes[0].encoding is None and s.history == []
    assert s.show_cached(0) is False


@pytest.mark.skipif("jpeg" not in list_codecs(), reason="classical codecs not installed")
def test_run_encode_result_and_metrics():
    s = _session_with_image()
    s.panes[0].set(rate=50)
    req = s.make_request(0)
    seen = []
    enc = run_encode(req, lambda f, m: seen.append(f))
    h, w = req.image.shape[:2]
    assert enc.bpp == pytest.approx(8 * len(enc.result.data) / (h * w))
    assert enc.reconstruction.shape == req.image.shape
    assert seen[0] == 0.0 and seen[-1] == 1.0
    if services.metrics_available():
        mse = np.mean((enc.reconstruction.astype(float) - req.image.astype(float)) ** 2)
        assert enc.metrics["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-3)


@pytest.mark.skipif("jpeg" not in list_codecs(), reason="classical codecs not installed")
def test_cancelled_token_raises_cancelled_error():
    s = _session_with_image()
    req = s.make_request(0)
    req.token.cancel()
    with pytest.raises(CancelledError):
        run_encode(req)
    assert s.fail(req, "cancelled", cancelled=True) is True
    assert s.panes[0].status == "cancelled" and s.panes[0].error == ""


@pytest.mark.skipif("jpeg" not in list_codecs(), reason="classical codecs not installed")
def test_rd_curves_and_operating_points():
    s = _session_with_image()
    for r in (70, 10, 40):
        s.panes[0].set(rate=r)
        req = s.make_request(0)
        s.finish(req, run_encode(req))
    curves = s.rd_curves("psnr") if services.metrics_available() else {}
    if curves:
        bpps, vals = curves["jpeg"]
        assert bpps == sorted(bpps) and len(bpps) == 3
        assert vals[0] < vals[-1]  # more bits, better PSNR for JPEG
        pts = s.operating_points("psnr")
        assert pts[0][0] == 0 and pts[0][1] == pytest.approx(s.panes[0].encoding.bpp)


def test_session_dict_round_trip(tmp_path):
    s = SessionModel(codecs=["jpeg", "webp", "jpeg"])
    s.image_path = str(tmp_path / "x.png")
    s.panes[1].set(rate=33.0, target_bpp=0.4)
    s.view.compare_mode = "side"
    s.view.diff_gain = 8.0
    s.view.n_panes = 3
    path = export.save_json(tmp_path / "s.json", s.to_dict())
    d = json.loads(path.read_text())
    t = SessionModel(codecs=["jpeg"])
    todo = t.apply_dict(d)
    assert todo == []
    assert t.panes[1].settings == s.panes[1].settings
    assert (t.view.compare_mode, t.view.diff_gain, t.view.n_panes) == ("side", 8.0, 3)
    with pytest.raises(LicError):
        t.apply_dict({"format": "something-else"})
    d["view"]["compare_mode"] = "bogus"
    t.apply_dict(d)
    assert t.view.compare_mode == "split"  # validated


def test_atomic_write_refuses_overwrite_and_leaves_no_temp(tmp_path):
    p = tmp_path / "a.bin"
    export.atomic_write_bytes(p, b"one")
    with pytest.raises(LicError):
        export.atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"one"
    export.atomic_write_bytes(p, b"two", overwrite=True)
    assert p.read_bytes() == b"two"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.bin"]
    rows = [{"codec": "jpeg", "bpp": 0.5, "psnr": None}, {"codec": "webp", "lpips": 0.1}]
    text = export.csv_bytes(rows).decode()
    assert text.splitlines()[0] == "codec,bpp,psnr,lpips"
    assert text.splitlines()[1] == "jpeg,0.5,,"


def test_inspection_maps_shapes_and_sums():
    insp = _fake_inspection(m=8, h=4, w=8)
    order = inspect_maps.channel_order(insp.bits_y)
    assert order[0] == 2 and sorted(order.tolist()) == list(range(8))
    mos = inspect_maps.channel_mosaic(insp.y_hat, order, count=6, cols=4, gap=1)
    assert mos.shape == (2 * 5 - 1, 4 * 9 - 1)
    assert np.nanmax(mos) <= 1.0 and np.nanmin(mos) >= 0.0
    # the views' heatmap is lic_core's rate accounting (tests/core/test_rate_accounting.py)
    hm = inspect_maps.heatmap_for_image(insp, 60, 120, "bits_y")
    assert hm.shape == (60, 120)
    res = inspect_maps.latent_quantity(insp, "residual")
    assert np.allclose(res, insp.y_hat / insp.scales)
    rgb = inspect_maps.colorize(hm, "magma")
    assert rgb.shape == (60, 120, 3) and rgb.dtype == np.uint8
    lut = inspect_maps.colormap_lut("viridis")
    assert tuple(lut[0]) == (0x44, 0x01, 0x54) and tuple(lut[-1]) == (0xfd, 0xe7, 0x25)


def test_diff_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[1, 2] = (30, 60, 90)
    d = inspect_maps.diff_values(a, b, gain=2.0)
    assert d[1, 2] == pytest.approx(120.0) and d.sum() == pytest.approx(120.0)
    assert inspect_maps.diff_values(a, 255 - a, gain=4.0).max() == 255.0


def test_image_loading_and_errors(tmp_path):
    img = _image()
    p = tmp_path / "im.png"
    p.write_bytes(export.png_bytes(img))
    assert np.array_equal(services.load_image(p), img)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(LicError):
        services.load_image(bad)
    assert services.is_compressed_file("x.lic") and not services.is_compressed_file("x.jpg")
    assert services.image_id(img) == services.image_id(img.copy())
    assert services.image_id(img) != services.image_id(img[::-1].copy())


def test_normalise_anchor_curves():
    raw = {"bpg": {"results": {"bpp": [0.1, 0.2], "psnr-rgb": [28, 30],
                               "ms-ssim-rgb": [0.9, 0.95]}},
           "broken": {"psnr": [1, 2]}}
    out = services.normalise_curves(raw)
    assert out == {"bpg": {"bpp": [0.1, 0.2], "psnr": [28.0, 30.0], "ms_ssim": [0.9, 0.95]}}


def test_lic_header_info_is_displayable():
    """A real .lic header (lic_core.bitstream) becomes a flat dict with hex hashes."""
    fmt = pytest.importorskip("lic_core.bitstream.format")
    hdr = fmt.LicHeader(model="lic-lgem-preview", weights_hash=bytes(range(8)), decoder="mse",
                        quantizer="round", rate_u16=32768, height=10, width=20)
    data = fmt.pack(hdr, [b"z", b"y"])
    info = services.header_info(data)
    assert info["model"] == "lic-lgem-preview" and info["weights_hash"] == "0001020304050607"
    assert info["rate u"] == pytest.approx(32768 / 65535, abs=1e-5)
    assert services.is_compressed_file("anything.bin", data[:4])


def test_entry_point_help():
    """``python -m app --help`` works without opening a window."""
    r = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=REPO, capture_output=True,
                       text=True, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and "lic-studio" in r.stdout


def test_studio_picks_a_files_codec_like_lic_decompress():
    """services.codec_from_file is lic_core.codecs.codec_for_file: same codec, same refusal."""
    import dataclasses

    from lic_core.bitstream import pack, unpack
    from lic_core.codecs import codec_for_file
    from lic_core.errors import ModelNotFoundError

    data = (REPO / "tests" / "core" / "fixtures" / "lic_v2" / "preview_round.lic").read_bytes()
    assert services.codec_from_file(data, "x.lic") == codec_for_file(data).name
    header, sections = unpack(data)
    foreign = pack(dataclasses.replace(header, model="lic-lgem-xl"), sections)
    with pytest.raises(ModelNotFoundError, match="unknown codec 'lic-lgem-xl'"):
        services.codec_from_file(foreign, "f.lic")


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_studio_exports_follow_the_umask(tmp_path, mask):
    """The studio writes through lic_core's atomic writer, so its files get the umask's mode
    (not the temporary file's 0600) and an existing file is never replaced unasked."""
    import os
    import stat

    from app.model.export import ExportError, atomic_write_bytes

    old = os.umask(mask)
    try:
        q = atomic_write_bytes(tmp_path / "sub" / f"z{mask:o}.png", b"png")
        assert stat.S_IMODE(q.stat().st_mode) == 0o666 & ~mask
        with pytest.raises(ExportError, match="exists"):
            atomic_write_bytes(q, b"other")
        assert q.read_bytes() == b"png"
    finally:
        os.umask(old)
