"""ELIC (He et al. 2022) re-implemented state-dict compatibly: the networks equal CompressAI's,
``code()`` decodes the ŷ/ẑ that CompressAI's own compress()/decompress() produce, and the two
variants are told apart from their keys.  Small random models (N=16), 128×128 pictures."""
from __future__ import annotations

import pytest

pytest.importorskip("compressai")

import torch  # noqa: E402
from compressai.models.sensetime import Elic2022Chandelier as RefChandelier  # noqa: E402
from compressai.models.sensetime import Elic2022Official as RefOfficial  # noqa: E402

from lic_core.entropy_coder.tables import TableDecoder, TableEncoder  # noqa: E402
from lic_core.errors import CheckpointError  # noqa: E402
from lic_core.models.compressai_compat import elic  # noqa: E402
from lic_core.models.compressai_compat.base import (  # noqa: E402
    clean_state_dict,
    load_compat_state_dict,
)

#: (reference class, our class, constructor kwargs): the default uneven groups for Official
#: (M − 128 = 32 in the last group), custom groups for Chandelier (its channel context of group 3
#: sees groups 0 and 2 only, so the widths differ from Official's)
VARIANTS = {
    "official": (RefOfficial, elic.Elic2022Official, {"N": 16, "M": 160}),
    "chandelier": (RefChandelier, elic.Elic2022Chandelier,
                   {"N": 16, "M": 96, "groups": [8, 8, 16, 32, 32]}),
}


def _smooth(h: int = 128, w: int = 128) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([0.5 + 0.4 * torch.sin(3 * xx + yy), 0.3 + 0.5 * xx * yy,
                        0.6 - 0.3 * torch.cos(4 * yy)])[None]


