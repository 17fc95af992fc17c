"""Training and evaluation data (docs/methods.md §10, "Training pipeline").

* :class:`ImageFolderCrops` — random-downscale + random-crop + flips over a folder of photos, the
  usual LIC training augmentation (CompressAI / ELIC style), returning ``3×crop×crop`` float tensors
  in [0, 1]. The crop of item ``i`` in epoch ``e`` depends only on ``(seed, e, i)``, so a run is
  reproducible whatever the number of DataLoader workers or DDP ranks.
* :class:`KodakEval` — full images (no augmentation) padded (replicate) to a multiple of 64, with the
  original size, for validation.
* :func:`copy_training_data` — copies a photo folder into an ignored folder (``.data/train``) that a
  device command can ``carry`` (docs/training.md).

Images smaller than the crop (after the random downscale) are *upscaled* (bicubic) so their short
side equals the crop: padding would teach the codec to code flat borders, which costs nothing in
rate and skews the per-λ bpp statistics. The downscale factor is therefore clamped so the short side
never goes below the crop when the original is large enough.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..errors import LicError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
PAD_MULTIPLE = 64


class DataError(LicError):
    """A data folder is missing, empty or holds an unreadable image."""


def list_images(root: Union[str, Path], suffixes: Sequence[str] = IMAGE_SUFFIXES) -> List[Path]:
    """All image files under ``root`` (recursive), sorted by relative path for reproducibility.

    ``root`` may name several folders joined by ``os.pathsep`` (``train:train_extra``); their
    lists are concatenated in the order given, so the sample stream stays reproducible.
    """
    if isinstance(root, str) and os.pathsep in root:
        return [f for part in root.split(os.pathsep) if part for f in list_images(part, suffixes)]
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
             and not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def load_rgb(path: Union[str, Path]) -> Image.Image:
    """Decode an image as 8-bit RGB, applying the EXIF orientation (photos from phones)."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """``H×W×3`` uint8 PIL image → ``3×H×W`` float32 in [0, 1]."""
    arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The RNG of one (seed, epoch, item): independent of worker count and sampling order."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


#: decoded photos one dataset keeps in memory at most (``cache=True``)
CACHE_BUDGET_BYTES = 3 << 30


class ImageFolderCrops(torch.utils.data.Dataset):
    """Random-downscale, random-crop, random-flip training crops from an image folder.

    Args:
        root: folder searched recursively for jpg/jpeg/png/webp files.
        crop: square crop size in pixels (a multiple of 64 for the LIC models).
        downscale: ``(lo, hi)`` range of the uniform random resize factor applied before cropping
            (downscaling photos removes JPEG/demosaicking artefacts and adds scale diversity).
        hflip, vflip: random horizontal / vertical flips (probability ½ each).
        seed: base seed; call :meth:`set_epoch` every epoch to get new crops.
        cache: keep decoded images in memory, up to :data:`CACHE_BUDGET_BYTES` (the 387 photos of
            train + train_extra ≈ 1.4 GiB); saves the JPEG decode per item (~15 ms a 1 MP photo
            here: 8 of them are about a sixth of a GAN-decoder step). Photos beyond the budget are
            decoded each time they are drawn.
        files: explicit file list (overrides the folder scan, for tests).
    """

    def __init__(self, root: Union[str, Path], crop: int = 256,
                 downscale: Tuple[float, float] = (0.75, 1.0), hflip: bool = True,
                 vflip: bool = False, seed: int = 0, cache: bool = False,
                 files: Optional[Sequence[Union[str, Path]]] = None) -> None:
        self.root = root if isinstance(root, str) and os.pathsep in root else Path(root)
        self.files = [Path(f) for f in files] if files is not None else list_images(root)
        if not self.files:
            raise DataError(f"no images (jpg/png/webp) under {root}")
        lo, hi = float(downscale[0]), float(downscale[1])
        if not (0.0 < lo <= hi):
            raise DataError(f"bad downscale range {downscale}")
        self.crop = int(crop)
        self.downscale = (lo, hi)
        self.hflip = hflip
        self.vflip = vflip
        self.seed = int(seed)
        self.epoch = 0
        self.cache = cache
        self._cache: dict = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (deterministic given seed + epoch)."""
        self.epoch = int(epoch)

    def _image(self, index: int) -> Image.Image:
        if self.cache:
            im = self._cache.get(index)
            if im is None:
                im = load_rgb(self.files[index])
                size = im.width * im.height * 4  # Pillow holds RGB in 4 bytes a pixel
                if self._cached_bytes + size <= CACHE_BUDGET_BYTES:
                    self._cache[index] = im
                    self._cached_bytes += size
            return im
        return load_rgb(self.files[index])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.get(index, self.epoch)

    def get(self, index: int, epoch: int) -> torch.Tensor:
        """The crop of image ``index`` in ``epoch`` (pure function of seed, epoch, index)."""
        rng = item_rng(self.seed, epoch, index)
        im = self._image(index)
        return pil_to_tensor(random_crop(im, self.crop, self.downscale, rng,
                                         self.hflip, self.vflip))


