"""The studio logic that left the Qt classes (issue 29 item 3). These tests do not require Qt
and can run in headless mode (no QApplication).

Session files (read and check, save, restore with automatic encoding paused), RD-sweep
planning, the rate slider ↔ rate mapping and the codec chooser's entries, the exported bits
heatmap, the difference-mode cycle, the About card and the provenance words it shares with
``lic models``, and the import contract that keeps the views off lic_core.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.model import SessionModel, inspect_maps, services, session_file, sweep
from app.model.about import describe_html
from app.model.codec_knobs import (
    SLIDER_STEPS,
    CodecKnobs,
    codec_choice,
    codec_knobs,
    provenance_text,
)
from app.model.encoding import PaneSettings
from app.model.provenance import codec_provenance
from app.model.view_state import DIFF_MODES, ViewState
from lic_core.errors import LicError
from lic_core.weights import PROVENANCE_WORDS, weights_provenance
from studio_helpers import FAKE

REPO = Path(__file__).resolve().parents[2]


def _knobs(lo: float, hi: float, integer: bool = False, family: str = "learned") -> CodecKnobs:
    return CodecKnobs(name="x", family=family, lo=lo, hi=hi, integer=integer,
                      rate_label="quality (1–8)", quantizers=(), decoders=("mse",))


# ---------------------------------------------------------------------------- session files

def test_session_file_round_trip_and_refusals(tmp_path):
    """A saved session reads back; a file that is not a session is refused in one line."""
    s = SessionModel(codecs=["jpeg", "webp", "jpeg"])
    s.image_path = str(tmp_path / "x.png")
    s.panes[1].set(rate=33.0)
    s.view.compare_mode = "side"
    name = session_file.default_name("x")
    assert name == "x.licsession.json"
    path = session_file.save_session(tmp_path / name, s)
    d = session_file.read_session(path)
    assert d["panes"][1]["rate"] == 33.0 and session_file.image_of(d) == s.image_path
    with pytest.raises(LicError):  # never overwrites unless told to
        session_file.save_session(path, s)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(LicError, match="other.json is not a LIC Studio session"):
        session_file.read_session(other)
    other.write_text("[1, 2]")  # JSON, but no session
    with pytest.raises(LicError, match="not a LIC Studio session"):
        session_file.read_session(other)
    other.write_text("{broken")
    with pytest.raises(LicError) as err:
        session_file.read_session(other)
    assert "\n" not in str(err.value)
    assert session_file.image_of({"format": "lic-studio-session"}) == ""


def test_restoring_a_session_encodes_nothing_until_it_is_applied(tmp_path):
    """Panes and view are set with automatic encoding paused (one restored pane must not
    start an encode per field); the saved encodings come back to be re-run."""
    s = SessionModel(codecs=["jpeg", "webp", "jpeg"])
    s.panes[0].set(rate=40.0)
    s.view.n_panes = 3
    d = s.to_dict()
    d["encodings"] = [{"codec": "jpeg", "params": {"rate": 20.0}, "target_bpp": None}]
    t = SessionModel(codecs=["jpeg"])
    seen = []
    for p in t.panes:
        p.events.settings.connect(lambda e: seen.append(t.auto_encode))
    todo = session_file.restore_session(t, d)
    assert seen and not any(seen)  # every change arrived while encoding was paused
    assert t.auto_encode  # and it is back on
    assert t.panes[0].settings.rate == 40.0 and t.view.n_panes == 3
    assert [x.rate for x in todo] == [20.0] and todo[0].codec == "jpeg"
    with pytest.raises(LicError):
        session_file.restore_session(t, {"format": "something-else"})
    assert t.auto_encode  # also after a refusal


def test_auto_encode_pause_restores_what_was_there():
    s = SessionModel(codecs=["jpeg"])
    assert s.auto_encode
    with s.auto_encode_paused():
        assert not s.auto_encode
        with s.auto_encode_paused():
            assert not s.auto_encode
        assert not s.auto_encode  # the inner pause ends in the outer one
    assert s.auto_encode
    s.auto_encode = False  # turned off by the user of the model (tests): stays off
    with pytest.raises(RuntimeError):
        with s.auto_encode_paused():
            raise RuntimeError("boom")
    assert not s.auto_encode


# ---------------------------------------------------------------------------- sweep planning

def test_sweep_plan_spans_ten_to_ninety_five_percent_each_value_once():
    assert sweep.plan_rates(0.0, 1.0, 6) == [0.1, 0.27, 0.44, 0.61, 0.78, 0.95]
    assert sweep.plan_rates(0.0, 1.0, 1) == [0.1]
    q = sweep.plan_rates(1, 95, 6, integer=True)
    assert q == [10.0, 26.0, 42.0, 58.0, 74.0, 90.0] and all(v.is_integer() for v in q)
    # a model with few checkpoints: every checkpoint once, none twice
    assert sweep.plan_rates(1, 4, 6, integer=True) == [1.0, 2.0, 3.0, 4.0]
    assert sweep.plan_rates(1, 8, 6, integer=True) == [2.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    assert sweep.plan_rates(1, 2, 6) == [1.1, 1.27, 1.44, 1.61, 1.78, 1.95]


def test_sweep_settings_keep_the_pane_but_set_the_knob():
    s = PaneSettings(codec="jpeg", rate=50.0, quantizer="round", seed=7, target_bpp=0.4)
    plan = sweep.sweep_settings(s, 3)
    assert [p.rate for p in plan] == sweep.sweep_rates("jpeg", 3) == [10.0, 50.0, 90.0]
    assert all(p.target_bpp is None and p.seed == 7 and p.codec == "jpeg" for p in plan)
    assert s.target_bpp == 0.4  # the pane's own settings are not touched


# ---------------------------------------------------------------------------- slider ↔ rate

def test_slider_maps_the_rate_range_and_back():
    u = _knobs(0.0, 1.0)
    assert u.slider_u and u.label == "Rate u" and u.decimals == 3
    assert u.to_slider(0.0) == 0 and u.to_slider(1.0) == SLIDER_STEPS
    assert u.to_slider(0.823) == 823 and u.from_slider(823) == 0.823
    for pos in (0, 1, 333, 999, SLIDER_STEPS):
        assert u.to_slider(u.from_slider(pos)) == pos
    q = _knobs(1.0, 8.0, integer=True)  # an added model's checkpoints: whole values only
    assert not q.slider_u and q.label == "Quality" and q.decimals == 0 and q.spin_step == 1.0
    assert q.from_slider(600) == 5.0 and q.from_slider(430) == 4.0
    assert "1…8" in q.tooltip
    flat = _knobs(3.0, 3.0)
    assert flat.to_slider(3.0) == 0 and flat.from_slider(700) == 3.0


def test_codec_knobs_of_registered_codecs(fake_codec):
    k = codec_knobs(FAKE)
    assert k is not None and k.slider_u and k.quantizers == ("round", "tcq")
    assert not k.decoder_choice  # one decoder: no decoder row
    j = codec_knobs("jpeg")
    assert j.family == "classical" and not j.slider_u and j.label == "Quality"
    assert j.from_slider(j.to_slider(75.0)) == 75.0
    assert codec_knobs("no-such-codec") is None


def test_codec_chooser_entries_say_what_the_weights_are(fake_codec):
    preview, line = codec_provenance(FAKE)
    assert preview and line == weights_provenance(fake_codec.describe()).line
    c = codec_choice(FAKE)
    assert c.enabled and c.preview and "PREVIEW" in c.label and "(learned)" in c.label
    assert c.tooltip == f"{FAKE}: {line}"
    j = codec_choice("jpeg")
    assert j.label == "jpeg" and not j.preview and j.line == "" and "quality" in j.tooltip
    assert provenance_text(True, line) == line.split(" · ", 1)[1]
    assert provenance_text(False, "trained · 2 M params") == "trained · 2 M params"
    assert services.learned_by_preference(["jpeg", FAKE]) == [FAKE]


# ---------------------------------------------------------------------------- bits heatmap

def _inspection():
    from lic_core.codecs import Inspection

    rng = np.random.default_rng(0)
    y = np.round(rng.normal(0, 3, (6, 4, 5))).astype(np.float32)
    bits_y = rng.uniform(0, 3, y.shape).astype(np.float32)
    return Inspection(y_hat=y, means=y * 0, scales=np.abs(y) + 1, bits_y=bits_y,
                      bits_z=rng.uniform(0, 1, (2, 1, 2)).astype(np.float32),
                      channel_groups=[2, 4], group_bits={}, header_bytes=1, z_bytes=1,
                      y_bytes=1, estimated_bits=float(bits_y.sum()))


def test_exported_heatmap_is_the_bits_map_with_a_labelled_colorbar():
    insp = _inspection()
    pic = inspect_maps.heatmap_picture(insp, 60, 70, "bits_y", None, "magma")
    assert pic.dtype == np.uint8 and pic.shape[0] >= 60 and pic.shape[1] > 70 + 16
    hm = inspect_maps.heatmap_for_image(insp, 60, 70, "bits_y")
    finite = hm[np.isfinite(hm)]
    expect = inspect_maps.colorize(hm, "magma", float(finite.min()), float(finite.max()))
    assert np.array_equal(pic[:60, :70], expect)  # the picture itself, colorbar to its right
    z = inspect_maps.heatmap_picture(insp, 60, 70, "bits_z")
    assert z.shape[0] >= 60 and not np.array_equal(z[:60, :70], pic[:60, :70])


def test_bits_chooser_and_captions():
    assert [inspect_maps.bits_kind(i, 3) for i in range(3)] == [
        ("bits_y", None), ("bits_y", 3), ("bits_z", None)]
    assert [label for _, _, label in inspect_maps.BITS_KINDS][2] == "bits_z (side info)"
    assert inspect_maps.bits_label("bits_y", 2) == "y ch 2"
    assert inspect_maps.bits_label("bits_y", 2, long=True) == "y channel 2"
    arr = np.array([[1.0, 2.0], [0.5, 0.5]])
    assert inspect_maps.bits_caption(arr, "bits_z", None) == (
        "z: 2×2 positions, 4 bits estimated, max 2.00 bits/position")


# ---------------------------------------------------------------------------- view state

def test_difference_mode_cycles_through_every_mode():
    v = ViewState()
    seen = [v.diff_mode] + [v.cycle_diff_mode() for _ in DIFF_MODES]
    assert seen == [*DIFF_MODES, DIFF_MODES[0]]


# ---------------------------------------------------------------------------- About card

def test_about_card_uses_the_provenance_words_of_lic_models(fake_codec):
    html = describe_html(FAKE)
    prov = weights_provenance(fake_codec.describe())
    assert PROVENANCE_WORDS["preview"].split(";")[0] in html and prov.line in html
    assert "{'" not in html  # values in words, not Python reprs
    assert "Classical codec" in describe_html("jpeg")
    assert "cannot describe" in describe_html("no-such-codec")


# ---------------------------------------------------------------------------- the contract

def test_every_view_module_is_under_the_lic_core_contract():
    """import-linter forbids lic_core to the modules listed in pyproject.toml; a new qt_*
    module (or any app module outside app.model) must be listed, or it would escape."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    contract = next(c for c in cfg["tool"]["importlinter"]["contracts"]
                    if c["name"] == "the studio's views reach lic_core only through app.model")
    assert contract["forbidden_modules"] == ["lic_core"]
    views = {f"app.{p.stem}" for p in (REPO / "app").glob("*.py") if p.stem != "__init__"}
    assert set(contract["source_modules"]) == views
