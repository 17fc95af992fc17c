"""How each rate–distortion series looks: colour, line style and marker (Qt-free).

A series' look is a function of its name only, so nothing changes colour when other series come
or go (issue 14 item 5), and no two series look alike (issue 30 item 2):

* a classical codec has its own colour (solid line, round markers);
* a learned codec's variants ``codec (quantizer, decoder)`` differ in colour by quantizer, in line
  style by decoder (mse solid, diffusion dashed, GAN dotted) and in marker by quantizer;
* a dataset average measured here (``[<folder> avg] <series>``) takes its series' colour with a
  thinner dash-dot line and cross markers;
* published references (``[ref Kodak avg] <name>``) are dashed; the few drawn by default have
  fixed colours that stay apart for deuteranope and protanope readers too (Okabe & Ito's
  palette plus black and grey), the others a (colour, dash) pair of their own.
"""
from __future__ import annotations

from typing import Iterable, Optional

#: classical codecs measured here (a codec's published curve, when there is one, shares its hue)
CODEC_COLORS = {"jpeg": "#1f77b4", "jpeg-444": "#17becf", "webp": "#2ca02c",
                "avif": "#9467bd", "jxl": "#8c564b", "j2k": "#e377c2"}
#: other classical codecs by their rank in the registry
PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#e377c2", "#8c564b", "#7f7f7f",
           "#bcbd22", "#393b79", "#637939"]
#: learned codecs: one family of four colours per codec (by quantizer: round, dead-zone,
#: RDOQ, TCQ); the codec a user has comes first
LEARNED_FAMILIES = [["#d62728", "#ff7f0e", "#b8860b", "#7b0d1e"],
                    ["#8e44ad", "#c0392b", "#d35400", "#6d214f"],
                    ["#a0522d", "#e75480", "#808000", "#4b0082"]]
QUANTIZERS = ("round", "deadzone", "rdoq", "tcq")
QUANTIZER_SYMBOLS = {"round": "o", "deadzone": "s", "rdoq": "t", "tcq": "d"}
DECODER_DASHES = {"mse": "solid", "diffusion": "dash", "gan": "dot"}
#: the published curves drawn by default: colour-blind-safe and far apart
FEW_REFERENCE_COLORS = (("JPEG 2000", "#f0a8d8"), ("JPEG (", "#56b4e9"), ("WebP", "#009e73"),
                        ("AV1", "#cc79a7"), ("BPG", "#999999"), ("VVC", "#000000"),
                        ("ELIC", "#e69f00"))
FEW_REFERENCES = ("JPEG (", "WebP", "BPG", "VVC", "ELIC")
#: every other reference: a colour of this list and a dash pattern of REF_DASHES
REF_PALETTE = ["#8c6d31", "#6b6ecf", "#b5cf6b", "#843c39", "#7b4173", "#3182bd", "#e6550d",
               "#31a354", "#756bb1", "#636363", "#bd9e39", "#ad494a"]
REF_DASHES = ("dash", "dot", "dashdot", "dashdotdot")

Look = tuple[str, str, Optional[str]]  # (colour "#rrggbb", dash, marker or None)


def is_reference(name: str) -> bool:
    return name.startswith("[ref")


def is_dataset(name: str) -> bool:
    return name.startswith("[") and not is_reference(name)


def base_series(name: str) -> str:
    """``[kodak avg] jpeg`` → ``jpeg``; other names unchanged."""
    return name.split("] ", 1)[1] if name.startswith("[") and "] " in name else name


def variant(name: str) -> tuple[str, str, str]:
    """``codec (quantizer, decoder)`` → (codec, quantizer, decoder); ``jpeg`` → (jpeg, "", "")."""
    if " (" not in name or not name.endswith(")"):
        return name, "", ""
    codec, inside = name.split(" (", 1)
    q, _, d = inside[:-1].partition(",")
    return codec, q.strip(), d.strip()


def short_reference_name(name: str) -> str:
    """``[ref Kodak avg] VVC VTM intra 4:4:4 (CompressAI)`` → ``VVC VTM intra 4:4:4``."""
    return base_series(name).split(" (", 1)[0]


class StyleBook:
    """The looks of every series of one plot (fixed at first sight, by name)."""

    def __init__(self, codecs: Iterable[str] = (), learned: Iterable[str] = (),
                 references: Iterable[str] = ()) -> None:
        self._codec_rank = {n: k for k, n in enumerate(codecs)}
        self._learned_rank = {n: k for k, n in enumerate(learned)}
        self._ref_rank = {n: k for k, n in enumerate(sorted(references))}
        self._looks: dict[str, Look] = {}

    def look(self, name: str) -> Look:
        if name not in self._looks:
            self._looks[name] = self._make(name)
        return self._looks[name]

    def _make(self, name: str) -> Look:
        if is_reference(name):
            return self._reference(base_series(name))
        codec, q, d = variant(base_series(name))
        if codec in self._learned_rank or q:
            k = self._learned_rank.get(codec, len(self._learned_rank))
            fam = LEARNED_FAMILIES[k % len(LEARNED_FAMILIES)]
            qi = QUANTIZERS.index(q) if q in QUANTIZERS else len(QUANTIZERS) - 1
            colour = fam[qi % len(fam)]
            dash = DECODER_DASHES.get(d, "dashdot")
            symbol = QUANTIZER_SYMBOLS.get(q, "o")
        else:
            colour = CODEC_COLORS.get(codec) or \
                PALETTE[self._codec_rank.get(codec, len(self._codec_rank)) % len(PALETTE)]
            dash, symbol = "solid", "o"
        if is_dataset(name):
            return colour, "dashdot" if dash == "solid" else dash, "x"
        return colour, dash, symbol

    def _reference(self, base: str) -> Look:
        for key, colour in FEW_REFERENCE_COLORS:
            if base.startswith(key):
                return colour, "dash", None
        others = [n for n in self._ref_rank
                  if not any(n.startswith(k) for k, _ in FEW_REFERENCE_COLORS)]
        k = others.index(base) if base in others else len(others) + len(self._looks)
        return (REF_PALETTE[k % len(REF_PALETTE)],
                REF_DASHES[(k // len(REF_PALETTE)) % len(REF_DASHES)], None)


#: the values a metric can take (an axis never shows others)
METRIC_BOUNDS = {"psnr": (0.0, None), "ms_ssim": (0.0, 1.0), "lpips": (0.0, 1.0)}
