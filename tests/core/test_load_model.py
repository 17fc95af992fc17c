"""load_model builds the network without random init (lic_core.models.uninitialised): every tensor
of the loaded model must equal the one built with init and then loaded, and the skip must stay on
the thread that asked for it."""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from lic_core.config import ModelConfig
from lic_core.models import load_model, model_names
from lic_core.models.lgem import LicModel
from lic_core.models.uninitialised import init_fills_skipped
from lic_core.paths import weights_path
from lic_core.weights import load_weights


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters, buffers (persistent or not) and plain tensor attributes of every submodule."""
    out = {}
    for prefix, mod in model.named_modules():
        for key, value in vars(mod).items():
            if key in ("_parameters", "_buffers"):
                out.update({f"{prefix}.{k}": v for k, v in value.items() if v is not None})
            elif isinstance(value, torch.Tensor):
                out[f"{prefix}.{key}"] = value
    return out


SHIPPED_LGEM = [n for n in model_names("lgem") if weights_path(n).is_file()]


@pytest.mark.parametrize("name", SHIPPED_LGEM)
def test_loaded_model_equals_initialised_then_loaded(name: str) -> None:
    state, meta = load_weights(weights_path(name))
    reference = LicModel(ModelConfig.from_dict(meta["config"]))
    reference.load_state_dict(state, strict=True)
    fast = load_model(name)
    ref_t, fast_t = _tensors(reference), _tensors(fast)
    assert ref_t.keys() == fast_t.keys()
    non_persistent = [k for k in ref_t if k.rsplit(".", 1)[-1] in ("mask", "l1", "target")]
    assert non_persistent, "the check must cover the buffers a constructor computes"
    for key in ref_t:
        assert torch.equal(ref_t[key], fast_t[key]), key


def test_shipped_lgem_weights_exist() -> None:
    assert SHIPPED_LGEM, "no LGEM weights shipped: the load test above would check nothing"


def test_skip_is_per_thread_and_ends_with_the_block() -> None:
    def built() -> torch.Tensor:
        torch.manual_seed(0)
        return nn.Linear(8, 8).weight.detach().clone()

    expected = built()
    seen: dict = {}
    with init_fills_skipped():
        t = torch.zeros(4)
        assert nn.init.ones_(t) is t and not t.any()  # skipped here
        worker = threading.Thread(target=lambda: seen.setdefault("w", built()))
        worker.start()
        worker.join()
        with init_fills_skipped():  # nested: still skipped after the inner block ends
            pass
        nn.init.ones_(t)
        assert not t.any()
    assert torch.equal(seen["w"], expected)  # the other thread got its random weights
    assert torch.equal(built(), expected)  # and this thread again after the block
    nn.init.ones_(t)
    assert t.eq(1).all()
