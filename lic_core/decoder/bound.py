"""Decoder files bound to the codec weights they learned on (GAN, diffusion; issue 27).

A GAN decoder retrains g_s on the latents of one set of codec weights, and the diffusion decoder
is conditioned on one g_s's features: beside other weights of the same codec name (a release, a
hand-copied file) either would draw a wrong-looking picture. So each records the hash of the
weights it learned on — the GAN decoder in its metadata (``base_weights_hash``), the diffusion
decoder in its card (``codec_weights_hash``) — and the codec offers it only while that hash is
its own. Files made with a decoder stay safe either way: their pictures are checked (CRC32) on
decode; this is about which decoders new files may use.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

__all__ = ["BoundDecoderFile", "diffusion_trained_on"]


def diffusion_trained_on(path: Path) -> Optional[str]:
    """Hex hash of the codec weights a diffusion decoder file was conditioned on (its card's
    ``codec_weights_hash``; None when unreadable or not recorded)."""
    from ..weights import read_weights_card

    try:
        return (read_weights_card(path) or {}).get("codec_weights_hash")
    except Exception:  # noqa: BLE001 - an unreadable card binds to nothing
        return None


class BoundDecoderFile:
    """Whether a decoder file may be used beside codec weights of hash ``now``, re-read only when
    the file appears, changes or goes (a campaign install): :meth:`usable`. :attr:`stale` names
    a file that exists but learned on other weights; :attr:`changed` says the last call re-read
    it (the caller drops what it loaded from the old file)."""

    def __init__(self, trained_on: Callable[[Path], Optional[str]]) -> None:
        self.trained_on = trained_on
        self.stale = ""
        self.changed = False
        self._seen: Optional[tuple[tuple, bool]] = None

    def usable(self, path: Path, now: Optional[str]) -> bool:
        """``now``: the codec weights' hex hash (None: unknown yet — any readable file is
        accepted; a file that does not say which weights it learned on is not)."""
        try:
            key = (str(path), path.stat().st_mtime_ns, now)
        except OSError:
            self.changed, self.stale, self._seen = self._seen is not None, "", None
            return False
        self.changed = self._seen is None or self._seen[0] != key
        if self.changed:
            ok = now is None or self.trained_on(path) == now
            self.stale = "" if ok else path.name
            self._seen = (key, ok)
        return self._seen[1]
