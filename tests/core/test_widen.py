"""Function-preserving widening of g_a / g_s (lic_core.transform.widen, issue 27 item 2's warm
arms). Invariants: the wider model computes what the narrow one does (the training forward; in
a real file the same symbols), its new units receive gradient from the first step,
and weights that cannot be widened are refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lic_core.bitstream.format import unpack
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.models import build_model
from lic_core.models.widen import widen_model
from lic_core.transform.widen import widen_state
from synthetic_photos import striped_photos

TINY = "lic-lgem-tiny"


def _trained_like(seed: int = 0):
    """A tiny model whose every weight is non-trivial (a fresh one has zero biases)."""
    torch.manual_seed(seed)
    m = build_model(TINY)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    m.prior.update_tables()  # the z coding tables a real export stores (copied by widening)
    return m.eval()


def test_the_wider_model_computes_what_the_narrow_one_does():
    narrow = _trained_like()
    N = narrow.config.N
    wide = widen_model(narrow, N + 16).eval()
    assert wide.config.N == N + 16
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in narrow.parameters())
    x = torch.rand(2, 3, 64, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = narrow(x, 0.3), wide(x, 0.3)
        assert torch.allclose(narrow.g_a(x), wide.g_a(x), atol=1e-5, rtol=0)
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5, rtol=0)
    for k in ("y", "z"):
        assert torch.allclose(a["likelihoods"][k], b["likelihoods"][k], atol=1e-6, rtol=0)
    # what does not depend on N is copied bit for bit
    ns, ws = narrow.state_dict(), wide.state_dict()
    for k in ns:
        if not k.startswith(("g_a.", "g_s.")):
            assert torch.equal(ns[k], ws[k]), k


@pytest.mark.parametrize("wider", [{"N": 8}, {"analysis_N": 8}])
def test_its_real_bitstream_codes_the_same_symbols(tmp_path, wider):
    """The same symbols: the files' coded sections are the same bytes (their headers name other
    weights and carry each picture's CRC32). The exact pictures agree to the exact engine's rounding (it picks
    each layer's fixed-point precision from all of its units, new ones too: docs/bitstream.md),
    and a wider file decodes, checked, with the wider weights."""
    img = np.array(Image.open(striped_photos(tmp_path / "p", size=80) / "img1.png").convert("RGB"))
    narrow = _trained_like(5)
    wide = widen_model(narrow, **{k: narrow.config.N + v for k, v in wider.items()}).eval()
    encs = [LearnedCodec(TINY, model=m).encode(img, EncodeParams(rate=0.6)) for m in (narrow, wide)]
    (ha, sa), (hb, sb) = unpack(encs[0].data), unpack(encs[1].data)
    assert sa == sb and ha.symbol_crcs == hb.symbol_crcs  # the coded sections, byte for byte
    assert ha.weights_hash != hb.weights_hash
    diff = np.abs(encs[0].reconstruction.astype(int) - encs[1].reconstruction.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    dec = LearnedCodec(TINY, model=wide).decode(encs[1].data)
    assert dec.info["picture_checked"]
    assert np.array_equal(dec.reconstruction, encs[1].reconstruction)


def test_the_new_units_get_gradient_from_the_first_step():
    narrow = _trained_like(1)
    wide = widen_model(narrow, narrow.config.N + 8).train()
    N = narrow.config.N
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    out = wide(x, 0.8)
    loss = ((out["x_hat"] - x) ** 2).mean() - torch.log(out["likelihoods"]["y"]).mean()
    loss.backward()
    last = wide.g_s.stages[-1]  # deconv(N → 3): (in, out, k, k); rows N… read the new units
    assert torch.count_nonzero(last.weight[N:]) == 0  # they start unread …
    assert last.weight.grad[N:].abs().sum() > 0      # … and are read after one step
    first_mid = wide.g_a.net[1].body[0]  # a bottleneck's 1×1 into its middle: (out, in, 1, 1)
    assert first_mid.weight.grad[: narrow.g_a.net[1].body[0].out_channels, N:].abs().sum() > 0


def test_weights_that_cannot_be_widened_are_refused():
    narrow = _trained_like(2)
    with pytest.raises(ValueError, match="narrower"):
        widen_model(narrow, narrow.config.N - 8)
    wide = build_model(TINY, N=narrow.config.N + 8)
    state = dict(narrow.state_dict())
    state.pop(next(k for k in state if k.startswith("g_s.")))
    with pytest.raises(ValueError, match="do not fit"):
        widen_state(state, wide)
    state = dict(narrow.state_dict())
    key = next(k for k in state if k.startswith("g_a.") and k.endswith("weight")
               and state[k].dim() == 4 and state[k].shape[-1] > 1)
    state[key] = state[key][..., :1, :1]  # another kernel size: not a wider copy of the layer
    with pytest.raises(ValueError, match="cannot widen"):
        widen_state(state, wide)


def test_a_wider_encoder_keeps_the_decoder_and_its_weights_file_says_so(tmp_path):
    """``analysis_N``: g_a alone is widened (g_s, the decoder, is the narrow model's, tensor for
    tensor); the width is in the weights file's config, so loading builds the same network, and
    configs without it are written as before."""
    from lic_core.models import load_model
    from lic_core.weights import save_weights

    narrow = _trained_like(6)
    assert "analysis_N" not in narrow.config.to_dict()
    wide = widen_model(narrow, analysis_N=narrow.config.N + 8)
    assert wide.config.N == narrow.config.N and wide.config.g_a_width == narrow.config.N + 8
    ns, ws = narrow.g_s.state_dict(), wide.g_s.state_dict()
    assert all(torch.equal(ns[k], ws[k]) for k in ns)
    path = tmp_path / f"{TINY}.safetensors"
    save_weights(wide, path, {"model": TINY, "preview": True})
    back = load_model(TINY, path)
    assert back.config.g_a_width == narrow.config.N + 8
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.allclose(back.eval()(x, 0.5)["x_hat"], narrow(x, 0.5)["x_hat"], atol=1e-3)


def test_widening_keeps_the_configuration_and_a_wider_encoder_stays_wider():
    """Only the widths change: the name and every other field are the model's own; widening
    the decoder of a model whose encoder is already wider keeps that encoder (never narrows it),
    and a negative encoder width is refused."""
    narrow = _trained_like(8)
    N = narrow.config.N
    wide = widen_model(narrow, N + 8)
    assert wide.config.name == narrow.config.name == TINY
    assert wide.config.analysis_N == 0 and wide.config.g_a_width == N + 8
    enc = widen_model(narrow, analysis_N=N + 16)
    both = widen_model(enc, N + 8)  # decoder to N + 8, the encoder stays at N + 16
    assert (both.config.N, both.config.g_a_width) == (N + 8, N + 16)
    assert both.config.name == TINY
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert torch.allclose(both.eval()(x, 0.5)["x_hat"], narrow(x, 0.5)["x_hat"], atol=1e-5)
    with pytest.raises(ValueError, match="analysis_N"):
        build_model(TINY, analysis_N=-8)
