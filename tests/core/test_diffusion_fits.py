"""The diffusion decoder refuses, in one line and before any work, a picture the machine cannot
hold (it is global, so it cannot be tiled: lic_core/decoder/diffusion/fits.py, issue 28)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lic_core.decoder.diffusion import fits
from lic_core.errors import LicError

V2 = Path(__file__).resolve().parent / "fixtures" / "lic_v2"


def test_a_24_megapixel_picture_is_refused_on_a_machine_with_8_gb_free():
    with pytest.raises(LicError) as err:
        fits.check_diffusion_fits(4000, 6000, available=8e9)
    msg = str(err.value)
    assert "\n" not in msg and "diffusion decoder" in msg and "24.0-megapixel" in msg
    assert "mse or gan decoder" in msg


def test_a_kodak_picture_fits_and_unknown_memory_never_refuses(monkeypatch):
    fits.check_diffusion_fits(512, 768, available=8e9)  # 1.25 GB needed
    monkeypatch.setattr(fits, "available_bytes", lambda: None)
    fits.check_diffusion_fits(40000, 60000)  # unknown memory: no refusal on a guess


def test_the_estimate_grows_with_the_pixels():
    small, big = fits.diffusion_bytes(512, 768), fits.diffusion_bytes(1024, 1536)
    assert big - small == pytest.approx(3 * (small - fits.FIXED_BYTES))


def test_a_diffusion_file_is_refused_before_decoding_when_memory_is_short(monkeypatch):
    """The v2 diffusion fixture: with (pretend) 1 MB free the decode stops with the one-line
    error before its first step; with memory it still decodes (test_format_fixtures)."""
    manifest = json.loads((V2 / "manifest.json").read_text(encoding="utf-8"))
    case = next(c for c in manifest["cases"] if c["file"].endswith("_diffusion.lic"))
    import importlib.util

    from lic_core.bitstream import peek_header

    spec = importlib.util.spec_from_file_location("lic_v2_make_fixtures", V2 / "make_fixtures.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    codec = maker.make_codec(case["codec"])
    data = (V2 / case["file"]).read_bytes()
    if peek_header(data).weights_hash != codec.weights_hash:
        pytest.skip("this torch version initialises the seeded tiny model differently")
    steps = []
    monkeypatch.setattr(fits, "available_bytes", lambda: 1 << 20)
    with pytest.raises(LicError, match="diffusion decoder holds the whole picture"):
        codec.decode(data, progress=lambda f, msg="": steps.append(msg))
    assert not any("diffusion step" in s for s in steps)
