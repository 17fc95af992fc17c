"""Issue 11's main invariant: a .lic file decodes to the encoder's picture, bit for bit, in other
processes with other thread counts — for every quantizer, for the MSE and the diffusion decoders
(the full-resolution U-Net and the CPU-sized one of issue 13), and for HiFiC (tiny random
models; the arithmetic is the shipped one, format v2).

Files are encoded here (one process, one thread); three fresh processes with 1, 2 and 4 torch
threads decode all of them (a process per thread count: start-up is the expensive part) and
report the SHA-256 of every picture.  Every decode also passes the file's own symbol and picture
checks (a mismatch would raise instead of returning).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lic_core.codecs import EncodeParams

REPO = Path(__file__).resolve().parents[2]

_WORKER = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
d = Path(sys.argv[2])
from lic_core.codecs.hific import HificCodec
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.diffusion import DiffusionDecoder, DiffusionConfig
from lic_core.models import build_model
from lic_core.models.hific import build_hific
states = torch.load(d / "states.pt")
m = build_model("lic-lgem-tiny").eval()
m.load_state_dict(states["lgem"])
dec = DiffusionDecoder(DiffusionConfig(**states["diffusion_config"]))
dec.load_state_dict(states["diffusion"])
h = build_hific("hific-tiny").eval()
h.load_state_dict(states["hific"])
lite_dec = DiffusionDecoder(DiffusionConfig(**states["lite_config"]))
lite_dec.load_state_dict(states["lite"])
lgem = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec.eval(), use_finetuned=False)
lite = LearnedCodec("lic-lgem-tiny", model=m, diffusion=lite_dec.eval(), use_finetuned=False)
hific = HificCodec(model=h)
out = {"threads": torch.get_num_threads()}
for f in sorted(d.glob("*.lic")):
    codec = hific if f.name.startswith("hific") else lite if f.name.startswith("lite") else lgem
    r = codec.decode(f.read_bytes())
    assert r.info["symbols_checked"] and r.info["picture_checked"], f.name
    out[f.name] = hashlib.sha256(np.ascontiguousarray(r.reconstruction).tobytes()).hexdigest()
print(json.dumps(out))
"""


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 90 * np.sin(xx / (4 + c) + seed) * np.cos(yy / (6 + c)) for c in range(3)],
                   -1) + rng.randn(h, w, 3) * 8
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_every_decoder_and_quantizer_decodes_bit_exactly_in_other_processes(tmp_path):
    from lic_core.codecs.hific import HificCodec
    from lic_core.codecs.learned import LearnedCodec
    from lic_core.decoder.diffusion import DiffusionDecoder
    from lic_core.models import build_model
    from lic_core.models.hific import build_hific

    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    with torch.no_grad():  # a random g_a is nearly flat: spread the latents so symbols vary
        m.gains.gain.weight.mul_(6.0)
    dec = DiffusionDecoder.for_codec(m, mults=(1, 2))
    with torch.no_grad():
        dec.unet.out.weight.normal_(0.0, 0.2)  # zero-initialised: make the U-Net's output matter
    h = build_hific("hific-tiny").eval()
    h.entropy_bottleneck.update_tables()
    # the CPU-sized ("lite") decoder of issue 13, every weight moved off its initialisation
    lite_dec = DiffusionDecoder.for_codec(m, arch="lite")
    with torch.no_grad():
        for p in lite_dec.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    torch.save({"lgem": m.state_dict(), "diffusion": dec.state_dict(),
                "diffusion_config": dec.config.to_dict(), "hific": h.state_dict(),
                "lite": lite_dec.state_dict(), "lite_config": lite_dec.config.to_dict()},
               tmp_path / "states.pt")
    lgem = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec.eval(), use_finetuned=False)
    lite = LearnedCodec("lic-lgem-tiny", model=m, diffusion=lite_dec.eval(), use_finetuned=False)
    expected = {}
    img = _image(70, 100, seed=1)
    jobs = [(f"mse_{q}.lic", lgem, EncodeParams(rate=0.6, quantizer=q))
            for q in ("round", "deadzone", "rdoq", "tcq")]
    jobs += [("mse_tcq_scale_order.lic", lgem,  # TCQ streams by ascending σ (order = 1)
              EncodeParams(rate=0.6, quantizer="tcq", quantizer_params={"order": 1}))]
    jobs += [("diffusion_round.lic", lgem,
              EncodeParams(rate=0.4, quantizer="round", decoder="diffusion", diffusion_steps=3,
                           seed=11)),
             ("diffusion_tcq.lic", lgem,
              EncodeParams(rate=0.8, quantizer="tcq", decoder="diffusion", diffusion_steps=2,
                           seed=2 ** 40 + 3)),
             ("lite_diffusion.lic", lite,
              EncodeParams(rate=0.5, quantizer="round", decoder="diffusion", seed=5)),
             ("hific_round.lic", HificCodec(model=h), EncodeParams(rate=0.5, decoder="gan"))]
    for name, codec, params in jobs:
        r = codec.encode(img, params)
        (tmp_path / name).write_bytes(r.data)
        expected[name] = hashlib.sha256(np.ascontiguousarray(r.reconstruction).tobytes()).hexdigest()
    assert len(set(expected.values())) == len(expected)  # the cases really differ

    # OMP_WAIT_POLICY=passive: on a 2-core machine with a busy core, OpenMP's spin-waiting makes
    # every small op ~30× slower at 2 threads; how threads wait never changes a result
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_WAIT_POLICY": "passive"}
    for threads in (1, 2, 4):
        r = subprocess.run([sys.executable, "-c", _WORKER, str(threads), str(tmp_path)], cwd=REPO,
                           capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert got.pop("threads") == threads
        assert got == expected, f"{threads} threads"
