"""The ``lic`` command line (tfci-style sub-commands).

Each sub-command lives in ``cmd_<name>.py`` with ``register(subparsers)``; the parser it adds sets
``func(args) -> int``.  User errors (:class:`lic_core.errors.LicError`) print one line and exit 2;
a file that is intact but decodes differently here than at the encoder
(:class:`lic_core.errors.LicMismatchError`) prints one line and exits 3.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from ..errors import LicError, LicMismatchError

SUBCOMMANDS = ("compress", "decompress", "info", "models", "eval", "plot", "bdrate",
               "train", "export", "finetune")


_THREADS_HELP = ("CPU threads for torch (default or 0: automatic — the CPUs not already busy, "
                 "from the CPU count and the load average; see lic_core/threads.py)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lic", description="LIC Studio codec command line.")
    parser.add_argument("--threads", type=int, default=None, metavar="N", dest="global_threads",
                        help=_THREADS_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.cmd_{name}":
                continue  # sub-command not part of this build
            raise
        mod.register(sub)
    for sp in sub.choices.values():
        # `lic compress --threads 2 ...` works as well as `lic --threads 2 compress ...`;
        # sub-commands with their own --threads (train, finetune) keep it
        if "--threads" not in sp._option_string_actions:
            sp.add_argument("--threads", type=int, default=argparse.SUPPRESS, metavar="N",
                            dest="global_threads", help=_THREADS_HELP)
    return parser


def _apply_threads(args: argparse.Namespace) -> None:
    """One thread policy for every sub-command (lic_core.threads)."""
    from ..threads import apply_threads

    n = getattr(args, "global_threads", None)
    own = getattr(args, "threads", None)  # train / finetune / stages: their own --threads
    if n is not None and hasattr(args, "threads") and not own:
        args.threads = n  # the global option fills the sub-command's own one
    apply_threads(own or n)


def _train_argv(argv: list[str]) -> list[str]:
    """``lic train`` in its older spellings (``--stage X``, or no stage for the codec) → the
    sub-command they mean (:func:`lic_core.train.stages.stage_argv`)."""
    i = 2 if argv[:1] == ["--threads"] else 0
    if argv[i:i + 1] != ["train"]:
        return argv
    from ..train.stages import stage_argv

    return [*argv[:i + 1], *stage_argv(argv[i + 1:])]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_train_argv(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if argv is None and args.command in ("compress", "decompress"):
        # the `lic` process itself, short-lived: freed tensors are reused, not faulted in anew
        # (lic_core.memory.reuse_freed_memory); a program calling main() keeps its own policy
        from ..memory import reuse_freed_memory

        reuse_freed_memory()
    try:
        _apply_threads(args)
        return int(args.func(args) or 0)
    except LicMismatchError as exc:  # not the user's fault: a different exit status
        print(f"lic: error: {exc}", file=sys.stderr)
        return 3
    except LicError as exc:
        print(f"lic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
