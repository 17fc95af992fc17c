"""benchmarks/generative_kodak.py --from-cards (issue 26's table): our three rows come from the
installed decoders' cards only when those measured the same files of the installed weights — the
two cards' MSE rows must agree exactly — and are refused otherwise."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import generative_kodak as gk  # noqa: E402

US = [0.0, 0.5, 1.0]


def _row(bpp: float, lpips: float) -> list:
    return [{"u": u, "bpp": bpp * (1 + u), "psnr": 25 + u, "ms_ssim": 0.9, "lpips": lpips - u / 10}
            for u in US]


def _file(path: Path, meta: dict) -> None:
    save_file({"w": torch.zeros(1)}, str(path), metadata={k: (v if isinstance(v, str) else
                                                              json.dumps(v)) for k, v in
                                                          meta.items()})


@pytest.fixture()
def wdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(tmp_path))
    _file(tmp_path / "codec.safetensors", {"weights_hash": "ab" * 8})
    return tmp_path


def _cards(wdir: Path, mse_gan: list, mse_diff: list, base: str = "ab" * 8,
           images=("a.png", "b.png")) -> None:
    gan = {"base_weights_hash": base, "exported": "t1",
           "eval": {"images": list(images), "us": US,
                    "rows": {"MSE decoder (g_s)": mse_gan, "GAN decoder": _row(0.1, 0.3)}}}
    diff = {"codec_weights_hash": base, "exported": "t2",
            "eval": {"images": ["a.png", "b.png"], "steps": 6, "seed": 0,
                     "rows": {"MSE decoder (g_s)": mse_diff, "diffusion decoder": _row(0.1, 0.35)}}}
    _file(wdir / "codec-gan.safetensors", {"weights_hash": "01" * 8, "card": gan})
    _file(wdir / "codec-diffusion.safetensors", {"weights_hash": "02" * 8, "card": diff})


def test_rows_come_from_cards_that_decoded_the_same_files(wdir):
    _cards(wdir, _row(0.1, 0.45), _row(0.1, 0.45))
    rows, meta = gk.rows_from_cards("codec", US)
    assert list(rows) == ["codec MSE decoder", "codec GAN decoder", "codec diffusion decoder"]
    assert rows["codec GAN decoder"][0]["lpips"] == pytest.approx(0.3)
    assert meta["from_cards"]["gan"]["weights_hash"] == "01" * 8


@pytest.mark.parametrize("case, match", [
    ("mse", "did not decode the same files"),
    ("base", "installed is"),
    ("images", "different images"),
    ("us", "slider points"),
])
def test_anything_else_is_refused(wdir, case, match):
    mse = _row(0.1, 0.45)
    if case == "mse":
        _cards(wdir, mse, _row(0.1001, 0.45))
    elif case == "base":
        _cards(wdir, mse, mse, base="cd" * 8)
    elif case == "images":
        _cards(wdir, mse, mse, images=("a.png", "c.png"))
    else:
        _cards(wdir, mse, mse)
    with pytest.raises(ValueError, match=match):
        gk.rows_from_cards("codec", [0.0, 0.4, 1.0] if case == "us" else US)
