"""The campaign's stages, chosen by name (``tools/campaign.sh --stage NAME``): the one registry.

Each stage is a :class:`.base.Stage` (start / status / stop / export / release / seed) with its own
run folder ``runs/campaign/<name>``; only one trains at a time.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

from .base import DEFAULT_DIR, CampaignError, Stage
from .codec import CodecStage
from .decay import DecayBranchStage
from .finetune import QUANTIZERS, FinetuneStage
from .gan import GanStage
from .generative import DiffusionStage, HificStage

#: stage name → its class (called with the campaign folder)
REGISTRY: dict[str, Callable[[Path], Stage]] = {
    "codec": CodecStage,
    "codec-decay": DecayBranchStage,
    "diffusion": DiffusionStage,
    "hific": HificStage,
    "gan": GanStage,
    **{f"finetune-{q}": partial(FinetuneStage, quantizer=q) for q in QUANTIZERS},
}


def open_stage(name: str = "codec", root: Path | str = DEFAULT_DIR) -> Stage:
    """The stage ``name`` of the campaign folder ``root``."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise CampaignError(f"unknown campaign stage '{name}' (choose "
                            f"{', '.join(REGISTRY)})") from None
    return factory(Path(root))
