"""Designed TCQ rate tables (ECTCQ code fitted to the trellis's real indices, docs/methods.md §4.4):
the tables are valid coded pmfs, built bit-identically everywhere, refit what they count, and a
file names them so it decodes with exactly them or not at all."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lic_core.bitstream.format import unpack
from lic_core.codecs.base import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.errors import LicError
from lic_core.models import build_model
from lic_core.quantizer import build_quantizer
from lic_core.quantizer import tcq_designed as td
from lic_core.quantizer.tcq import DEFAULT_DELTA_U as DU
from lic_core.quantizer.tcq import tcq_tables

M, W = 15, 64


def _counts(seed: int = 0, scale: int = 1000) -> list:
    """Skewed counts inside each context's support (more zeros than the Gaussian predicts)."""
    rng = np.random.default_rng(seed)
    K = tcq_tables(DU).support
    out = np.zeros((64, 2, M + 2), dtype=np.int64)
    for i in range(64):
        for j in range(2):
            top = min(int(K[i]), M)
            p = np.exp(-np.arange(top + 1) * (1.5 + j))
            out[i, j, : top + 1] = rng.multinomial(scale, p / p.sum())
    return out.tolist()


def test_no_counts_is_the_gaussian_model():
    g = tcq_tables(DU)
    t = td.build_designed(DU, M, W, np.zeros((64, 2, M + 2), dtype=int).tolist())
    assert np.array_equal(t.support, g.support)
    np.testing.assert_allclose(t.pmf, g.pmf, rtol=1e-12, atol=1e-15)


