"""What a codec's weights are, in words, for the codec chooser and the About card (Qt-free).

The words come from ``lic_core.weights.provenance_line`` over the weights' model card, read from
the file's metadata only (no tensors are loaded, so labelling every codec at start-up is cheap).
"""
from __future__ import annotations

from typing import Any, Optional

from lic_core.codecs import get_codec
from lic_core.paths import weights_path
from lic_core.weights import is_preview, provenance_line, read_weights_card


def weights_card(codec_name: str) -> Optional[dict[str, Any]]:
    """The model card of a learned codec's weights file, or None (classical, missing weights)."""
    try:
        codec = get_codec(codec_name)
        if codec.family != "learned" or not codec.available()[0]:
            return None
        path = getattr(codec, "_weights_path", None) or weights_path(codec_name)
        return read_weights_card(path)
    except Exception:  # a codec without a weights file of its own (tests, HiFiC variants)
        try:
            return dict(get_codec(codec_name).describe())
        except Exception:
            return None


def codec_provenance(codec_name: str) -> tuple[bool, str]:
    """(is a preview, one-line provenance) — ``(False, "")`` for codecs without weights."""
    card = weights_card(codec_name)
    if not card:
        return False, ""
    return is_preview(card), provenance_line(card)