def _textured(h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return (_smooth(h, w) + 0.2 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def _reference(name: str, realistic_scales: bool = False):
    """CompressAI's model under a fixed seed with a perturbed entropy bottleneck; returns
    (updated eval model, its state dict before update())."""
    ref_cls, _, kw = VARIANTS[name]
    torch.manual_seed(0)
    ref = ref_cls(**kw).eval()
    eb = ref.latent_codec["hyper"].entropy_bottleneck
    with torch.no_grad():
        for pname, p in eb.named_parameters():
            p.add_((0.3 if pname == "quantiles" else 0.1) * torch.randn_like(p))
        if realistic_scales:
            # random weights put every scale at the 0.11 bound while a quarter of the symbols
            # are ±1 (p ≈ 3e-6 each); a scale near 1 makes the model fit its data, so the
            # byte comparison measures the coders rather than that mismatch
            for k in range(len(ref.groups)):
                last = ref.latent_codec["y"].latent_codec[f"y{k}"].entropy_parameters[-1]
                g = ref.groups[k]
                scale_half = slice(0, g) if name == "official" else slice(g, 2 * g)
                last.bias[scale_half] += 1.0
    raw = {k: v.clone() for k, v in ref.state_dict().items()}
    ref.update(force=True)
    return ref, raw


def _ours(name: str, state_dict: dict):
    _, cls, _ = VARIANTS[name]
    sd = clean_state_dict(state_dict)
    return load_compat_state_dict(cls(**cls.sizes_from_state_dict(sd)), sd)


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request):
    ref, raw = _reference(request.param)
    return request.param, ref, raw, _ours(request.param, ref.state_dict())


class _Recorder:
    """Delegates to a table coder and keeps (label, symbols) of every call."""

    def __init__(self, coder) -> None:
        self.coder, self.calls = coder, []

    def code(self, label, tables, index, symbols=None):
        out = self.coder.code(label, tables, index, symbols)
        self.calls.append((label, out.clone()))
        return out


def _round_trip(model, x):
    enc = _Recorder(TableEncoder())
    coded = model.code(enc, x, tuple(x.shape[-2:]))
    data = enc.coder.to_bytes()
    dec = _Recorder(TableDecoder(data))
    decoded = model.code(dec, None, tuple(x.shape[-2:]))
    dec.coder.finish()
    assert [lb for lb, _ in enc.calls] == [lb for lb, _ in dec.calls]
    for (label, a), (_, b) in zip(enc.calls, dec.calls):
        assert torch.equal(a, b), label
    return coded, decoded, data


def _compressai_round_trip(ref, x):
    out = ref.compress(x)
    y_hat = ref.latent_codec.decompress(out["strings"], out["shape"])["y_hat"]
    x_hat = ref.decompress(out["strings"], out["shape"])["x_hat"]
    z_hat = ref.latent_codec["hyper"].entropy_bottleneck.decompress(
        out["strings"][-1], out["shape"]["hyper"])
    nbytes = sum(len(s) for strings in out["strings"] for s in strings)
    return y_hat, z_hat, x_hat, nbytes


@torch.no_grad()
def test_forward_equals_compressai(pair):
    _, ref, _, ours = pair
    x = _textured(128, 128)
    a, b = ref(x), ours(x)
    torch.testing.assert_close(b["x_hat"], a["x_hat"], rtol=0, atol=1e-6)
    for k in ("y", "z"):
        torch.testing.assert_close(b["likelihoods"][k], a["likelihoods"][k], rtol=1e-5,
                                   atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("hw", [(128, 128), (64, 192)])
@torch.no_grad()
def test_code_decodes_compressai_latents(pair, hw):
    name, ref, _, ours = pair
    x = _textured(*hw)
    y_ref, z_ref, x_ref, _ = _compressai_round_trip(ref, x)
    coded, decoded, _ = _round_trip(ours, x)
    for c in (coded, decoded):
        assert torch.equal(c.y_hat, y_ref)
        assert torch.equal(c.z_hat, z_ref)
    torch.testing.assert_close(ours.synthesize(decoded.y_hat), x_ref, rtol=0, atol=1e-6)
    # the display tensors are full size and consistent with what was coded
    M, h, w = ours.M, hw[0] // 16, hw[1] // 16
    for t in (decoded.means, decoded.scales, decoded.likelihoods["y"]):
        assert t.shape == (1, M, h, w)
    assert decoded.likelihoods["z"].shape == decoded.z_hat.shape
    assert decoded.groups == VARIANTS[name][2].get("groups", elic.default_groups(M))
    assert torch.equal(coded.means, decoded.means) and torch.equal(coded.scales, decoded.scales)


@torch.no_grad()
def test_checkpoint_without_update_codes_the_same(pair):
    name, ref, raw, ours = pair
    assert raw["latent_codec.hyper.entropy_bottleneck._quantized_cdf"].numel() == 0
    assert raw["latent_codec.y.latent_codec.y0.y.gaussian_conditional.scale_table"].numel() == 0
    fresh = _ours(name, {f"module.{k}": v for k, v in raw.items()})  # DataParallel prefixes too
    x = _smooth()
    y_ref = _compressai_round_trip(ref, x)[0]
    _, decoded, data = _round_trip(fresh, x)
    assert torch.equal(decoded.y_hat, y_ref)
    assert data == _round_trip(ours, x)[2]


def test_looks_like_names_the_variant(pair):
    name, ref, raw, _ = pair
    for sd in (ref.state_dict(), raw, clean_state_dict(raw)):
        arch, reason = elic.looks_like(sd)
        assert arch == VARIANTS[name][1].arch and "ELIC" in reason
    sizes = VARIANTS[name][1].sizes_from_state_dict(clean_state_dict(raw))
    assert sizes == {"groups": elic.default_groups(160), **VARIANTS[name][2]}


def test_looks_like_refuses_other_models():
    from compressai.models.sensetime import Cheng2020AnchorCheckerboard
    from compressai.zoo import mbt2018_mean

    assert elic.looks_like(mbt2018_mean(quality=1).state_dict()) is None
    assert elic.looks_like(Cheng2020AnchorCheckerboard(N=16).state_dict()) is None
    assert elic.looks_like({}) is None


def test_wrong_variant_is_a_checkpoint_error(pair):
    name, ref, _, _ = pair
    other = "chandelier" if name == "official" else "official"
    cls = VARIANTS[other][1]
    sd = clean_state_dict(ref.state_dict())
    with pytest.raises(CheckpointError, match=cls.arch):
        load_compat_state_dict(cls(**cls.sizes_from_state_dict(sd)), sd)
    with pytest.raises(CheckpointError):
        cls.sizes_from_state_dict({"g_a.0.weight": torch.zeros(16, 3, 5, 5)})


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
@torch.no_grad()
def test_bytes_close_to_compressai(name):
    ref, _ = _reference(name, realistic_scales=True)
    ours = _ours(name, ref.state_dict())
    x = _smooth()
    y_ref, _, _, ref_bytes = _compressai_round_trip(ref, x)
    coded, _, data = _round_trip(ours, x)
    assert torch.equal(coded.y_hat, y_ref)
    assert len(data) <= 1.05 * ref_bytes + 32, (len(data), ref_bytes)


def test_checkerboard_packing_round_trips():
    t = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    anchors, others = elic.split_checkerboard(t)
    mask = elic.anchor_mask(4, 6)
    assert torch.equal(anchors.flatten(2), t[..., mask].reshape(2, 3, -1))
    assert torch.equal(others.flatten(2), t[..., ~mask].reshape(2, 3, -1))
    assert torch.equal(elic.merge_checkerboard(anchors, others), t)