def test_designed_rows_are_valid_coded_pmfs():
    g = tcq_tables(DU)
    t = td.build_designed(DU, M, W, _counts())
    assert np.array_equal(t.support, g.support)  # same support: same clamp, same candidates
    assert np.array_equal(t.pmf > 0, g.pmf > 0)
    np.testing.assert_allclose(t.pmf.sum(-1), 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(t.pmf, t.pmf[..., ::-1])  # symmetric in k
    assert (t.pmf[t.pmf > 0] >= 1e-9 / 2).all()


def test_refit_codes_the_counted_indices_shorter():
    counts = _counts(scale=5000)
    g, t = tcq_tables(DU), td.build_designed(DU, M, W, counts)
    n = np.array(counts)[:, :, : M + 1].astype(float)
    mid = g.k_max
    bits_g = (n * g.bits_np[:, :, mid: mid + M + 1]).sum()
    bits_t = (n * t.bits_np[:, :, mid: mid + M + 1]).sum()
    assert bits_t < 0.97 * bits_g
    # many observations of a context pull its pmf to the observed frequencies
    i, j = 20, 1
    freq0 = n[i, j, 0] / n[i, j].sum()
    assert abs(t.pmf[i, j, mid] - freq0) < abs(g.pmf[i, j, mid] - freq0)


def test_table_id_is_the_content():
    a, b = _counts(0), _counts(1)
    assert td.table_id(DU, M, W, a) == td.table_id(DU, M, W, json.loads(json.dumps(a)))
    assert td.table_id(DU, M, W, a) != td.table_id(DU, M, W, b)
    assert td.table_id(DU, M, W, a) != td.table_id(DU, M, W + 1, a)
    assert 0 < td.table_id(DU, M, W, a) < 2 ** 63
    with pytest.raises(LicError, match="counts"):
        td.build_designed(DU, M, W, a[:63])


_CHILD = r"""
import hashlib, json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from lic_core.quantizer.tcq_designed import build_designed
counts = json.load(open(sys.argv[2]))
t = build_designed(0.561, 15, 64, counts)
print(hashlib.sha256(t.pmf.tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_tables_identical_across_processes_and_threads(tmp_path):
    counts = _counts(3)
    f = tmp_path / "counts.json"
    f.write_text(json.dumps(counts))
    here = hashlib.sha256(td.build_designed(DU, M, W, counts).pmf.tobytes()).hexdigest()
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(threads), str(f)], env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == here


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = build_model("lic-lgem-tiny").eval()
    model.prior.update_tables()
    monkeypatch.setattr(td, "weights_dir", lambda: tmp_path)
    td._designed_by_id.cache_clear()
    yield model, tmp_path
    td._designed_by_id.cache_clear()


def test_design_counts_every_element_and_files_decode_with_their_tables(tiny):
    from lic_core.train.tcq_design import design

    model, folder = tiny
    rng = np.random.default_rng(2)
    crops = [torch.from_numpy(rng.random((1, 3, 64, 128), dtype=np.float32)) for _ in range(2)]
    counts, history = design(model, crops, us=(0.0, 1.0), iterations=2, log=lambda s: None)
    assert len(history) == 2
    n_y = model.config.M * (64 // 16) * (128 // 16)
    assert int(np.array(counts).sum()) == 2 * 2 * n_y  # every y element of every pass is counted

    codec = LearnedCodec("lic-lgem-tiny", model=model)
    doc = td.table_document(DU, M, W, counts, {"base_weights_hash": codec.weights_hash.hex()})
    (folder / f"lic-lgem-tiny{td.SUFFIX}").write_text(json.dumps(doc))
    img = (rng.random((64, 128, 3)) * 255).astype(np.uint8)
    res = codec.encode(img, EncodeParams(rate=0.5, quantizer="tcq"))
    header, _ = unpack(res.data)
    assert header.quantizer_params["tables"] == doc["id"]  # the default once tables ship
    dec = codec.decode(res.data)
    assert np.array_equal(dec.reconstruction, res.reconstruction)
    ins = res.inspection
    assert abs(8 * (ins.y_bytes + ins.z_bytes) - ins.estimated_bits) <= \
        0.02 * ins.estimated_bits + 64  # the estimate uses the same designed tables

    plain = codec.encode(img, EncodeParams(rate=0.5, quantizer="tcq",
                                           quantizer_params={"tables": 0}))
    assert "tables" not in unpack(plain.data)[0].quantizer_params  # older headers unchanged
    assert np.array_equal(codec.decode(plain.data).reconstruction, plain.reconstruction)

    # the tables are gone: the file is refused with a clear error, never decoded otherwise
    (folder / f"lic-lgem-tiny{td.SUFFIX}").unlink()
    td._designed_by_id.cache_clear()
    with pytest.raises(LicError, match="designed TCQ rate tables"):
        LearnedCodec("lic-lgem-tiny", model=model).decode(res.data)


def test_tables_of_other_weights_are_not_used(tiny):
    model, folder = tiny
    doc = td.table_document(DU, M, W, _counts(), {"base_weights_hash": "00" * 8})
    (folder / f"lic-lgem-tiny{td.SUFFIX}").write_text(json.dumps(doc))
    codec = LearnedCodec("lic-lgem-tiny", model=model)
    assert codec.tcq_rate_tables() is None
    assert "tables" not in codec.encode_quantizer("tcq").params()


def test_bad_table_parameter_is_a_clear_error():
    for bad in (-1, 2 ** 63, 1.5, True):
        with pytest.raises(LicError, match="tables"):
            build_quantizer("tcq", tables=bad)


def test_finetuning_quantizes_like_compress(tiny):
    """Decoder fine-tuning (docs/methods.md §4.5) sees the latents compress() makes: with designed
    tables shipped for the weights, its TCQ uses them too."""
    from lic_core.train.finetune import _without_tables, inference_quantizer

    model, folder = tiny
    h = LearnedCodec("lic-lgem-tiny", model=model).weights_hash
    model.weights_meta = {"weights_hash_bytes": h}
    assert "tables" not in inference_quantizer(model, "tcq", {"c": 0.03}).params()
    doc = td.table_document(DU, M, W, _counts(), {"base_weights_hash": h.hex()})
    (folder / f"lic-lgem-tiny{td.SUFFIX}").write_text(json.dumps(doc))
    q = inference_quantizer(model, "tcq", {"c": 0.03})
    assert q.params()["tables"] == doc["id"]
    assert _without_tables(q.params()) == {"delta_u": DU, "c": 0.03}
    assert "tables" not in inference_quantizer(model, "round").params()


def test_tables_bring_the_stream_order_they_were_designed_for(tiny):
    model, folder = tiny
    codec = LearnedCodec("lic-lgem-tiny", model=model)
    doc = td.table_document(DU, M, W, _counts(), {"base_weights_hash": codec.weights_hash.hex(),
                                                   "order": 1})
    (folder / f"lic-lgem-tiny{td.SUFFIX}").write_text(json.dumps(doc))
    assert codec.encode_quantizer("tcq").params() == {"delta_u": DU, "c": 0.03,
                                                       "tables": doc["id"], "order": 1}
    assert "order" not in codec.encode_quantizer("tcq", {"order": 0}).params()
    assert codec.encode_quantizer("tcq", {"tables": 0}).params() == {"delta_u": DU, "c": 0.03}
    img = (np.random.default_rng(5).random((64, 128, 3)) * 255).astype(np.uint8)
    res = codec.encode(img, EncodeParams(rate=0.5, quantizer="tcq"))
    assert unpack(res.data)[0].quantizer_params["order"] == 1
    assert np.array_equal(codec.decode(res.data).reconstruction, res.reconstruction)
