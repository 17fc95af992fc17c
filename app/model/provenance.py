"""What a codec's weights are, in words, for the codec chooser and the About card (Qt-free).

The words come from ``lic_core.weights.weights_provenance`` (what ``lic models`` prints too) over
the weights' model card, read from the file's metadata only (no tensors are loaded, so labelling
every codec at start-up is cheap).
"""
from __future__ import annotations

from typing import Any, Optional

from lic_core.codecs import get_codec
from lic_core.paths import weights_path
from lic_core.weights import read_weights_card, weights_provenance


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
    prov = weights_provenance(card)
    return prov.preview, prov.line


#: what each quantizer does, in one line (docs/methods.md §4.2–4.4)
QUANTIZER_HELP = {
    "round": "round: ŷ = μ + round(y − μ), what the codec was trained for",
    "deadzone": "dead-zone: rounding with a wider zero bin (offset 1/3)",
    "rdoq": "RDOQ: per element, round / one step toward zero / zero, whichever costs "
            "least in distortion + λ·bits",
    "tcq": "TCQ: 4-state trellis-coded quantization (VVC dependent quantization), Viterbi "
           "over distortion + λ·bits along each position's channels",
}


def quantizer_notes(codec_name: str) -> dict[str, tuple[str, bool]]:
    """Per quantizer of a learned codec: (tooltip, a decoder fine-tuned for it is in use).

    The tooltip gives what the quantizer does and what it measured on Kodak with these weights
    (BD-rate against rounding, before and after decoder fine-tuning), from
    ``lic_core.evaluation.quantizers.quantizer_report`` (file metadata only)."""
    from lic_core.evaluation.quantizers import quantizer_report

    try:
        report = quantizer_report(codec_name)
    except Exception:  # unreadable table or weights: the picker still works, without numbers
        report = {}
    notes: dict[str, tuple[str, bool]] = {}
    for q, r in report.items():
        lines = [QUANTIZER_HELP.get(q, q)]
        n = r.get("images") or 0
        where = f"Kodak ({n} images)" if n else "Kodak"
        if r.get("bd_before") is not None and q != "round":
            lines.append(f"measured on {where}: {r['bd_before']:+.1f} % BD-rate vs rounding "
                         "(negative = fewer bits for the same PSNR)")
        if r.get("bd_after") is not None:
            lines.append(f"with its fine-tuned decoder: {r['bd_after']:+.1f} % vs rounding")
        if r.get("rate_tables"):
            t = r["rate_tables"]
            order = " in ascending-σ stream order" if t.get("order") == 1 else ""
            lines.append(f"codes{order} with rate tables designed on {t.get('crops') or '?'} "
                         f"training crops (ECTCQ, id {t['id']}); files name them")
        if r.get("finetuned"):
            lines.append(f"decoder fine-tuned for {q.upper()} on its real quantized latents "
                         "(docs/methods.md §4.5); files record it in their weights hash")
        elif r.get("stale"):
            lines.append("a fine-tuned decoder exists but was tuned on other weights: not used")
        if len(lines) == 1:
            lines.append(f"not measured on {codec_name}'s weights yet")
        notes[q] = ("\n".join(lines), bool(r.get("finetuned")))
    return notes


#: what each decoder does, in one line (docs/methods.md §2.1, §7, §8)
DECODER_HELP = {
    "mse": "mse: the synthesis transform g_s, trained for MSE: the best PSNR, smooth textures",
    "diffusion": "diffusion: the blur-dissipated diffusion decoder samples texture that g_s "
                 "averages away (same bits; steps and seed live in the file)",
    "gan": "gan: a decoder trained with HiFiC's objective (MSE + LPIPS + a conditional GAN)",
}


def decoder_notes(codec_name: str) -> dict[str, tuple[str, bool]]:
    """Per decoder a learned codec offers: (tooltip, its weights are a PREVIEW).

    The diffusion decoder's tooltip gives its provenance (steps, CPU-hours, trained or preview)
    and what its model card measured on Kodak beside the MSE decoder on the same bitstreams
    (mean LPIPS and PSNR over the slider points), from the weights' metadata only."""
    from lic_core.paths import diffusion_weights_path

    notes: dict[str, tuple[str, bool]] = {"mse": (DECODER_HELP["mse"], False)}
    try:
        codec = get_codec(codec_name)
        decoders = tuple(getattr(codec, "decoders", ()) or ())
    except Exception:
        return notes
    for d in decoders:
        if d != "diffusion":
            notes.setdefault(d, (DECODER_HELP.get(d, d), False))
    if "diffusion" not in decoders:
        return notes
    lines = [DECODER_HELP["diffusion"]]
    preview = False
    try:
        card = read_weights_card(diffusion_weights_path(codec_name))
    except Exception:  # an injected decoder (tests) or an unreadable file: no numbers
        card = {}
    if card:
        from lic_core.evaluation.generative import diffusion_card_line
        from lic_core.weights import read_weights_hash

        preview = bool(card.get("preview"))
        try:
            now = read_weights_hash(weights_path(codec_name))
        except Exception:  # no codec weights file of its own (tests): no staleness check
            now = None
        line = diffusion_card_line(card, now)
        lines.append(line.replace(" · Kodak", "\nKodak", 1) + ("" if "LPIPS" not in line else
                                                               " — lower LPIPS = closer in look"))
    notes["diffusion"] = ("\n".join(lines), preview)
    return notes
