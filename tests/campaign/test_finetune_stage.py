"""The campaign's fine-tuning stages (issue 16): the decoder learns on one quantizer's real
latents in a resumable run bound to the base weights it started from, exports a decoder whose
hash the codec mixes into the header, and a decoder tuned on other base weights is never used."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from campaign.base import over_weights_budget
from campaign.finetune import retire_finetuned
from campaign.learning_curve import read_log
from campaign.stages import open_stage
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.errors import LicError
from lic_core.models import build_model, load_model
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from lic_core.train.finetune import decoder_state, finetune
from lic_core.weights import save_weights
from test_campaign_stages import _photos, _wait_stopped

RECIPE = ["--model", "lic-lgem-tiny", "--batch", "1", "--crop", "64", "--lr", "1e-3",
          "--threads", "1", "--log-every", "1"]


def _ship_tiny(wdir: Path, seed: int) -> None:
    """Write tiny codec weights as "the shipped" lic-lgem-tiny (seed picks which)."""
    torch.manual_seed(seed)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    save_weights(m, wdir / "lic-lgem-tiny.safetensors", {"model": "lic-lgem-tiny", "preview": True})


@pytest.fixture()
def weights_dir(tmp_path, monkeypatch) -> Path:
    wdir = tmp_path / "weights"
    wdir.mkdir()
    _ship_tiny(wdir, 0)
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    return wdir


@pytest.mark.slow
def test_finetuning_resumes_its_run_and_refuses_other_weights_or_quantizer(tmp_path, weights_dir):
    data = _photos(tmp_path / "photos", size=80)
    run = tmp_path / "run"
    m = load_model("lic-lgem-tiny")
    s1 = finetune(m, data, "tcq", steps=2, batch=1, crop=64, lr=1e-3, log=lambda s: None,
                  run_dir=run, threads=1, log_every=1)
    ck = load_checkpoint(latest_checkpoint(run))
    assert ck["step"] == 2 and ck["kind"] == "finetune" and ck["cpu_s"] > 0
    assert ck["base_weights_hash"] == m.weights_meta["weights_hash_bytes"].hex()
    assert set(ck["model"]) == set(decoder_state(m))  # only the decoder's tensors

    lines: list[str] = []
    m2 = load_model("lic-lgem-tiny")
    s2 = finetune(m2, data, "tcq", steps=4, batch=1, crop=64, lr=1e-3, log=lines.append,
                  run_dir=run, threads=1, log_every=1)
    assert any("resumed ckpt-00000002.pt at step 2" in x for x in lines)
    assert s2["steps"] == 4 and s2["cpu_s"] > s1["cpu_s"]
    steps = [r["step"] for r in read_log(run / "log.jsonl") if r.get("type") == "train"]
    assert steps == [1, 2, 3, 4]  # the resumed run continued the count, nothing repeated

    # resumed with a lower learning rate (a final decay): the optimizer takes it, the
    # checkpoint records when it changed
    lines.clear()
    finetune(load_model("lic-lgem-tiny"), data, "tcq", steps=5, batch=1, crop=64, lr=2e-4,
             log=lines.append, run_dir=run, threads=1, log_every=1)
    ck = load_checkpoint(latest_checkpoint(run))
    assert ck["optimizer"]["param_groups"][0]["lr"] == 2e-4
    assert ck["lr_changes"] == [{"step": 4, "from": 1e-3, "to": 2e-4}]
    assert any("learning rate 0.001 → 0.0002 from step 4" in x for x in lines)

    # the newest checkpoint is lost (a kill before it was kept): the run resumes at step 4 and
    # the log forgets the rolled-back step 5 instead of showing it twice
    latest_checkpoint(run).unlink()
    finetune(load_model("lic-lgem-tiny"), data, "tcq", steps=5, batch=1, crop=64, lr=2e-4,
             log=lambda s: None, run_dir=run, threads=1, log_every=1)
    steps = [r["step"] for r in read_log(run / "log.jsonl") if r.get("type") == "train"]
    assert steps == [1, 2, 3, 4, 5]

    with pytest.raises(LicError, match="fine-tunes for tcq"):
        finetune(load_model("lic-lgem-tiny"), data, "rdoq", steps=6, batch=1, crop=64,
                 log=lambda s: None, run_dir=run, threads=1)
    _ship_tiny(weights_dir, 1)  # the campaign installed new codec weights
    with pytest.raises(LicError, match="other lic-lgem-tiny weights"):
        finetune(load_model("lic-lgem-tiny"), data, "tcq", steps=6, batch=1, crop=64,
                 log=lambda s: None, run_dir=run, threads=1)


@pytest.mark.slow
def test_finetune_stage_start_resume_export_install_and_goes_stale(tmp_path, weights_dir):
    data = _photos(tmp_path / "photos", size=80)
    c = open_stage("finetune-tcq", tmp_path / "campaign")
    assert "no training yet" in c.status()
    msg = c.start(data=str(data), recipe=RECIPE, extra=["--steps", "3"], nice=5)
    assert "finetune-tcq stage started" in msg and "shipped weights' decoder" in msg
    _wait_stopped(c)
    ck = load_checkpoint(latest_checkpoint(c.run_dir))
    assert ck["step"] == 3 and ck["quantizer"] == "tcq", c.out_file.read_text()[-2000:]
    line = c.status()
    assert "step 3" in line and "CPU-h" in line and "\n" not in line

    msg = c.start(extra=["--steps", "5"], nice=5)
    assert "resuming ckpt-00000003.pt" in msg
    _wait_stopped(c)
    assert load_checkpoint(latest_checkpoint(c.run_dir))["step"] == 5

    s = c.export(eval_dir=str(data), eval_limit=1, us=(0.0, 0.5, 1.0),
                           install=True, force_install=True, progress=lambda m: None)
    name = "lic-lgem-tiny-ft-tcq"
    assert s["name"] == name and s["installed"]
    for suffix in (".safetensors", ".md", ".json", ".curve.png"):
        assert (weights_dir / f"{name}{suffix}").is_file()
    card = json.loads((weights_dir / f"{name}.json").read_text())
    assert card["total_steps"] == 5 and card["cpu_hours"] > 0 and card["quantizer"] == "tcq"
    assert set(card["eval"]["curves"]) == {"tcq/before", "tcq/after", "round/before"}
    # before and after decode the same bitstreams: same bpp, (generally) another picture
    assert card["eval"]["curves"]["tcq/before"]["bpp"] == card["eval"]["curves"]["tcq/after"]["bpp"]
    table = json.loads((weights_dir / "lic-lgem-tiny.quantizers.json").read_text())
    assert table["base_weights_hash"] == card["base_weights_hash"]
    assert "tcq/after" in table["curves"]

    # the codec now decodes TCQ files with the fine-tuned decoder, bound into the header hash
    img = np.asarray(Image.open(data / "img1.png"))
    tuned, base = LearnedCodec("lic-lgem-tiny"), LearnedCodec("lic-lgem-tiny", use_finetuned=False)
    r = tuned.encode(img, EncodeParams(rate=0.5, quantizer="tcq"))
    assert "tcq" in tuned.describe()["finetuned_decoders"]
    from lic_core.cli.cmd_models import _finetuned_fields

    (label, text), = _finetuned_fields("lic-lgem-tiny", tuned.describe())  # `lic models`
    assert label == "fine-tuned" and text.startswith("tcq: decoder tuned on its real")
    d = tuned.decode(r.data)
    assert np.array_equal(d.reconstruction, r.reconstruction)
    assert d.info["finetuned_for"] == "tcq"  # the File info tab says whose decoder it was
    assert "finetuned_for" not in tuned.decode(
        tuned.encode(img, EncodeParams(rate=0.5, quantizer="round")).data).info
    assert r.data != base.encode(img, EncodeParams(rate=0.5, quantizer="tcq")).data

    # new codec weights: the decoder is stale (never used), and the stage starts afresh on them
    _ship_tiny(weights_dir, 1)
    fresh = LearnedCodec("lic-lgem-tiny")
    r2 = fresh.encode(img, EncodeParams(rate=0.5, quantizer="tcq"))
    assert fresh.stale_finetuned == {"tcq": f"{name}.safetensors"}
    assert "finetuned_decoders" not in fresh.describe()
    assert "ignored (tuned on other weights)" in _finetuned_fields(
        "lic-lgem-tiny", fresh.describe())[0][1]
    plain = LearnedCodec("lic-lgem-tiny", use_finetuned=False)
    assert r2.data == plain.encode(img, EncodeParams(rate=0.5, quantizer="tcq")).data
    assert "changed since this stage started" in c.status()
    msg = c.start(extra=["--steps", "1"], nice=5)
    assert "starting afresh" in msg
    _wait_stopped(c)
    assert load_checkpoint(latest_checkpoint(c.run_dir))["step"] == 1
    assert list(c.root.glob("finetune-tcq.stale-*"))

    # a codec install retires the decoders tuned on the weights it replaced (and their table),
    # and TCQ rate tables designed on them
    from lic_core.quantizer import tcq_designed as td

    zero = [[[0] * 17, [0] * 17] for _ in range(64)]
    (weights_dir / f"lic-lgem-tiny{td.SUFFIX}").write_text(json.dumps(
        td.table_document(0.561, 15, 64, zero, {"base_weights_hash": "00" * 8})))
    assert retire_finetuned(weights_dir, "lic-lgem-tiny") == ["tcq", "tcq rate tables"]
    assert not (weights_dir / f"lic-lgem-tiny{td.SUFFIX}").exists()
    assert not list(weights_dir.glob(f"{name}.*"))
    assert not (weights_dir / "lic-lgem-tiny.quantizers.json").exists()
    assert (weights_dir / "lic-lgem-tiny.safetensors").is_file()


def test_an_install_that_would_break_the_weights_budget_is_refused(tmp_path):

    wdir, out = tmp_path / "weights", tmp_path / "export"
    wdir.mkdir()
    out.mkdir()
    (wdir / "codec.safetensors").write_bytes(b"x" * 600)
    (wdir / "codec-ft-round.safetensors").write_bytes(b"x" * 300)
    new = out / "codec-ft-rdoq.safetensors"
    new.write_bytes(b"x" * 100)
    assert over_weights_budget(wdir, [new], budget=1000) is None  # 1000 bytes: just fits
    new.write_bytes(b"x" * 101)
    why = over_weights_budget(wdir, [new], budget=1000)
    assert why is not None and "budget" in why
    # a file replacing one of the same name counts once
    again = out / "codec-ft-round.safetensors"
    again.write_bytes(b"x" * 400)
    assert over_weights_budget(wdir, [again], budget=1000) is None
    assert over_weights_budget(tmp_path / "absent", [new], budget=1000) is None
