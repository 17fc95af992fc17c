"""Hyperprior latent coding: z with the factorized prior, then y (docs/methods.md §2.2, §6.1, §6.3).

* z: ``v = round(z̄ − median_c)`` clamped to channel c's table support (clamps are counted), coded
  with the prior's stored float64 per-channel tables (:func:`lic_core.entropy_coder.encode_z`);
  ``ẑ = v + median_c``.
* y: a y codec (:mod:`.checkerboard` or :mod:`.gaussian_conditional`) on one
  :class:`~lic_core.entropy_coder.symbols.SymbolEncoder`.

Sections of the ``.lic`` file: ``[z, y]``.  Check values (format v2): a CRC32 of the z symbols,
then one per y step (:mod:`lic_core.bitstream.checks`); ``compress`` returns them,
``decompress`` verifies each step as soon as it is decoded.
"""
from __future__ import annotations

from typing import Optional, Protocol

import numpy as np
import torch

from ..bitstream.checks import symbol_crc, symbols_mismatch
from ..entropy_coder import decode_z, encode_z, z_bits
from ..entropy_coder.symbols import SymbolDecoder, SymbolEncoder
from ..entropy_model.factorized import FactorizedPrior
from ..errors import LicFormatError
from ..quantizer.base import Quantizer
from .base import DecodeSteps, EncodeSteps, LatentCoding, StepHook, StepRunner, YPasses


class YCodec(Protocol):
    num_steps: int

    def run(self, z_hat_gained: torch.Tensor, gains: dict, runner: StepRunner,
            y_bar=None, on_step: Optional[StepHook] = None, maps: bool = True) -> YPasses: ...


class FactorizedZCodec:
    """The hyper-latent z under a :class:`FactorizedPrior` (its stored coding tables)."""

    def __init__(self, prior: FactorizedPrior) -> None:
        self.prior = prior

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.prior.tables()

    def symbols(self, z_gained: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Integer symbols relative to the medians, clamped to each channel's table support."""
        _, offset, length = self.tables()
        med = self.prior.medians()[None, :, None, None]
        sym = torch.round(z_gained - med).to(torch.int64)
        lo = torch.as_tensor(offset, device=sym.device)[None, :, None, None]
        hi = lo + torch.as_tensor(length, device=sym.device)[None, :, None, None] - 1
        clamped = int(((sym < lo) | (sym > hi)).sum())
        return torch.maximum(torch.minimum(sym, hi), lo), clamped

    def dequantize(self, symbols: torch.Tensor) -> torch.Tensor:
        """ẑ⊙H = v + median (float64: exact for the integer v and the float32 median)."""
        med = self.prior.medians().to(torch.float64)
        return symbols.to(med.device, torch.float64) + med[None, :, None, None]

    def encode(self, symbols: torch.Tensor) -> bytes:
        """The z section of one image (``1×N×hz×wz`` symbols)."""
        pmf, offset, length = self.tables()
        data, _ = encode_z(symbols[0].cpu().numpy(), pmf, offset, length)
        return data

    def decode(self, data: bytes, hz: int, wz: int) -> torch.Tensor:
        """``1×N×hz×wz`` int64 symbols (LicFormatError on a corrupt stream)."""
        pmf, offset, length = self.tables()
        sym = decode_z(data, pmf, offset, (self.prior.channels, hz, wz), length)
        return torch.from_numpy(sym)[None]

    def bits(self, symbols: torch.Tensor) -> np.ndarray:
        """Ideal −log2 p of every symbol of one image (N×hz×wz float64)."""
        pmf, offset, length = self.tables()
        return z_bits(symbols[0].cpu().numpy(), pmf, offset, length)


class HyperpriorLatentCodec:
    """z, then y: the latent pipeline of every learned codec in lic_core."""

    def __init__(self, z: FactorizedZCodec, y: YCodec) -> None:
        self.z = z
        self.y = y

    @torch.no_grad()
    def compress(self, y_bar, z_bar: torch.Tensor, gains: dict,
                 quantizer: Quantizer, code: bool = True,
                 on_step: Optional[StepHook] = None, maps: bool = True) -> LatentCoding:
        """Quantize (and with ``code`` entropy-code) gained latents ``ȳ = y⊙G`` (a tensor or a
        :class:`~lic_core.latent_codecs.base.GainedLatent`), ``z̄``.

        ``code=False`` is the quantize-only run of decoder fine-tuning (any batch size); it takes
        the very same steps, so its ŷ is the ŷ a file would hold.  ``maps=False`` skips the
        full-size μ, σ and per-element bits (the inspection views; same file).
        """
        sym, z_clamped = self.z.symbols(z_bar)
        z_hat = self.z.dequantize(sym)
        encoder = SymbolEncoder() if code else None
        runner = EncodeSteps(quantizer, encoder, bits=maps)
        y = self.y.run(z_hat, gains, runner, y_bar=y_bar, on_step=on_step, maps=maps)
        out = LatentCoding(y=y, z_symbols=sym, z_hat=z_hat, clamped=z_clamped + runner.clamped)
        if encoder is not None:
            out.sections = [self.z.encode(sym), encoder.to_bytes()]
            out.bits_z = self.z.bits(sym)
            out.symbol_crcs = [symbol_crc(sym[0])] + runner.crcs
        return out

    @torch.no_grad()
    def decompress(self, sections: list[bytes], latent_size: tuple[int, int], gains: dict,
                   quantizer: Quantizer, on_step: Optional[StepHook] = None,
                   expected_crcs: Optional[list[int]] = None, maps: bool = True) -> LatentCoding:
        """ŷ from the ``[z, y]`` sections; ``latent_size`` = (hz, wz) of z (padded size / 64).

        ``expected_crcs`` (z, then each y step) are the file's symbol checks: every step is
        compared right after it is decoded (LicMismatchError), and — the container CRC being
        verified — a stream the decoder cannot follow is a mismatch too, not a corrupt file.
        ``maps=False``: ŷ only, no full-size μ and σ."""
        if expected_crcs is not None and len(expected_crcs) != 1 + self.y.num_steps:
            raise LicFormatError(f"corrupted .lic file ({len(expected_crcs)} symbol checks, the "
                                 f"codec has {1 + self.y.num_steps} steps)")
        try:
            sym = self.z.decode(sections[0], *latent_size)
        except LicFormatError as exc:
            if expected_crcs is None:
                raise
            raise symbols_mismatch("z", f"the range decoder failed ({exc})") from None
        if expected_crcs is not None and symbol_crc(sym[0]) != expected_crcs[0]:
            raise symbols_mismatch("z")
        z_hat = self.z.dequantize(sym)
        decoder = SymbolDecoder(sections[1], what="y stream")
        runner = DecodeSteps(quantizer, decoder, None if expected_crcs is None else expected_crcs[1:])
        y = self.y.run(z_hat, gains, runner, on_step=on_step, maps=maps)
        try:
            decoder.finish()
        except LicFormatError as exc:
            if expected_crcs is None:
                raise
            raise symbols_mismatch("the y stream's end", str(exc)) from None
        return LatentCoding(y=y, z_symbols=sym, z_hat=z_hat, sections=list(sections),
                            symbol_crcs=[symbol_crc(sym[0])] + runner.crcs)
