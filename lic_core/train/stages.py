"""``lic train STAGE``: the training stages, one sub-command each (docs/training.md).

:data:`STAGES` is the one list of them: each module defines ``add_arguments(parser)`` (its flags)
and ``run(args) -> int``, and plugs its optimizer step into :class:`.runner.Runner`. The CPU
campaign (``tools/campaign.sh``, the repository's ``campaign/`` package) launches them.

``python -m lic_core.train [STAGE] ...`` is the same command; the older spellings without a
sub-command (``--stage diffusion|hific-1|hific-2``, or none for the codec; the campaign's saved
recipes, ``torchrun -m lic_core.train --model ...``) are read as the sub-command they mean.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from ..errors import LicError

#: stage → (module with ``add_arguments(parser)`` and ``run(args)``, one-line help)
STAGES: dict[str, tuple[str, str]] = {
    "codec": ("lic_core.train.loop",
              "the codec: variable-rate rate–distortion training (docs/methods.md §5)"),
    "diffusion": ("lic_core.train.diffusion",
                  "the diffusion decoder on a frozen codec's latents (§7)"),
    "gan": ("lic_core.train.gan_decoder",
            "the GAN decoder: g_s with HiFiC's objective on frozen latents (docs/gan.md)"),
    "hific": ("lic_core.train.hific.trainer",
              "HiFiC: --stage hific-1 (rate + MSE + LPIPS) or hific-2 (+ GAN) (§8)"),
    "finetune": ("lic_core.train.finetune",
                 "the decoder on a quantizer's real latents (§4.5; also `lic finetune`)"),
}
#: the older ``--stage`` values → sub-command
_LEGACY = {"codec": "codec", "diffusion": "diffusion", "hific-1": "hific", "hific-2": "hific"}


class _StageParser(argparse.ArgumentParser):
    """A stage's parser; for a stage this build lacks (``unavailable`` set) it takes any flags
    and the stage says so when it is run."""

    unavailable: Optional[str] = None

    def parse_known_args(self, args=None, namespace=None):
        if self.unavailable is None:
            return super().parse_known_args(args, namespace)
        ns = namespace if namespace is not None else argparse.Namespace()
        ns.train_run = self._refuse
        return ns, []

    def _refuse(self, _args: argparse.Namespace) -> int:
        raise LicError(self.unavailable)


def add_stage_parsers(parser: argparse.ArgumentParser) -> None:
    """One sub-command per stage of :data:`STAGES` (a stage whose module cannot be imported in
    this build says so when it is run)."""
    sub = parser.add_subparsers(dest="train_stage", metavar="STAGE", required=True,
                                parser_class=_StageParser)
    for name, (mod_name, help_) in STAGES.items():
        p = sub.add_parser(name, help=help_, description=help_)
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:
            p.unavailable = f"stage {name!r} is not available in this build ({exc})"
            continue
        mod.add_arguments(p)
        p.set_defaults(train_run=mod.run)


def stage_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with its sub-command first: the older spellings (``--stage X``, or no stage:
    the codec) become the sub-command they mean; HiFiC keeps its ``--stage hific-1|2``."""
    argv = list(argv)
    if not argv or argv[0] in STAGES or argv[0] in ("-h", "--help"):
        return argv
    if "--stage" in argv[:-1]:
        i = argv.index("--stage")
        value = argv[i + 1]
        name = _LEGACY.get(value)
        if name is not None:
            if name != "hific":
                del argv[i:i + 2]
            return [name, *argv]
    return ["codec", *argv]


def run_stage(args: argparse.Namespace) -> int:
    """Run the parsed stage (``lic train``'s ``func``)."""
    return int(args.train_run(args) or 0)


def build_parser(prog: str = "python -m lic_core.train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train a LIC Studio model (one stage).")
    add_stage_parsers(p)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(stage_argv(sys.argv[1:] if argv is None else argv))
    try:
        return run_stage(args)
    except LicError as exc:
        print(f"lic train: error: {exc}", file=sys.stderr)
        return 2
