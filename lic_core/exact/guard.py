"""A guard that rejects non-reproducible torch calls on the exact path (docs/bitstream.md,
"Reproducible decoding").

Inside ``with ExactOpGuard():`` every torch function call is inspected:

* transcendental / fused elementwise / normalizing ops (``exp``, ``log``, ``erf``, ``sigmoid``,
  ``softmax``, ``layer_norm``, ``gelu``, ``softplus``, ``pow``, ``rsqrt``, ``addcmul``, ``lerp``,
  ``linear``, ``mean`` …) are forbidden: their kernels differ by device / SIMD width.  Matrix
  products — ``matmul``/``mm``/``bmm``, convolutions and ``addmm``/``baddbmm`` with a bias term —
  are allowed: on grid integers every product and partial sum is exact (the 2^53 bound), so any
  blocking, order or FMA gives the same result;
* (a bias fused into a convolution is allowed: it is one more exact term of an exact sum);
* divisions must divide by a tensor with ≥ 1 dimension (CUDA turns division by a CPU scalar into
  a multiplication by its reciprocal: two roundings);
* no floating-point argument may be float32/float16/bfloat16, except in casts and views.

Violations are collected (``guard.violations``) and, with ``strict=True``, raised at once.
"""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

FORBIDDEN = {
    "exp", "exp_", "exp2", "expm1", "log", "log_", "log1p", "log2", "log10", "erf", "erfc",
    "erfinv", "sigmoid", "sigmoid_", "softplus", "gelu", "silu", "tanh", "softmax", "_softmax",
    "log_softmax", "layer_norm", "group_norm", "batch_norm", "pow", "pow_", "__pow__",
    "__rpow__", "__ipow__", "float_power", "rsqrt", "reciprocal",
    "addcmul", "addcmul_", "addcdiv", "addcdiv_", "lerp", "lerp_", "linear",
    "bilinear", "scaled_dot_product_attention", "mean", "var", "std", "logsumexp", "cumsum",
    "ldexp", "hypot", "sinh", "cosh", "atan", "sin", "cos", "tan", "square", "einsum",
    "compile", "randn", "rand", "normal_", "uniform_", "bernoulli", "multinomial",
}
DIVISIONS = {"div", "div_", "true_divide", "__truediv__", "__itruediv__", "divide"}
#: calls that may see reduced-precision floats: casts, views and metadata
CASTS_AND_VIEWS = {
    "to", "double", "float", "half", "type", "detach", "clone", "contiguous", "cpu", "cuda",
    "__get__", "__getitem__", "size", "dim", "numel", "shape", "dtype", "device", "view",
    "reshape", "expand", "expand_as", "requires_grad", "is_cuda", "__len__", "__repr__",
    "__format__", "numpy", "data_ptr", "stride", "storage_offset", "_is_view", "is_contiguous",
    "__hash__", "__bool__", "item", "tolist", "ndimension", "__iter__", "ndim", "is_floating_point",
    "names", "layout", "grad_fn", "is_sparse", "is_quantized", "is_meta", "_version", "grad",
    "data", "retain_grad", "__reduce_ex__", "__deepcopy__", "untyped_storage", "nbytes",
    "element_size", "itemsize", "get_device", "is_leaf", "__setstate__",
}
_LOW = (torch.float32, torch.float16, torch.bfloat16)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


class ExactOpGuard(TorchFunctionMode):
    """Records (or raises on) torch calls that are not reproducible bit for bit."""

    def __init__(self, strict: bool = False) -> None:
        super().__init__()
        self.strict = strict
        self.violations: list[str] = []
        self.calls = 0

    def _flag(self, msg: str) -> None:
        self.violations.append(msg)
        if self.strict:
            raise RuntimeError(f"non-reproducible op on the exact path: {msg}")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        self.calls += 1
        if name in FORBIDDEN:
            self._flag(name)
        elif name in DIVISIONS:
            other = args[1] if len(args) > 1 else kwargs.get("other")
            if not isinstance(other, torch.Tensor) or other.dim() == 0:
                if args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
                    self._flag(f"{name} by a scalar")
        if name not in CASTS_AND_VIEWS and name not in FORBIDDEN:
            low = [t.dtype for t in _tensors((args, kwargs)) if t.dtype in _LOW]
            if low:
                self._flag(f"{name} on {low[0]}")
        return func(*args, **kwargs)
