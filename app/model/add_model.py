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


def default_name(path: str) -> str:
    """A model name from a checkpoint file name (``checkpoint_best_loss.pth.tar`` → the folder's
    name when the file name says nothing)."""
    p = Path(path)
    stem = p.name.split(".")[0]
    if stem.startswith("checkpoint") and p.parent.name:
        stem = p.parent.name
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("-.") or "my-model"
    return name[:64]
