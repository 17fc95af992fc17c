"""The ``lic`` command line (tfci-style sub-commands).

Each sub-command lives in ``cmd_<name>.py`` with ``register(subparsers)``; the parser it adds sets
``func(args) -> int``.  User errors (:class:`lic_core.errors.LicError`) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from ..errors import LicError

SUBCOMMANDS = ("compress", "decompress", "info", "models", "eval", "plot", "bdrate",
               "train", "export", "finetune")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lic", description="LIC Studio codec command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.cmd_{name}":
                continue  # sub-command not part of this build
            raise
        mod.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LicError as exc:
        print(f"lic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
