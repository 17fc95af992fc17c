"""The *Add model…* dialog's state, Qt-free: chosen checkpoints, the guessed architecture, a
default name, and the one-line problem that keeps *Add* disabled."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lic_core.errors import LicError

from . import services


@dataclass
class AddModelForm:
    """What the user has filled in so far."""

    checkpoints: list[str] = field(default_factory=list)
    name: str = ""
    arch: str = "auto"
    #: "mbt2018-mean: GDN layers, a mean-scale hyperprior" after the first file was read
    guessed: str = ""
    error: str = ""

    def set_checkpoints(self, paths: list[str]) -> None:
        """New files: guess the architecture from the first and propose a name."""
        self.checkpoints = [str(p) for p in paths]
        self.error = self.guessed = ""
        if not self.checkpoints:
            return
        if not self.name:
            self.name = default_name(self.checkpoints[0])
        try:
            arch, why = services.guess_checkpoint(self.checkpoints[0])
        except LicError as exc:
            self.error = str(exc)
            return
        self.guessed = f"{arch}: {why}"
        self.arch = arch

    def problem(self) -> Optional[str]:
        """Why *Add* cannot run yet (None when it can)."""
        if not self.checkpoints:
            return "choose one or more checkpoint files"
        if not self.name.strip():
            return "give the model a name"
        if self.name.strip() in services.codec_names():
            return f"'{self.name.strip()}' is taken; choose another name"
        return self.error or None


def promise_note(arch: str) -> str:
    """What the files of a model of ``arch`` promise (``auto``: both cases): the exact path's
    architectures decode to the same picture everywhere (issue 25), the others as CompressAI
    decodes, in float arithmetic (issue 32)."""
    from lic_core.codecs.compressai_codec import has_exact_path
    from lic_core.models.compressai_compat.google_exact import EXACT_ARCHITECTURES

    exact = (f"{arch} models code on an exact path: their files decode to the identical picture "
             "on every machine, like LIC Studio's own codecs (NAME:float gives CompressAI's own "
             "float picture, without that promise).")
    floating = ("Files made with {what} decode as CompressAI decodes (float arithmetic): unlike "
                "LIC Studio's own codecs, they are not guaranteed to decode on another machine.")
    if arch != "auto" and has_exact_path(arch):
        return exact
    if arch != "auto":
        return floating.format(what=f"{arch} models")
    names = ", ".join(EXACT_ARCHITECTURES)
    return (f"{names} models code on an exact path (the identical picture on every machine; "
            "NAME:float is CompressAI's float picture). "
            + floating.format(what="the other architectures"))


def default_name(path: str) -> str:
    """A model name from a checkpoint file name (``checkpoint_best_loss.pth.tar`` → the folder's
    name when the file name says nothing)."""
    p = Path(path)
    stem = p.name.split(".")[0]
    if stem.startswith("checkpoint") and p.parent.name:
        stem = p.parent.name
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("-.") or "my-model"
    return name[:64]
