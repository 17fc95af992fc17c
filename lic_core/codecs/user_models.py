"""Models the user added: CompressAI checkpoints recorded in the config folder.

``lic models add NAME compressai:ARCH CKPT [CKPT ...]`` (and the studio's *File → Add model…*)
records one model per name in ``<config dir>/models.json`` (:func:`lic_core.paths.config_dir`):
its architecture and one *rate point* per checkpoint — file path, the file's SHA-256, the weights
hash that ``.lic`` files carry, and the bpp the checkpoint spends on the bundled sample photo
(the model's own likelihoods), by which the points are ordered.  Nothing is recorded unless every
checkpoint loads as the architecture; the file is written atomically.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import CheckpointError, LicError
from ..fileio import write_bytes_atomic
from ..paths import config_dir, sample_image_path

REGISTRY_FILE = "models.json"
SPEC_PREFIX = "compressai:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
#: side of the centre crop of the sample photo on which rate points are measured (speed)
MEASURE_CROP = 256


@dataclass
class RatePoint:
    """One checkpoint of an added model."""

    path: str
    file_sha256: str
    model_hash: str
    kind: str
    bpp: float
    zoo: str = ""


@dataclass
class UserModel:
    """An added model: a name, a CompressAI architecture and its rate points (fewest bits
    first)."""

    name: str
    arch: str
    points: list[RatePoint]
    parameters: int = 0
    added: str = ""
    guessed: str = ""  # why `compressai:auto` chose the architecture ("" when given)
    extra: dict = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return SPEC_PREFIX + self.arch

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UserModel":
        pts = [RatePoint(**p) for p in d.get("points", [])]
        return cls(name=d["name"], arch=d["arch"], points=pts,
                   parameters=int(d.get("parameters", 0)), added=d.get("added", ""),
                   guessed=d.get("guessed", ""), extra=dict(d.get("extra", {})))


def registry_path() -> Path:
    return config_dir() / REGISTRY_FILE


_CACHE: dict = {"key": None, "models": {}}


def load_registry() -> dict[str, UserModel]:
    """Name → :class:`UserModel` (empty when nothing was added).  A registry file that cannot be
    read is a one-line :class:`LicError` naming it (it is never overwritten silently)."""
    p = registry_path()
    try:
        st = p.stat()
    except FileNotFoundError:
        return {}
    key = (str(p), st.st_mtime_ns, st.st_size)
    if _CACHE["key"] == key:
        return dict(_CACHE["models"])
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
        models = {d["name"]: UserModel.from_dict(d) for d in raw.get("models", [])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LicError(f"cannot read the added-models file {p} ({exc}); fix or move it "
                       "aside") from None
    _CACHE.update(key=key, models=models)
    return dict(models)


def _save(models: dict[str, UserModel]) -> None:
    p = registry_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": "lic-studio-models/1",
           "models": [m.to_dict() for m in sorted(models.values(), key=lambda m: m.name)]}
    write_bytes_atomic(p, (json.dumps(doc, indent=2) + "\n").encode("utf-8"), overwrite=True)
    _CACHE["key"] = None


def parse_spec(spec: str) -> str:
    """``compressai:ARCH`` → ARCH (``auto`` allowed); anything else is a one-line error."""
    from ..models.compressai_compat import architecture_names

    if not spec.startswith(SPEC_PREFIX):
        raise LicError(f"unknown model kind '{spec}' (expected compressai:ARCH, ARCH one of "
                       f"auto, {', '.join(architecture_names())})")
    arch = spec[len(SPEC_PREFIX):]
    if arch != "auto" and arch not in architecture_names():
        raise LicError(f"unknown CompressAI architecture '{arch}' (known: auto, "
                       f"{', '.join(architecture_names())})")
    return arch


def check_name(name: str, reserved: Sequence[str] = ()) -> None:
    if not _NAME.match(name or ""):
        raise LicError(f"bad model name '{name}' (letters, digits, '.', '_', '+', '-'; at most "
                       "64; starting with a letter or digit)")
    if name in reserved:
        raise LicError(f"'{name}' is a built-in codec; choose another name")
    if name in load_registry():
        raise LicError(f"a model named '{name}' is already added (lic models remove {name} "
                       "first)")


def zoo_checkpoint(arch: str, quality: int, metric: str = "mse") -> Path:
    """The CompressAI zoo file of (arch, quality, metric) in the torch hub cache — never
    downloaded; a missing file is a one-line error saying which file to put where."""
    from ..models.compressai_compat.checkpoint import torch_hub_checkpoints, zoo_file_names

    names = zoo_file_names()
    key = "bmshj2018-factorized" if arch == "bmshj2018-factorized-relu" else arch
    if key not in names or metric not in names[key]:
        raise LicError(f"the CompressAI zoo has no {metric} weights for {arch}")
    if str(quality) not in names[key][metric]:
        qs = ", ".join(sorted(names[key][metric], key=int))
        raise LicError(f"{arch} ({metric}) has zoo qualities {qs}, not {quality}")
    fname = names[key][metric][str(quality)]
    path = torch_hub_checkpoints() / fname
    if not path.is_file():
        raise LicError(f"zoo weights not on disk: put {fname} (from CompressAI's model zoo) into "
                       f"{path.parent}; nothing is downloaded")
    return path


def measure_bpp(model, image: Optional[np.ndarray] = None) -> float:
    """Estimated bpp of ``model`` (its own likelihoods, eval mode) on a centre crop of the
    bundled sample photo: orders the rate points of a model."""
    from ..image.io import load_image
    from ..image.tensor import to_tensor
    from ..models.compressai_compat.base import pad

    img = image if image is not None else load_image(sample_image_path())
    h, w = img.shape[:2]
    s = min(MEASURE_CROP, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x, _ = pad(to_tensor(np.ascontiguousarray(img[top:top + s, left:left + s])))
    with torch.no_grad():
        out = model(x)
    bits = sum(float(-torch.log2(lk).sum()) for lk in out["likelihoods"].values())
    return bits / (s * s)


def add_model(name: str, spec: str, checkpoints: Sequence[str] = (),
              zoo_quality: Optional[int] = None, zoo_metric: str = "mse",
              reserved: Sequence[str] = (),
              progress: Optional[Callable[[float, str], None]] = None) -> UserModel:
    """Check every checkpoint, then record the model (see the module docstring).  Raises a
    one-line :class:`LicError`/:class:`CheckpointError` and records nothing on any failure."""
    from ..models.compressai_compat import build_from_state_dict, guess_architecture
    from ..models.compressai_compat.checkpoint import model_hash, read_checkpoint

    check_name(name, reserved)
    arch = parse_spec(spec)
    paths = [str(p) for p in checkpoints]
    zoo = ""
    if zoo_quality is not None:
        if arch == "auto":
            raise LicError("--zoo-quality needs the architecture (compressai:ARCH, not auto)")
        paths.append(str(zoo_checkpoint(arch, zoo_quality, zoo_metric)))
        zoo = f"{zoo_metric} quality {zoo_quality}"
    if not paths:
        raise LicError("no checkpoint given (CHECKPOINT ... or --zoo-quality Q)")
    points, guessed, params = [], "", 0
    for i, path in enumerate(paths):
        if progress:
            progress(i / len(paths), f"reading {Path(path).name}")
        ck = read_checkpoint(path)
        a = arch
        if arch == "auto":
            a, why = guess_architecture(ck.state_dict)
            if points and a != points[0][1]:
                raise CheckpointError(f"{Path(path).name} looks like {a} ({why}), the first "
                                      f"checkpoint like {points[0][1]}: one model, one "
                                      "architecture")
            guessed = guessed or f"{a}: {why}"
        model = build_from_state_dict(a, ck.state_dict)
        params = sum(p.numel() for p in model.parameters())
        h = model_hash(model)
        if any(p.model_hash == h for p, _ in points):
            raise CheckpointError(f"{Path(path).name} holds the same weights as an earlier "
                                  "checkpoint of this model")
        if progress:
            progress((i + 0.5) / len(paths), f"measuring {Path(path).name}")
        bpp = measure_bpp(model)
        points.append((RatePoint(str(Path(path).expanduser().resolve()), ck.file_sha256, h,
                                 ck.kind, round(bpp, 5), zoo if i == len(paths) - 1 and zoo
                                 else ""), a))
    arch = points[0][1]
    m = UserModel(name=name, arch=arch, points=sorted((p for p, _ in points),
                                                       key=lambda p: p.bpp),
                  parameters=int(params), added=time.strftime("%Y-%m-%d %H:%M:%S"),
                  guessed=guessed)
    if progress:  # the last chance to cancel: once saved, the model is added (no callback after)
        progress(1.0, "saving")
    models = load_registry()
    models[name] = m
    _save(models)
    return m


def remove_model(name: str) -> UserModel:
    """Forget an added model (its checkpoint files are left alone)."""
    models = load_registry()
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise LicError(f"no added model named '{name}' (added: {known})")
    m = models.pop(name)
    _save(models)
    return m


def find_by_hash(arch: str, model_hash: str) -> Optional[tuple[UserModel, int]]:
    """The added model and rate point whose weights hash is ``model_hash``."""
    for m in load_registry().values():
        for i, p in enumerate(m.points):
            if m.arch == arch and p.model_hash == model_hash:
                return m, i
    return None