def random_crop(im: Image.Image, crop: int, downscale: Tuple[float, float],
                rng: np.random.Generator, hflip: bool = True, vflip: bool = False) -> Image.Image:
    """Resize by a random factor in ``downscale`` and take a random ``crop×crop`` window.

    Resampling only the source box of the window (``Image.resize(box=...)``) gives the same pixels
    as resizing the whole image and cropping, at a fraction of the cost.
    """
    w, h = im.size
    f = float(rng.uniform(downscale[0], downscale[1]))
    # Never downscale below the crop when the original is big enough; upscale when it is not.
    f = max(f, crop / min(w, h))
    sw, sh = max(crop, int(round(w * f))), max(crop, int(round(h * f)))
    x0 = int(rng.integers(0, sw - crop + 1))
    y0 = int(rng.integers(0, sh - crop + 1))
    fx, fy = sw / w, sh / h
    box = (x0 / fx, y0 / fy, (x0 + crop) / fx, (y0 + crop) / fy)
    out = im.resize((crop, crop), Image.Resampling.BICUBIC, box=box,
                    reducing_gap=None)
    if hflip and rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if vflip and rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> torch.Tensor:
    """Replicate-pad a ``…×H×W`` tensor on the bottom/right to multiples of ``multiple``
    (ARCHITECTURE.md conventions: crop back to the original size after decoding)."""
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    squeeze = x.dim() == 3
    y = F.pad(x.unsqueeze(0) if squeeze else x, (0, pw, 0, ph), mode="replicate")
    return y.squeeze(0) if squeeze else y


