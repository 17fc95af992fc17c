"""``lic export CKPT --name NAME [--out DIR]``: checkpoint → fp16 safetensors + model card (into
the codecs' weights folder, :func:`lic_core.paths.weights_dir`, unless ``--out``)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a training checkpoint as fp16 weights + model card",
        description="Write <out>/<name>.safetensors (fp16, card in the metadata), <name>.json "
                    "and <name>.md. With --eval-dir the card gets bpp / PSNR / MS-SSIM at the "
                    "slider points (real entropy coding when the learned codec supports it).")
    p.add_argument("checkpoint", help="checkpoint file or run folder (its newest checkpoint)")
    p.add_argument("--name", required=True, help="weights name, e.g. lic-lgem-preview")
    p.add_argument("--out", default=None,
                   help="output folder (default: the codecs' weights folder, lic_core/assets/weights "
                        "or $LIC_WEIGHTS_DIR)")
    p.add_argument("--preview", action="store_true",
                   help="mark the weights as a PREVIEW (metadata and card)")
    p.add_argument("--eval-dir", default=None, help="evaluation images (Kodak)")
    p.add_argument("--eval-limit", type=int, default=None, help="first N images (CPU)")
    p.add_argument("--u", type=float, nargs="+", default=None,
                   help="slider points (at least 6; default 0 0.2 … 1)")
    p.add_argument("--no-ema", action="store_true", help="export the raw, not the EMA weights")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--notes", default="", help="free text for the card")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..paths import weights_dir
    from ..train.export import export_checkpoint
    from ..train.validate import CARD_U_VALUES, format_points

    out = args.out or str(weights_dir())
    meta = export_checkpoint(args.checkpoint, args.name, out, preview=args.preview,
                             eval_dir=args.eval_dir, eval_limit=args.eval_limit,
                             u_values=args.u or CARD_U_VALUES, use_ema=not args.no_ema,
                             force=args.force, notes=args.notes)
    print(f"wrote {out}/{args.name}.safetensors ({meta['file_bytes']:,} bytes, "
          f"hash {meta['weights_hash']}{', PREVIEW' if meta['preview'] else ''})")
    if meta.get("eval"):
        print(format_points(meta["eval"]))
    return 0
