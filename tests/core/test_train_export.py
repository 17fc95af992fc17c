"""Export (lic_core.train.export): fp16 safetensors that load back, stable weights hash, card."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from lic_core.train import loop
from lic_core.train.export import ExportError, export_checkpoint
from lic_core.weights import load_weights, weights_hash
from test_train_loop import cfg_for, make_images, quiet


def test_export_fp16_loadable_stable_hash_and_card(tmp_path):
    res = loop.train(cfg_for(tmp_path, "run", steps=3, ema=0.9), log=quiet)
    evald = make_images(tmp_path / "eval", n=2, size=(64, 96))
    meta = export_checkpoint(res["checkpoint"], "demo-preview", tmp_path / "w", preview=True,
                             eval_dir=evald)
    st = tmp_path / "w" / "demo-preview.safetensors"
    with safe_open(str(st), framework="pt") as f:
        raw_meta = f.metadata()
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    card = json.loads(raw_meta["card"])
    assert card["preview"] is True and card["steps"] == 3 and card["ema"] == 0.9
    assert raw_meta["weights_hash"] == meta["weights_hash"]
    assert "PREVIEW" in (tmp_path / "w" / "demo-preview.md").read_text()
    side = json.loads((tmp_path / "w" / "demo-preview.json").read_text())
    assert side["weights_hash"] == meta["weights_hash"] and side["data"]["images"] == 4
    # ≥ 6 slider points (estimated mode: the stand-in is no LicModel)
    pts = side["eval"]["points"]
    assert len(pts) >= 6 and all(p["bpp"] > 0 and p["psnr"] > 0 for p in pts)
    # the file loads back; the hash of what was loaded equals the header hash
    state, m = load_weights(st)
    assert weights_hash(state).hex() == meta["weights_hash"] == m["weights_hash"]
    model = loop.resolve_model("test_train_loop:build_standin")
    model.load_state_dict(state)
    # the exported weights are the EMA weights rounded to fp16
    from lic_core.train.checkpoint import load_checkpoint
    ema = load_checkpoint(res["checkpoint"])["ema"]["shadow"]
    k = "g_a.0.weight"
    assert torch.equal(state[k], ema[k].half().float())
    # a second export of the same checkpoint gives the same hash; refusing to overwrite
    with pytest.raises(ExportError):
        export_checkpoint(res["checkpoint"], "demo-preview", tmp_path / "w")
    again = export_checkpoint(res["checkpoint"], "demo-preview", tmp_path / "w2", preview=True)
    assert again["weights_hash"] == meta["weights_hash"]
    raw = export_checkpoint(res["checkpoint"], "demo-raw", tmp_path / "w2", use_ema=False)
    assert raw["weights_hash"] != meta["weights_hash"] and raw["preview"] is False


@pytest.mark.slow
@pytest.mark.shared
def test_cli_export_real_tiny_model(tmp_path, kodak_dir):
    pytest.importorskip("lic_core.models")
    from lic_core.cli import main
    from lic_core.models import load_model
    res = loop.train(cfg_for(tmp_path, "tiny", model="lic-lgem-tiny", steps=2), log=quiet)
    rc = main(["export", res["checkpoint"], "--name", "tiny-preview", "--out",
               str(tmp_path / "w"), "--preview", "--eval-dir", str(kodak_dir),
               "--eval-limit", "1"])
    assert rc == 0
    model = load_model("tiny-preview", tmp_path / "w" / "tiny-preview.safetensors")
    assert model.config.preview is True and model.config.name == "tiny-preview"
    card = json.loads((tmp_path / "w" / "tiny-preview.json").read_text())
    assert len(card["eval"]["points"]) == 6 and card["eval"]["images"] == 1
    assert card["eval"]["mode"] == "coded", card["eval"]["note"]   # real bitstreams
    assert all("ms_ssim" in p for p in card["eval"]["points"])
