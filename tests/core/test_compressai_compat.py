"""lic_core's CompressAI-compatible architectures against CompressAI itself.

For each zoo architecture, a small CompressAI model with random (seeded) weights is saved as a
state dict and loaded into ours.  The tests prove: the networks compute the same numbers (eval
forward, bit for bit); coding with our table coder decodes exactly the ŷ and ẑ that CompressAI's
own compress()/decompress() decode, hence the same picture; checkpoints saved without
``update()``, with old key names or DataParallel prefixes load to the same model; the
architecture is recognized from the tensors; a wrong name is refused with a message that names
both; and our streams are no larger than CompressAI's for the same latents.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

compressai = pytest.importorskip("compressai")

import torch  # noqa: E402
from compressai.layers import GDN as CaGDN  # noqa: E402
from compressai.models import (  # noqa: E402
    Cheng2020Anchor,
    Cheng2020Attention,
    FactorizedPrior,
    FactorizedPriorReLU,
    JointAutoregressiveHierarchicalPriors,
    MeanScaleHyperprior,
    ScaleHyperprior,
)

from lic_core.entropy_coder.tables import TableDecoder, TableEncoder  # noqa: E402
from lic_core.errors import CheckpointError  # noqa: E402
from lic_core.models import compressai_compat as compat  # noqa: E402

N, M = 16, 24
H, W = 64, 128

#: zoo name → a small CompressAI model of that architecture
CASES = {
    "bmshj2018-factorized": lambda: FactorizedPrior(N, M),
    "bmshj2018-factorized-relu": lambda: FactorizedPriorReLU(N, M),
    "bmshj2018-hyperprior": lambda: ScaleHyperprior(N, M),
    "mbt2018-mean": lambda: MeanScaleHyperprior(N, M),
    "mbt2018": lambda: JointAutoregressiveHierarchicalPriors(N, M),
    "cheng2020-anchor": lambda: Cheng2020Anchor(N),
    "cheng2020-attn": lambda: Cheng2020Attention(N),
}
ARCHS = list(CASES)


def smooth_image(h: int = H, w: int = W) -> torch.Tensor:
    """A smooth, photo-like 1×3×h×w picture in [0, 1] (gradients and slow waves)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    rgb = [0.5 + 0.35 * torch.sin(6 * xx + 2 * yy),
           0.5 + 0.3 * torch.cos(5 * yy - 4 * xx * yy),
           0.15 + 0.6 * xx * yy + 0.1 * torch.sin(9 * yy)]
    return torch.stack(rgb)[None].clamp(0, 1)


def _scale_layer(net) -> tuple[torch.nn.Conv2d, int]:
    """The convolution whose first M outputs are the scales σ, and M."""
    if hasattr(net, "entropy_parameters"):
        return net.entropy_parameters[4], net.M
    return net.h_s[4], net.M