class KodakEval(torch.utils.data.Dataset):
    """Full evaluation images (e.g. the 24 Kodak PNGs), no augmentation.

    Item ``i`` is a dict ``{"x": 3×H'×W' padded tensor, "size": (H, W), "name": str,
    "path": Path}``; ``H', W'`` are multiples of 64 (replicate padding).
    """

    def __init__(self, root: Union[str, Path], limit: Optional[int] = None) -> None:
        self.root = Path(root)
        self.files = list_images(root)
        if limit is not None:
            self.files = self.files[: int(limit)]
        if not self.files:
            raise DataError(f"no images under {root}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        x = pil_to_tensor(load_rgb(path))
        return {"x": pad_to_multiple(x), "size": tuple(x.shape[-2:]), "name": path.name,
                "path": path}

    def arrays(self) -> Iterator[np.ndarray]:
        """The images as ``H×W×3`` uint8 arrays (the codec-interface convention)."""
        for path in self.files:
            yield np.asarray(load_rgb(path), dtype=np.uint8)


def copy_training_data(src: Union[str, Path], dst: Union[str, Path],
                       max_side: Optional[int] = None) -> int:
    """Copy the images under ``src`` into ``dst`` (relative paths kept), returning the count.

    Used by the device recipe (docs/training.md): ``../shared`` does not travel to the device
    machine, so the photos are copied into the git-ignored ``.data/train`` that a ``run`` call
    carries. Files already present with the same size are skipped. ``max_side`` (optional)
    re-encodes larger images as quality-95 JPEG with that longest side, to fit the 64 MiB carry.
    """
    src, dst = Path(src), Path(dst)
    files = list_images(src)
    if not files:
        raise DataError(f"no images under {src}")
    n = 0
    for f in files:
        rel = f.relative_to(src)
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if max_side is not None:
            im = load_rgb(f)
            if max(im.size) > max_side:
                s = max_side / max(im.size)
                im = im.resize((max(1, math.floor(im.size[0] * s)),
                                max(1, math.floor(im.size[1] * s))), Image.Resampling.LANCZOS)
                out = out.with_suffix(".jpg")
                if not out.exists():
                    im.save(out, quality=95)
                n += 1
                continue
        if not (out.exists() and out.stat().st_size == f.stat().st_size):
            shutil.copy2(f, out)
        n += 1
    return n


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def copy_training_data_within(src: Union[str, Path], dst: Union[str, Path], budget_bytes: int,
                              sides: Sequence[Optional[int]] = (None, 2048, 1536, 1280, 1024,
                                                                 768, 512)) -> tuple[int, Optional[int], int]:
    """:func:`copy_training_data` at the largest ``max_side`` of ``sides`` (None: originals)
    whose copy fits in ``budget_bytes`` — the device machine's 64 MiB upload, less the tracked
    files and whatever else travels. Returns ``(images, max_side, bytes)``; a DataError when
    even the smallest side does not fit (``dst`` is then left empty)."""
    src, dst = Path(src), Path(dst)
    for side in sides:
        if dst.exists():
            shutil.rmtree(dst)
        n = copy_training_data(src, dst, max_side=side)
        used = _folder_bytes(dst)
        if used <= budget_bytes:
            return n, side, used
    shutil.rmtree(dst, ignore_errors=True)
    raise DataError(f"the photos under {src} do not fit in {budget_bytes / 2**20:.1f} MiB even "
                    f"at {sides[-1]} px on the longest side")


# ----------------------------------------------------------------------------------------------
# the codec loop's sample stream: what step t of rank r sees (lic_core.train.loop)


def step_level(seed: int, step: int, n_levels: int) -> int:
    """The rate level of optimizer step ``step`` (identical on all ranks)."""
    if n_levels <= 1:
        return 0
    return int(np.random.default_rng([seed & 0xFFFFFFFF, step, 0x5EED]).integers(n_levels))


def step_seed(seed: int, step: int, rank: int) -> int:
    """Torch RNG seed of one (step, rank): quantization noise etc. replay exactly on resume."""
    return int(np.random.default_rng([seed & 0xFFFFFFFF, step, rank, 0xA5]).integers(2 ** 62))


class StepBatches(torch.utils.data.IterableDataset):
    """Yields ``(step, batch)`` for steps ``start..end-1`` of one rank.

    The global sample stream is the concatenation of per-epoch permutations
    (``rng(seed, epoch)``); global batch ``t`` is samples ``[t·B·W, (t+1)·B·W)`` and rank ``r``
    takes its ``B`` consecutive ones. Crops depend on ``(seed, epoch, index)`` only, so the data
    of a step never depends on workers, resume points or wall-clock.
    """

    def __init__(self, ds: ImageFolderCrops, batch: int, rank: int, world: int, seed: int,
                 start: int, end: int) -> None:
        self.ds, self.batch, self.rank, self.world = ds, batch, rank, world
        self.seed, self.start, self.end = seed, start, end
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perms.get(epoch)
        if p is None:
            if len(self._perms) > 4:
                self._perms.clear()
            p = self._perms[epoch] = np.random.default_rng(
                [self.seed & 0xFFFFFFFF, epoch, 0xDA7A]).permutation(len(self.ds))
        return p

    def indices(self, step: int) -> List[Tuple[int, int]]:
        n = len(self.ds)
        first = step * self.batch * self.world + self.rank * self.batch
        out = []
        for pos in range(first, first + self.batch):
            epoch, j = divmod(pos, n)
            out.append((epoch, int(self._perm(epoch)[j])))
        return out

    def load(self, step: int) -> torch.Tensor:
        return torch.stack([self.ds.get(i, e) for e, i in self.indices(step)])

    def __iter__(self) -> Iterator[Tuple[int, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in range(self.start + wid, self.end, nw):
            yield step, self.load(step)


def data_description(spec: str) -> str:
    """``/abs/a:/abs/b`` for a (possibly ``os.pathsep``-joined) data spec."""
    return os.pathsep.join(str(Path(p).resolve()) for p in str(spec).split(os.pathsep) if p)
