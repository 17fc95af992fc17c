"""Frozen codec weights (issue 27 item 3): after a release replaced the weights of a codec, files
written with the outgoing weights — with the base decoder, a fine-tuned decoder and designed TCQ
tables, or the GAN decoder — still decode to the very same picture from their frozen copy, and a
file of weights that were never frozen is still refused, never misread."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lic_core.codecs import EncodeParams
from lic_core.codecs.frozen import decoding_files, frozen_codec, frozen_folder, header_hashes
from lic_core.codecs.learned import LearnedCodec
from lic_core.errors import LicFormatError
from lic_core.models import build_model, load_model
from lic_core.train.finetune import save_finetuned
from lic_core.weights import read_weights_hash, save_weights
from synthetic_photos import striped_photos

TINY = "lic-lgem-tiny"


def ship_tiny(wdir: Path, seed: int) -> str:
    """Tiny codec weights as the shipped lic-lgem-tiny (``seed`` picks which); their hash."""
    torch.manual_seed(seed)
    m = build_model(TINY).eval()
    m.prior.update_tables()
    with torch.no_grad():  # a random g_a is nearly flat: spread the latents so symbols vary
        m.gains.gain.weight.mul_(6.0)
    save_weights(m, wdir / f"{TINY}.safetensors", {"model": TINY, "preview": True})
    return read_weights_hash(wdir / f"{TINY}.safetensors")


def ship_dependents(wdir: Path, seed: int, quantizers: tuple = ("tcq",)) -> None:
    """Decoders tuned for ``quantizers`` and a GAN decoder (g_s nudged) and designed TCQ tables
    for the shipped tiny weights, as the campaign's stages would install them."""
    from lic_core.quantizer import tcq_designed as td

    model = load_model(TINY, wdir / f"{TINY}.safetensors")
    base_hash = model.weights_meta["weights_hash_bytes"].hex()
    torch.manual_seed(seed + 100)
    for path in [wdir / f"{TINY}-ft-{q}.safetensors" for q in quantizers] + [
            wdir / f"{TINY}-gan.safetensors"]:
        m = load_model(TINY, wdir / f"{TINY}.safetensors")
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n.startswith("g_s."):
                    p.add_(0.02 * torch.randn_like(p))
        save_finetuned(m, path, {"base_model": TINY, "test": True})
    counts = [[[5 + seed, 3, 1] + [0] * 14, [7, 2, 1] + [0] * 14] for _ in range(64)]
    (wdir / f"{TINY}{td.SUFFIX}").write_text(json.dumps(td.table_document(
        0.561, 15, 64, counts, {"base_model": TINY, "base_weights_hash": base_hash,
                                "order": 1})))


def freeze(wdir: Path) -> Path:
    """What a release does to the outgoing weights: their decoding files into frozen/."""
    h = read_weights_hash(wdir / f"{TINY}.safetensors")
    dest = frozen_folder(TINY, h, wdir)
    dest.mkdir(parents=True)
    for f in decoding_files(wdir, TINY):
        shutil.copy2(f, dest / f.name)
        f.unlink()
    return dest


@pytest.fixture()
def wdir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(d))
    return d


def test_files_of_replaced_weights_decode_from_their_frozen_copy(tmp_path, wdir):
    photo = np.asarray(Image.open(striped_photos(tmp_path / "photos", n=1, size=80) / "img0.png"))
    old_hash = ship_tiny(wdir, 0)
    ship_dependents(wdir, 0)
    old = LearnedCodec(TINY)
    assert old.tcq_rate_tables() is not None and "gan" in old.decoders
    files = {how: old.encode(photo, EncodeParams(rate=0.6, quantizer=q, decoder=d))
             for how, q, d in (("round", "round", "mse"), ("tcq", "tcq", "mse"),
                               ("gan", "round", "gan"))}
    assert len({r.data[:64] for r in files.values()}) == 3  # three different header hashes

    # the files that decode them: weights, decoders bound to them, their tables; a decoder tuned
    # on other weights is left out
    stale = wdir / f"{TINY}-ft-rdoq.safetensors"
    save_finetuned(build_model(TINY), stale, {"base_model": TINY})  # names no base weights
    names = sorted(f.name for f in decoding_files(wdir, TINY))
    assert names == sorted([f"{TINY}.safetensors", f"{TINY}-ft-tcq.safetensors",
                            f"{TINY}-gan.safetensors", f"{TINY}.tcq-tables.json"])
    stale.unlink()

    # a release: the outgoing weights frozen by hash, new weights (and no dependents yet) shipped
    dest = freeze(wdir)
    assert dest.name == f"{TINY}-{old_hash}"
    assert {f"{TINY}.safetensors", f"{TINY}-ft-tcq.safetensors"} <= {f.name for f in
                                                                      dest.iterdir()}
    new_hash = ship_tiny(wdir, 1)
    assert new_hash != old_hash and not (wdir / f"{TINY}-gan.safetensors").exists()
    codec = LearnedCodec(TINY)
    for how, r in files.items():
        d = codec.decode(r.data)
        assert np.array_equal(d.reconstruction, r.reconstruction), how
        assert d.info["picture_checked"] and d.info["symbols_checked"]
    once = frozen_codec(TINY, bytes.fromhex(old_hash), LearnedCodec)
    assert once is frozen_codec(TINY, bytes.fromhex(old_hash), LearnedCodec)  # built once
    assert len(header_hashes(dest, TINY)) == 3

    # the new weights encode and decode as usual, and never touch the frozen ones
    r2 = codec.encode(photo, EncodeParams(rate=0.6, quantizer="tcq"))
    assert r2.data[:64] != files["tcq"].data[:64]
    assert np.array_equal(codec.decode(r2.data).reconstruction, r2.reconstruction)

    # weights that were never frozen: refused as before (the hash names nothing here)
    other = tmp_path / "other"
    other.mkdir()
    ship_tiny(other, 2)
    r3 = LearnedCodec(TINY, weights_path=other / f"{TINY}.safetensors").encode(
        photo, EncodeParams(rate=0.6))
    with pytest.raises(LicFormatError, match="weights mismatch"):
        codec.decode(r3.data)
