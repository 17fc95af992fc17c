"""A wider codec that starts as the one it widens: N = 64 → 96 without starting over.

Why: the capacity study (docs/training.md, "Capacity study") trains every arm from scratch, so a
wider arm spends its first CPU-hours catching up with weights we already have (N = 96 needed
1.75 CPU-h to reach what N = 64 reached in 1.25). Whether the wider transforms lift the codec's
high-rate ceiling can be asked much sooner from the shipped weights: widen them so that the wider
network computes *exactly* the same function, then train both widths on from there.

Function-preserving widening (Net2WiderNet's aim, Chen, Goodfellow and Shlens, "Net2Net",
ICLR 2016 §3.1, done here by zero fan-out instead of replicated units): every layer of g_a and g_s
whose input or output width is N (the residual stream) or N/2 (the bottlenecks' middle) gets
extra units, and

* old output units keep their weights and read **nothing** from the new input units (those
  weights start at zero), so every old unit computes what it computed before;
* new output units get the fresh network's random weights from all inputs (they must differ from
  each other, or they would stay copies of one another);
* the layers that leave the N-wide stream (g_a's last conv to M, g_s's last deconv to RGB) read
  only old units at first.

So y = g_a(x) and x̂ = g_s(ŷ) are unchanged (up to float summation order), and the gradient of
a zero weight is not zero (it is the new unit's activation times the old unit's error): the new
units are used as soon as training finds them useful. The residual stream's identity skips and
the attention blocks' channel-wise gates (Cheng et al. 2020) keep old and new channels apart.

Everything else (h_a, h_s, the entropy model's contexts, the gain units) does not depend on N
and is copied; so is g_s when only the encoder is widened (``analysis_N``: a wider g_a costs
encode time only). The result is an ordinary model of the wider configuration: it trains, exports
and decodes on the exact path like any other (``lic_core.models.widen.widen_model`` builds it:
the transforms do not know the models they are part of).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

#: the transforms whose widths follow ``ModelConfig.N``
WIDENED = ("g_a", "g_s")


def _widen_weight(old: torch.Tensor, new: torch.Tensor, transposed: bool) -> torch.Tensor:
    """``new`` (fresh, wider) with the old block in place and zero weights from new input
    units to old output units. Conv2d weights are (out, in, kh, kw), ConvTranspose2d (in, out,
    kh, kw)."""
    out = new.detach().clone()
    if old.dim() == 1:  # bias: old units keep theirs, new ones the fresh init
        out[: old.shape[0]] = old
        return out
    o_ax, i_ax = (1, 0) if transposed else (0, 1)
    o, i = old.shape[o_ax], old.shape[i_ax]
    if any(old.shape[d] > new.shape[d] for d in range(old.dim())) or old.shape[2:] != new.shape[2:]:
        raise ValueError(f"cannot widen a {tuple(old.shape)} weight into {tuple(new.shape)}")
    old_out = [slice(None)] * out.dim()
    old_out[o_ax] = slice(0, o)
    block = list(old_out)
    block[i_ax] = slice(0, i)
    from_new = list(old_out)
    from_new[i_ax] = slice(i, None)
    out[tuple(block)] = old
    out[tuple(from_new)] = 0.0
    return out


def widen_state(old_state: Mapping[str, torch.Tensor], wide: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``wide`` (a freshly built model of the wider configuration) that makes
    it compute what the model of ``old_state`` computes. Tensors outside :data:`WIDENED` are
    copied as they are; names ``wide`` lacks or that ``old_state`` lacks are refused."""
    fresh = wide.state_dict()
    kinds: dict[str, bool] = {}
    for name, mod in wide.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            kinds[name] = isinstance(mod, nn.ConvTranspose2d)
    missing = [k for k in fresh if k not in old_state]
    extra = [k for k in old_state if k not in fresh]
    if missing or extra:
        raise ValueError(f"the weights do not fit the wider model: missing {missing[:3]}, "
                         f"unexpected {extra[:3]}")
    out: dict[str, torch.Tensor] = {}
    for key, new in fresh.items():
        old = old_state[key]
        if not _in_widened(key):  # as it is: the prior's float64 coding tables stay float64
            out[key] = old.detach().clone()  # (and are sized by their own loader)
            continue
        old = old.to(dtype=new.dtype)
        if tuple(old.shape) == tuple(new.shape):
            out[key] = old.clone()
            continue
        layer = key.rsplit(".", 1)[0]
        if layer not in kinds:
            raise ValueError(f"{key}: not a convolution, cannot widen")
        out[key] = _widen_weight(old, new, kinds[layer])
    return out


def _in_widened(key: str) -> bool:
    return key.split(".", 1)[0] in WIDENED