def make_compressai(arch: str, scale_shift: float | None = None):
    """A seeded CompressAI model made to look trained enough for the tests to mean something:
    latents of a few integers, perturbed GDN and bottleneck densities (quantiles found by
    CompressAI's own bisection), and — unless ``scale_shift`` says otherwise — σ of the order
    of the latents, as training would make them (random weights give σ ≈ 0, every symbol an
    outlier).  Returns (net after update(), its state dict, the state dict before update())."""
    torch.manual_seed(0)
    net = CASES[arch]().eval()
    x = smooth_image()
    with torch.no_grad():
        last = [m for m in net.g_a if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight.mul_(20)
        last.bias.mul_(20)
        for m in net.modules():
            if isinstance(m, CaGDN):
                m.beta.mul_(1 + 0.2 * torch.rand_like(m.beta))
                m.gamma.add_(0.05 * torch.rand_like(m.gamma))
        eb = net.entropy_bottleneck
        for p in list(eb.biases) + list(eb.factors):
            p.add_(0.5 * torch.randn_like(p))
        eb._update_quantiles()
        if hasattr(net, "gaussian_conditional"):
            conv, m = _scale_layer(net)
            shift = scale_shift if scale_shift is not None else \
                float(net.g_a(x).abs().mean()) + 0.5
            conv.bias[:m] += shift
    raw = {k: v.clone() for k, v in net.state_dict().items()}
    net.update(force=True)
    return net, {k: v.clone() for k, v in net.state_dict().items()}, raw


def compressai_round_trip(net, x: torch.Tensor) -> SimpleNamespace:
    """CompressAI's compress()/decompress(), with the ŷ (g_s input) and ẑ (h_s input) that
    its decoder produced."""
    seen = {}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        out = net.compress(x)
        hooks = [net.g_s.register_forward_pre_hook(
            lambda _m, a: seen.__setitem__("y_hat", a[0].clone()))]
        if hasattr(net, "h_s"):
            hooks.append(net.h_s.register_forward_pre_hook(
                lambda _m, a: seen.__setitem__("z_hat", a[0].clone())))
        x_hat = net.decompress(out["strings"], out["shape"])["x_hat"]
        for h in hooks:
            h.remove()
    nbytes = sum(len(s) for strings in out["strings"] for s in strings)
    return SimpleNamespace(x_hat=x_hat, nbytes=nbytes, **seen)


def our_round_trip(model, x: torch.Tensor) -> SimpleNamespace:
    enc = TableEncoder()
    encoded = model.code(enc, x, (H, W))
    data = enc.to_bytes()
    dec = TableDecoder(data)
    decoded = model.code(dec, None, (H, W))
    dec.finish()
    return SimpleNamespace(data=data, encoded=encoded, decoded=decoded, enc_crcs=enc.crcs,
                           dec_crcs=dec.crcs, labels=enc.labels)


@pytest.fixture(scope="module", params=ARCHS)
def case(request) -> SimpleNamespace:
    arch = request.param
    net, sd, raw = make_compressai(arch)
    x = smooth_image()
    ours = compat.build_from_state_dict(arch, sd)
    return SimpleNamespace(arch=arch, net=net, sd=sd, raw=raw, x=x, ours=ours,
                           theirs=compressai_round_trip(net, x), coded=our_round_trip(ours, x))


def test_eval_forward_is_bit_identical(case):
    with torch.no_grad():
        theirs = case.net(case.x)
        ours = case.ours(case.x)
    assert torch.equal(ours["x_hat"], theirs["x_hat"])
    assert set(ours["likelihoods"]) == set(theirs["likelihoods"])
    for k, v in theirs["likelihoods"].items():
        assert torch.equal(ours["likelihoods"][k], v), k


def test_decodes_what_compressai_decodes(case):
    c, theirs = case.coded, case.theirs
    assert torch.equal(c.decoded.y_hat, c.encoded.y_hat)
    assert torch.equal(c.decoded.y_hat, theirs.y_hat)
    assert c.dec_crcs == c.enc_crcs  # the decoded symbols are the encoded ones
    if hasattr(case.net, "h_s"):
        assert c.labels == ["z", "y"]
        assert torch.equal(c.decoded.z_hat, theirs.z_hat)
    else:
        assert c.labels == ["y"] and c.decoded.z_hat is None
    with torch.no_grad():
        picture = case.ours.synthesize(c.decoded.y_hat)
    assert (picture - theirs.x_hat).abs().max() <= 1e-6
    # the symbols are not all zero: the comparison exercises the tables
    sym = c.decoded.y_hat - (c.decoded.means if c.decoded.means is not None else 0)
    if c.decoded.means is None and not case.ours.gaussian:
        sym = sym - case.ours.entropy_bottleneck.medians().reshape(1, -1, 1, 1)
    assert torch.round(sym).abs().max() >= 2


def test_coded_fields_and_likelihoods(case):
    d, ours = case.coded.decoded, case.ours
    assert d.groups == [ours.M]
    assert d.y_hat.shape == (1, ours.M, H // 16, W // 16)
    assert set(d.likelihoods) == ({"y", "z"} if ours.gaussian else {"y"})
    for k, lik in d.likelihoods.items():
        assert lik.shape == getattr(d, f"{k}_hat").shape
        assert bool(((lik > 0) & (lik <= 1)).all())
    if not ours.gaussian:
        assert d.means is None and d.scales is None
    elif case.arch == "bmshj2018-hyperprior":
        assert d.means is None and d.scales.shape == d.y_hat.shape
    else:
        assert d.means.shape == d.scales.shape == d.y_hat.shape
    # the likelihoods are the model's own: eval forward gives the same p(ŷ) for the same ŷ
    with torch.no_grad():
        fwd = ours(case.x)["likelihoods"]
    if case.arch not in ("mbt2018", "cheng2020-anchor", "cheng2020-attn"):
        # (the autoregressive forward feeds round(y) to its context, not the coded ŷ)
        for k in d.likelihoods:
            assert torch.equal(d.likelihoods[k], fwd[k]), k


def test_checkpoint_without_update_codes_the_same(case):
    # the premise: examples/train.py's checkpoints have empty coder buffers
    assert case.raw["entropy_bottleneck._quantized_cdf"].numel() == 0
    if "gaussian_conditional.scale_table" in case.raw:
        assert case.raw["gaussian_conditional.scale_table"].numel() == 0
    model = compat.build_from_state_dict(case.arch, case.raw)
    again = our_round_trip(model, case.x)
    assert again.data == case.coded.data
    assert torch.equal(again.decoded.y_hat, case.theirs.y_hat)


def _old_names(sd: dict, zoo_style: bool) -> dict:
    """The key forms of older CompressAI versions and zoo files, behind DataParallel's prefix."""
    singular = {"matrices": "matrix", "biases": "bias", "factors": "factor"}

    def rename(k: str) -> str:
        m = re.match(r"entropy_bottleneck\.(matrices|biases|factors)\.(\d+)$", k)
        if m:
            k = (f"entropy_bottleneck._{m.group(1)}.{m.group(2)}" if zoo_style
                 else f"entropy_bottleneck._{singular[m.group(1)]}{m.group(2)}")
        return "module." + k.replace(".skip.", ".downsample.")

    return {rename(k): v for k, v in sd.items()}


@pytest.mark.parametrize("zoo_style", [False, True])
def test_old_key_names_and_module_prefix_load(case, zoo_style):
    old = _old_names(case.sd, zoo_style)
    assert not any(k.startswith("entropy_bottleneck.matrices") for k in old)
    model = compat.build_from_state_dict(case.arch, old)
    ref = case.ours.state_dict()
    got = model.state_dict()
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert torch.equal(got[k], v), k
    assert compat.guess_architecture(old)[0] == case.arch


def test_guess_names_the_architecture(case):
    arch, reason = compat.guess_architecture(case.sd)
    assert arch == case.arch
    assert reason and "\n" not in reason


def test_wrong_architecture_is_refused_naming_both(case):
    wrong = ARCHS[(ARCHS.index(case.arch) + 1) % len(ARCHS)]
    with pytest.raises(CheckpointError) as err:
        compat.build_from_state_dict(wrong, case.sd)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"not a {wrong} checkpoint" in msg
    assert f"looks like a {case.arch} checkpoint" in msg


def test_stream_is_not_larger_than_compressais(case):
    assert len(case.coded.data) <= 1.05 * case.theirs.nbytes + 16


@pytest.mark.parametrize("arch", ["mbt2018-mean", "mbt2018"])
def test_outliers_decode_exactly(arch):
    """σ at the scale bound everywhere: most symbols lie outside their tables' support and go
    through the escape codes, and ŷ still equals CompressAI's."""
    net, sd, _ = make_compressai(arch, scale_shift=-50.0)
    x = smooth_image()
    model = compat.build_from_state_dict(arch, sd)
    ours, theirs = our_round_trip(model, x), compressai_round_trip(net, x)
    assert torch.equal(ours.decoded.y_hat, theirs.y_hat)
    idx = model.gaussian_conditional.index(ours.decoded.scales)
    assert int(idx.max()) == 0
    assert (ours.decoded.y_hat - ours.decoded.means).abs().max() > 1


def test_registry_and_errors():
    names = compat.architecture_names()
    assert names[:7] == ARCHS
    assert {"elic2022-official", "elic2022-chandelier"} <= set(names)
    with pytest.raises(CheckpointError, match="unknown architecture 'nope'"):
        compat.build_from_state_dict("nope", {})
    with pytest.raises(CheckpointError, match="looked for g_a.0.weight"):
        compat.guess_architecture({"encoder.conv.weight": torch.zeros(4, 3, 3, 3)})
    with pytest.raises(CheckpointError, match="expected a tensor 'g_a.6.weight'"):
        compat.build_from_state_dict("mbt2018-mean", {"g_a.0.weight": torch.zeros(4, 3, 5, 5)})
    with pytest.raises(ValueError, match="multiple of 64"):
        compat.build_from_state_dict("mbt2018-mean", make_compressai("mbt2018-mean")[1]) \
            .code(TableEncoder(), torch.zeros(1, 3, 32, 64), (32, 64))


def test_lic_core_never_imports_compressai():
    pkg = Path(compat.__file__).parent
    for path in pkg.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+compressai\b", text, re.M), path.name
