"""``lic train STAGE``: train / continue a model — the codec, the diffusion, GAN or HiFiC decoders,
or a decoder fine-tuned on a quantizer's latents (:data:`lic_core.train.stages.STAGES`).

See docs/training.md for the recipes (CPU smoke run, GPU chunks on a lent device).
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..train.stages import add_stage_parsers, run_stage

    p = subparsers.add_parser(
        "train", help="train or continue a model (codec | diffusion | gan | hific | finetune)",
        description="Train a LIC Studio model, one stage per sub-command. Multi-GPU: torchrun "
                    "--nproc_per_node=K -m lic_core.train codec <same flags>.")
    add_stage_parsers(p)
    p.set_defaults(func=run_stage)
