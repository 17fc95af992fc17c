"""``lic train``: train / continue a model (codec RD stage, or the diffusion / HiFiC stages).

See docs/training.md for the recipes (CPU smoke run, GPU chunks on a lent device).
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..train.loop import add_arguments, add_stage_arguments, run_args

    p = subparsers.add_parser(
        "train", help="train or continue a model (variable-rate RD; --stage diffusion/hific-*)",
        description="Train a LIC Studio model. Multi-GPU: torchrun --nproc_per_node=K "
                    "-m lic_core.train <same flags>.")
    add_arguments(p)
    add_stage_arguments(p)
    p.set_defaults(func=run_args)
