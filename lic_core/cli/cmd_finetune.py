"""``lic finetune``: retrain the decoder on latents from the real inference quantizer
(docs/methods.md §4.5)."""
from __future__ import annotations

from ..train import finetune as _ft


def register(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune the decoder on real quantized latents (TCQ, RDOQ, ...)",
                       description=_ft.__doc__.splitlines()[0])
    _ft.add_arguments(p)
    p.set_defaults(func=_ft.run)
