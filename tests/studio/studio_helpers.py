"""Helpers of the studio tests (issue 14): a tiny fake learned codec, a window, images."""
from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import numpy as np

from lic_core.codecs import Codec, DecodeResult, EncodeResult, Inspection
from lic_core.errors import LicFormatError

FAKE = "test-fake-studio"


class FakeLearnedCodec(Codec):
    """Deterministic 'learned' codec (uniform quantisation, u-dependent step) with an
    Inspection shaped like the LGEM codec's; its card says it is a preview."""

    name = FAKE
    family = "learned"
    rate_label = "rate u"
    rate_range = (0.0, 1.0)
    default_rate = 0.5
    quantizers = ("round", "tcq")
    decoders = ("mse",)
    file_extension = ".fakelic"
    M, N = 8, 4
    delay = 0.0  # seconds per progress step (cancel tests)

    def _step(self, u: float) -> int:
        return int(round(2 + (1 - min(max(u, 0.0), 1.0)) * 40))

    def encode(self, image, params, progress=None):
        h, w = image.shape[:2]
        if progress:
            progress(0.0, "encoding")
        for k in range(20 if self.delay else 0):
            time.sleep(self.delay)
            if progress:
                progress(k / 20, "analysis transform")
        q = self._step(params.rate)
        idx = (image.astype(np.int32) // q).astype(np.uint8)
        head = json.dumps({"h": h, "w": w, "q": q, "u": params.rate,
                           "quantizer": params.quantizer}).encode()
        data = b"FAKE" + len(head).to_bytes(2, "big") + head + zlib.compress(idx.tobytes(), 6)
        rec = self.decode(data).reconstruction
        lh, lw = -(-h // 64) * 4, -(-w // 64) * 4
        rng = np.random.default_rng(int(params.rate * 1000))
        y_hat = np.round(rng.normal(0, 4, (self.M, lh, lw))).astype(np.float32)
        bits_y = (np.abs(y_hat) * (1.5 - params.rate) + 0.05).astype(np.float32)
        bits_z = rng.uniform(0, 1, (self.N, lh // 4, lw // 4)).astype(np.float32)
        insp = Inspection(y_hat=y_hat, means=y_hat * 0.5, scales=np.abs(y_hat) + 0.5,
                          bits_y=bits_y, bits_z=bits_z, channel_groups=[2, 2, 4],
                          group_bits={f"g{g}/{p}": float(bits_y.sum()) / 6
                                      for g in range(3) for p in ("anchor", "non-anchor")},
                          header_bytes=6 + len(head), z_bytes=0,
                          y_bytes=len(data) - 6 - len(head),
                          estimated_bits=float(bits_y.sum() + bits_z.sum()))
        if progress:
            progress(1.0, "done")
        return EncodeResult(data=data, reconstruction=rec, bpp=8 * len(data) / (h * w),
                            params=params, codec=self.name, file_extension=self.file_extension,
                            timings={"encode": 0.0}, inspection=insp)

    def decode(self, data, progress=None):
        if data[:4] != b"FAKE":
            raise LicFormatError("not a fake bitstream")
        n = int.from_bytes(data[4:6], "big")
        hd = json.loads(data[6:6 + n])
        idx = np.frombuffer(zlib.decompress(data[6 + n:]), np.uint8).reshape(hd["h"], hd["w"], 3)
        rec = np.clip(idx.astype(np.int32) * hd["q"] + hd["q"] // 2, 0, 255).astype(np.uint8)
        return DecodeResult(reconstruction=rec, codec=self.name,
                            info={"rate": hd["u"], "quantizer": hd["quantizer"],
                                  "decoder": "mse"})

    def describe(self):
        return {"name": self.name, "family": self.family, "preview": True,
                "status": "PREVIEW — test weights", "parameters": 1_234_567,
                "total_steps": 42, "cpu_hours": 0.5,
                "bd_rate": {"jpeg": 12.5, "webp": 80.0}}


def make_window(qtbot, codecs=("jpeg", "jpeg", "jpeg"), persist=False, size=(1366, 768)):
    from app.model.session import SessionModel
    from app.qt_main_window import QtMainWindow

    win = QtMainWindow(SessionModel(codecs=list(codecs)), persist=persist)
    win.confirm_overwrite = lambda p: True
    qtbot.addWidget(win)
    if size:
        win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    return win


def wait_idle(qtbot, win, timeout=60000):
    qtbot.waitUntil(win.controller.is_idle, timeout=timeout)
    qtbot.wait(30)  # queued result signals land
    qtbot.waitUntil(win.controller.is_idle, timeout=timeout)


def generated_image(h=144, w=208, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(x / 9.0), y * 255 / h,
                    128 + 80 * np.cos((x + y) / 15.0)], -1)
    img[h // 3: h // 2, w // 4: w // 2] = (240, 30, 30)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> Path:
    from app.model.export import png_bytes

    path.write_bytes(png_bytes(image))
    return path


def fake_encoding(session, codec, rate, bpp, psnr, quantizer="round", decoder="mse",
                  ms_ssim=0.95, lpips=None, family=None):
    """An :class:`Encoding` of the session's image with the given numbers (RD plot tests: no
    encode needed)."""
    from app.model.encoding import Encoding, params_key
    from lic_core.codecs import EncodeParams

    params = EncodeParams(rate=float(rate), quantizer=quantizer, decoder=decoder)
    img = session.image
    res = EncodeResult(data=bytes(max(1, int(bpp * img.shape[0] * img.shape[1] / 8))),
                       reconstruction=img, bpp=float(bpp), params=params, codec=codec,
                       file_extension=".bin", timings={}, inspection=None)
    metrics = {"psnr": float(psnr), "ms_ssim": float(ms_ssim)}
    if lpips is not None:
        metrics["lpips"] = float(lpips)
    fam = family or ("learned" if codec == FAKE else "classical")
    return Encoding(key=params_key(codec, params, None, fam), image_id=session.image_id,
                    codec=codec, params=params, result=res, metrics=metrics)
