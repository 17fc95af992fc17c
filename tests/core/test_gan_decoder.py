"""The GAN decoder of the learned codec (issue 26): g_s retrained with HiFiC's generator objective
on frozen latents, decoded on the exact path, bound to the codec weights it learned on (tiny
models; ``$LIC_WEIGHTS_DIR`` points at a temporary weights folder). Its campaign stage:
tests/campaign/test_gan_stage.py."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lic_core.bitstream import unpack
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.errors import LicError, LicFormatError
from lic_core.models import build_model, load_model
from lic_core.paths import gan_weights_path
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from lic_core.train.finetune import inference_quantizer, save_finetuned
from lic_core.train.gan_decoder import (
    GanDecoderTrainer,
    build_discriminator,
    card_markdown,
    train_gan_decoder,
)
from lic_core.train.hific.losses import DEFAULT_LOSS
from lic_core.train.losses.perceptual import TinyPerceptual
from lic_core.weights import save_weights
from synthetic_photos import striped_photos as _photos


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


REPO = Path(__file__).resolve().parents[2]
TINY = "lic-lgem-tiny"

def _ship_tiny(wdir: Path, seed: int) -> None:
    """Tiny codec weights as "the shipped" lic-lgem-tiny (``seed`` picks which)."""
    torch.manual_seed(seed)
    m = build_model(TINY).eval()
    m.prior.update_tables()
    with torch.no_grad():  # a random g_a is nearly flat: spread the latents so symbols vary
        m.gains.gain.weight.mul_(6.0)
    save_weights(m, wdir / f"{TINY}.safetensors", {"model": TINY, "preview": True})


def _ship_gan(wdir: Path, seed: int = 3) -> Path:
    """A GAN decoder file on the shipped tiny weights (g_s moved off the base, so it differs)."""
    model = load_model(TINY)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.g_s.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    path = gan_weights_path(TINY, wdir)
    save_finetuned(model, path, {"kind": "test GAN decoder", "preview": True}, card_markdown)
    return path


def _tiny_disc(model):
    return build_discriminator(model, 4, (8, 8, 16, 16))


@pytest.fixture()
def weights_dir(tmp_path, monkeypatch) -> Path:
    wdir = tmp_path / "weights"
    wdir.mkdir()
    _ship_tiny(wdir, 0)
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    return wdir


def _image(data: Path) -> np.ndarray:
    return np.array(Image.open(data / "img1.png").convert("RGB"))


def test_a_few_steps_reduce_the_generator_loss_with_hifics_weights(tmp_path, weights_dir):
    model = load_model(TINY)
    encoder = {k: v.clone() for k, v in model.g_a.state_dict().items()}
    tr = GanDecoderTrainer(model, TinyPerceptual(), _tiny_disc(model), lr=1e-3, gan_start=12)
    x = torch.stack([torch.from_numpy(_image(_photos(tmp_path / "p", size=64))).permute(2, 0, 1)
                     .float() / 255.0] * 2)
    lat = tr.latents(x, 0.4, inference_quantizer(model, "round"))
    warm = [tr.step(x, lat) for _ in range(12)]  # warm-up: MSE + LPIPS only
    assert not any(w["gan"] for w in warm) and warm[-1]["loss"] < 0.8 * warm[0]["loss"]
    d_before = [p.detach().clone() for p in tr.disc.parameters()]
    logs = tr.step(x, lat)  # the GAN term joins
    cfg = DEFAULT_LOSS
    assert logs["gan"] and logs["loss"] == pytest.approx(
        cfg.C * cfg.C_D * logs["mse255"] + cfg.w_P * logs["lpips"] + cfg.C_P * logs["g_gan"],
        rel=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, tr.disc.parameters()))
    assert all(torch.equal(v, model.g_a.state_dict()[k]) for k, v in encoder.items())  # frozen
    tr.release()
    assert all(p.requires_grad for p in model.parameters())


def test_a_run_checkpoints_resumes_and_is_bound_to_its_base_weights(tmp_path, weights_dir):
    data = _photos(tmp_path / "photos", size=80)
    run = tmp_path / "run"

    def train(steps, **kw):
        m = load_model(TINY)
        return train_gan_decoder(m, data, steps, batch=1, crop=64, lr=1e-3, gan_start=1,
                                 run_dir=run, threads=1, log_every=1,
                                 perceptual=TinyPerceptual(), disc=_tiny_disc(m), **kw)

    s1 = train(2, log=lambda s: None)
    ck = load_checkpoint(latest_checkpoint(run))
    assert ck["step"] == 2 and ck["kind"] == "gan-decoder" and ck["cpu_s"] > 0
    assert ck["base_weights_hash"] == load_model(TINY).weights_meta["weights_hash_bytes"].hex()
    assert ck["disc"] and ck["disc_optimizer"] and ck["quantizer"] == "round"
    lines: list[str] = []
    s2 = train(3, log=lines.append)
    assert any("resumed ckpt-00000002.pt at step 2" in x for x in lines)
    # the resumed run books on from the checkpoint's CPU seconds (s1's own total also counts
    # what its process did after that checkpoint, and in a long test session other threads)
    assert s2["steps"] == 3 and s2["cpu_s"] > ck["cpu_s"] > 0 and s1["cpu_s"] >= ck["cpu_s"]
    spent = load_checkpoint(latest_checkpoint(run))["cpu_s"] / 60.0
    s3 = train(10, cpu_budget_min=spent, log=lines.append)  # the budget is already spent
    assert s3["steps"] == 3 and s3["reason"] == "cpu budget"
    assert [r["step"] for r in read_log(run / "log.jsonl") if r.get("type") == "train"] == [1, 2, 3]
    _ship_tiny(weights_dir, 1)  # the campaign installed new codec weights
    with pytest.raises(LicError, match="other lic-lgem-tiny weights"):
        train(4, log=lambda s: None)


def test_gan_files_decode_through_the_exact_path_and_name_their_decoder(tmp_path, weights_dir):
    from lic_core.cli.cmd_models import describe_block

    img = _image(_photos(tmp_path / "photos", size=80))
    codec = LearnedCodec(TINY)
    assert codec.decoders == ("mse",)
    _ship_gan(weights_dir)  # installed while the codec is in use (a campaign install)
    assert codec.decoders == ("mse", "gan")
    gan = codec.encode(img, EncodeParams(rate=0.5, decoder="gan"))
    mse = codec.encode(img, EncodeParams(rate=0.5))
    header = unpack(gan.data)[0]
    assert header.decoder == "gan" and [p.decoder for p in header.picture_crcs] == ["gan"]
    assert header.weights_hash != codec.weights_hash  # SHA-256(base ‖ GAN decoder)[:8]
    assert unpack(gan.data)[1] == unpack(mse.data)[1]  # the same bits: only the decoder differs
    assert not np.array_equal(gan.reconstruction, mse.reconstruction)
    d = codec.decode(gan.data)
    assert np.array_equal(d.reconstruction, gan.reconstruction) and d.info["picture_checked"]
    # one file, every picture: the MSE picture of the GAN file, the GAN picture of the MSE file
    assert np.array_equal(codec.decode(gan.data, decoder="mse").reconstruction, mse.reconstruction)
    assert np.array_equal(codec.decode(mse.data, decoder="gan").reconstruction, gan.reconstruction)
    info = codec.describe()
    assert info["decoders"] == ["mse", "gan"] and info["gan_decoder"]["hash"] == \
        header.weights_hash.hex()
    row = {"name": TINY, "family": "learned", "available": True, "reason": "", "describe": info,
           "rate_range": (0, 1), "rate_label": "slider", "default_rate": 0.5, "quantizers": [],
           "decoders": list(codec.decoders), "file_extension": ".lic"}
    assert any(line.split()[0] == "gan" and "PREVIEW" in line for line in describe_block(row))

    # new codec weights: the GAN decoder is stale (never offered), its files are refused in one
    # line, and a codec install retires it
    _ship_tiny(weights_dir, 1)
    fresh = LearnedCodec(TINY)
    assert fresh.decoders == ("mse",) and fresh.stale_gan == f"{TINY}-gan.safetensors"
    assert fresh.describe()["stale_gan_decoder"] == f"{TINY}-gan.safetensors"
    with pytest.raises(LicFormatError) as e:
        fresh.decode(gan.data)
    assert "weights mismatch" in str(e.value) and "GAN decoder" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(LicError, match="gan.safetensors was trained on other lic-lgem-tiny"):
        fresh.encode(img, EncodeParams(rate=0.5, decoder="gan"))
    from campaign.finetune import retire_finetuned  # what a codec install does

    assert retire_finetuned(weights_dir, TINY) == ["gan"]
    assert not list(weights_dir.glob(f"{TINY}-gan.*"))
    with pytest.raises(LicFormatError, match="there is no GAN decoder"):
        LearnedCodec(TINY).decode(gan.data)


_WORKER = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from lic_core.codecs.learned import LearnedCodec
codec = LearnedCodec("lic-lgem-tiny")
out = {"threads": torch.get_num_threads(), "decoders": list(codec.decoders)}
for f in sorted(Path(sys.argv[2]).glob("*.lic")):
    r = codec.decode(f.read_bytes())
    assert r.info["symbols_checked"] and r.info["picture_checked"], f.name
    out[f.name] = hashlib.sha256(np.ascontiguousarray(r.reconstruction).tobytes()).hexdigest()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_gan_files_decode_bit_exactly_in_other_processes_with_1_2_4_threads(tmp_path,
                                                                             weights_dir):
    _ship_gan(weights_dir)
    img = _image(_photos(tmp_path / "photos", size=100))[:70]
    codec = LearnedCodec(TINY)
    files = tmp_path / "files"
    files.mkdir()
    expected = {}
    for name, params in (("gan_round.lic", EncodeParams(rate=0.3, decoder="gan")),
                         ("gan_tcq.lic", EncodeParams(rate=0.8, quantizer="tcq", decoder="gan"))):
        r = codec.encode(img, params)
        (files / name).write_bytes(r.data)
        expected[name] = hashlib.sha256(np.ascontiguousarray(r.reconstruction).tobytes()).hexdigest()
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_WAIT_POLICY": "passive"}
    for threads in (1, 2, 4):
        r = subprocess.run([sys.executable, "-c", _WORKER, str(threads), str(files)], cwd=REPO,
                           capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert got.pop("threads") == threads and got.pop("decoders") == ["mse", "gan"]
        assert got == expected, f"{threads} threads"


def test_perceptual_weight_is_the_loss_and_is_recorded_as_a_departure(tmp_path, weights_dir):
    """``--perceptual-weight`` sets w_P of the objective (the loss is C·C_D·MSE + w_P·LPIPS, no
    GAN term yet); the checkpoint's ``loss`` and ``train`` record it, and the card's objective
    line names the departure from HiFiC's constants (the default names none)."""
    from campaign.gan import objective_constants

    data = _photos(tmp_path / "photos", size=80)
    m = load_model(TINY)
    train_gan_decoder(m, data, 1, batch=1, crop=64, lr=1e-3, gan_start=5, run_dir=tmp_path / "r",
                      threads=1, log_every=1, perceptual=TinyPerceptual(), disc=_tiny_disc(m),
                      log=lambda s: None, perceptual_weight=2.5)
    ck = load_checkpoint(latest_checkpoint(tmp_path / "r"))
    assert ck["loss"]["w_P"] == 2.5 and ck["train"]["w_P"] == 2.5
    rec = [r for r in read_log(tmp_path / "r" / "log.jsonl") if r.get("type") == "train"][-1]
    cfg = DEFAULT_LOSS
    assert rec["loss"] == pytest.approx(cfg.C * cfg.C_D * rec["mse255"] + 2.5 * rec["lpips"],
                                        rel=1e-4)
    assert "except w_P = 2.5 (HiFiC: 1)" in objective_constants(ck["loss"])
    # resumed without the flag: back to HiFiC's 1.0, recorded as a change of the run's settings
    m2 = load_model(TINY)
    train_gan_decoder(m2, data, 2, batch=1, crop=64, lr=1e-3, gan_start=5, run_dir=tmp_path / "r",
                      threads=1, log_every=1, perceptual=TinyPerceptual(), disc=_tiny_disc(m2),
                      log=lambda s: None)
    ck2 = load_checkpoint(latest_checkpoint(tmp_path / "r"))
    assert ck2["loss"]["w_P"] == 1.0
    assert ck2["train_changes"][-1] == {"step": 1, "from": {"w_P": 2.5}, "to": {"w_P": 1.0}}
    assert "except" not in objective_constants(dict(vars(DEFAULT_LOSS)))
    with pytest.raises(LicError, match="perceptual-weight"):
        train_gan_decoder(load_model(TINY), data, 1, run_dir=tmp_path / "r2",
                          perceptual=TinyPerceptual(), perceptual_weight=0.0)
