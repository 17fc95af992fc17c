"""The studio's session model: image, panes, encodings, view state (Qt-free).

Qt views (``app/qt_*.py``) subscribe to ``events`` here and write user intent back; workers get
:class:`EncodeRequest` objects and hand back :class:`Encoding` objects.  Request ids make stale
results harmless: a result is cached and plotted, but only shown in its pane when it answers the
pane's newest request (Squoosh aborts; we additionally never let an old result overwrite a new one).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from lic_core.codecs import EncodeParams, get_codec
from lic_core.codecs.base import DEFAULT_DIFFUSION_STEPS

from . import display, services
from .decoded import DecodedFile
from .encoding import Encoding, EncodingCache, PaneSettings, params_key
from .events import EmitterGroup, EventedModel
from .view_state import ViewState

MAX_PANES = 3
PANE_NAMES = ("A", "B", "C")
#: the ``format`` field of a saved session (``app.model.session_file``)
SESSION_FORMAT = "lic-studio-session"


class CancelToken:
    """Thread-safe cancel flag checked by the codec's progress callback."""

    def __init__(self) -> None:
        self._ev = threading.Event()

    def cancel(self) -> None:
        self._ev.set()

    @property
    def cancelled(self) -> bool:
        return self._ev.is_set()


@dataclass
class EncodeRequest:
    """Everything a worker needs; immutable once made (the image array is never written)."""

    pane: int
    request_id: int
    image: np.ndarray
    image_id: str
    codec: str
    params: EncodeParams
    key: str
    target_bpp: Optional[float] = None
    metrics: tuple[str, ...] = ("psnr", "ms_ssim")
    token: CancelToken = field(default_factory=CancelToken)


class Pane(EventedModel):
    """One compare pane: its settings and what it currently shows.

    Events: ``settings``, ``encoding``, ``busy``, ``progress``, ``status``, ``error``.
    """

    _defaults = {
        "settings": None,
        "encoding": None,
        "busy": False,
        "progress": 0.0,
        "status": "",
        "error": "",
    }

    def __init__(self, index: int, settings: Optional[PaneSettings] = None) -> None:
        super().__init__(settings=settings or PaneSettings())
        self.index = index
        self.request_id = 0

    @property
    def name(self) -> str:
        return PANE_NAMES[self.index]

    def set(self, **changes: Any) -> None:
        """Change some settings fields (one ``settings`` event)."""
        d = self.settings.to_dict()
        d.update(changes)
        new = PaneSettings.from_dict(d)
        if new != self.settings:
            self.settings = new


class SessionModel:
    """Root model of one studio window.

    Attributes
    ----------
    image, image_path, image_id : the current original image (uint8 H×W×3), its file, its hash.
    panes : list[Pane]  (three exist; ``view.n_panes`` says how many are shown)
    view : ViewState
    history : list[Encoding]  every encoding of the current image (the RD plot's points)
    file_info : dict  header of the last opened compressed file ({} otherwise)
    decoded : DecodedFile | None  the opened compressed file; with no ``image`` it is shown as
        decoded and nothing is scored (it has no original until the user names one)
    recent_files : list[str]
    auto_encode : bool
        Whether a change of a pane's settings (or a new picture) starts an encode; off while
        :meth:`auto_encode_paused` (a session restored, an original adopted, a cancel reverted).

    Events
    ------
    image, history, file_info, decoded, recent_files, message (text=..., level=...)
    """

    def __init__(self, codecs: Optional[list[str]] = None) -> None:
        self.events = EmitterGroup("image", "history", "file_info", "decoded", "recent_files",
                                   "message", "dataset")
        #: codecs swept over an image folder: averages like the published curves (by name;
        #: they belong to no image and stay when the image changes)
        self.dataset_curves: dict[str, Any] = {}
        self.decoded: Optional[DecodedFile] = None
        self.image: Optional[np.ndarray] = None
        self.image_path: Optional[str] = None
        self.image_id: str = ""
        self.file_info: dict[str, Any] = {}
        self.recent_files: list[str] = []
        self.auto_encode = True
        self.view = ViewState()
        self.cache = EncodingCache()
        self.history: list[Encoding] = []
        names = codecs if codecs is not None else services.default_codec_pair()
        self.panes = [Pane(i, self._default_settings(names[i % len(names)]) if names else None)
                      for i in range(MAX_PANES)]

    # ------------------------------------------------------------------ settings helpers
    @staticmethod
    def _default_settings(codec_name: str) -> PaneSettings:
        try:
            c = get_codec(codec_name)
        except Exception:
            return PaneSettings(codec=codec_name)
        return PaneSettings(codec=codec_name, rate=float(c.default_rate),
                            quantizer=c.quantizers[0] if c.quantizers else "round",
                            decoder=c.decoders[0] if c.decoders else "mse")

    def set_pane_codec(self, index: int, codec_name: str) -> None:
        """Switch a pane's codec, resetting knobs the new codec does not have."""
        pane = self.panes[index]
        if pane.settings.codec == codec_name:
            return
        new = self._default_settings(codec_name)
        new.seed = pane.settings.seed
        pane.settings = new

    @contextmanager
    def auto_encode_paused(self) -> Iterator[None]:
        """Changes made inside encode nothing (:attr:`auto_encode` off); the previous state
        comes back afterwards, also when the block raises."""
        was, self.auto_encode = self.auto_encode, False
        try:
            yield
        finally:
            self.auto_encode = was

    @property
    def active_panes(self) -> list[Pane]:
        return self.panes[: self.view.n_panes]

    # ------------------------------------------------------------------ image
    def _reset_panes(self) -> None:
        """Nothing a pane shows survives a new picture: result, progress, status, error."""
        self.history = []
        self.view.view_rect = None
        self.view.artifact_rect = None
        for p in self.panes:
            p.request_id += 1  # anything in flight is now stale
            p.encoding = None
            p.busy = False
            p.error = ""
            p.progress = 0.0
            p.status = ""

    def set_image(self, image: np.ndarray, path: Optional[str] = None,
                  file_info: Optional[dict[str, Any]] = None, keep_decoded: bool = False,
                  image_id: Optional[str] = None) -> None:
        """Make ``image`` the original: clears pane results and history (the cache keeps this
        image's results, and a bounded share of other images').

        ``keep_decoded`` keeps the opened compressed file (its original is being named);
        otherwise opening an image closes it.  ``image_id`` is the picture's content hash when
        a worker computed it already (hashing 72 MB is no work for the GUI thread).
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError("session images are H×W×3 uint8")
        services.check_image_size(image, Path(path).name if path else "the image")
        self.image = np.ascontiguousarray(image)
        self.image.setflags(write=False)  # shared read-only with workers
        self.image_path = str(path) if path else None
        self.image_id = image_id or services.image_id(self.image)
        self.cache.trim_others(self.image_id)
        self._reset_panes()
        if not keep_decoded and self.decoded is not None:
            self.decoded = None
            self.events.decoded(value=None)
        self.file_info = dict(file_info or {})
        self.events.file_info(value=self.file_info)
        if path:
            self.add_recent(str(path))
        self.events.image(value=self.image, path=self.image_path)
        self.events.history(value=self.history)

    def close(self) -> bool:
        """Close the image (or the opened compressed file): the studio shows nothing, holds
        none of its pictures and keeps a bounded share of its results.  False when nothing
        was open."""
        if self.image is None and self.decoded is None:
            return False
        self.image = None
        self.image_path = None
        self.image_id = ""
        self.decoded = None
        self.cache.trim_others("")
        self._reset_panes()
        self.file_info = {}
        self.events.file_info(value=self.file_info)
        self.events.decoded(value=None)
        self.events.image(value=None, path=None)
        self.events.history(value=self.history)
        return True

    def open_decoded(self, decoded: DecodedFile) -> None:
        """Show a decoded compressed file *as decoded*: no original, nothing encoded or scored
        (a decoded picture is not an original; scoring it against itself would be a lie)."""
        self.image = None
        self.image_path = None
        self.image_id = ""
        self.cache.trim_others("")
        self._reset_panes()
        self.decoded = decoded
        self.file_info = dict(decoded.info)
        # pane A shows the file: its own settings (from its header) and its size, nothing else
        pane = self.panes[0]
        if decoded.codec in services.codec_names():
            pane.settings = decoded.settings
        pane.status = f"{decoded.name}: {decoded.bpp:.3f} bpp, not scored (no original)"
        self.add_recent(decoded.path)
        self.events.file_info(value=self.file_info)
        self.events.decoded(value=decoded)
        self.events.image(value=None, path=None)
        self.events.history(value=self.history)

    def check_original(self, original: np.ndarray) -> None:
        """Raise :class:`LicError` unless ``original`` can be the opened file's original."""
        from lic_core.errors import LicError

        d = self.decoded
        if d is None:
            raise LicError("no compressed file is open")
        if original.shape != d.reconstruction.shape:
            h, w = original.shape[:2]
            dh, dw = d.reconstruction.shape[:2]
            raise LicError(f"that image is {w}×{h} but {d.name} decodes to {dw}×{dh}: "
                           "it cannot be its original")
        if np.array_equal(original, d.reconstruction):
            raise LicError(f"that picture is {d.name}'s own decoded picture, not its original")

    def show_file_encoding(self, encoding: Encoding) -> None:
        """Pane A shows the opened file as an encoding of the named original (scored)."""
        pane = self.panes[0]
        pane.request_id += 1  # nothing in flight may replace it
        self.cache.put(encoding)
        self.add_to_history(encoding)
        pane.busy = False
        pane.error = ""
        pane.progress = 1.0
        pane.encoding = encoding
        pane.status = f"{encoding.bpp:.3f} bpp (file {Path(self.decoded.path).name})" \
            if self.decoded else f"{encoding.bpp:.3f} bpp"

    def add_recent(self, path: str, limit: int = 10) -> None:
        p = str(Path(path).resolve()) if Path(path).exists() else str(path)
        self.recent_files = [p] + [r for r in self.recent_files if r != p][: limit - 1]
        self.events.recent_files(value=list(self.recent_files))

    # ------------------------------------------------------------------ requests
    def _family(self, codec_name: str) -> str:
        try:
            return get_codec(codec_name).family
        except Exception:
            return "classical"

    def key_for(self, settings: PaneSettings) -> str:
        return params_key(settings.codec, settings.to_params(), settings.target_bpp,
                          self._family(settings.codec))

    def encode_metrics(self) -> tuple[str, ...]:
        """Metrics an encode computes before its result shows: PSNR always; MS-SSIM and LPIPS
        too when they are on, except for a big image, whose result shows first and is scored
        with them afterwards (:meth:`deferred_metrics`)."""
        big = self.image is not None and display.is_big(self.image.shape)
        if big:
            return ("psnr",)
        return ("psnr",) + (("ms_ssim",) if self.view.compute_ms_ssim else ()) + \
            (("lpips",) if self.view.compute_lpips else ())

    def deferred_metrics(self) -> tuple[str, ...]:
        """Metrics that shown results lacking them get in a background scoring job."""
        return (("ms_ssim",) if self.view.compute_ms_ssim else ()) + \
            (("lpips",) if self.view.compute_lpips else ())

    def make_request(self, index: int) -> Optional[EncodeRequest]:
        """A new request for pane ``index`` (bumps its request id), or None without image."""
        if self.image is None:
            return None
        pane = self.panes[index]
        pane.request_id += 1
        s = pane.settings
        which = self.encode_metrics()
        return EncodeRequest(pane=index, request_id=pane.request_id, image=self.image,
                             image_id=self.image_id, codec=s.codec, params=s.to_params(),
                             key=self.key_for(s), target_bpp=s.target_bpp, metrics=which)

    def cached_for(self, index: int) -> Optional[Encoding]:
        """The cached encoding matching pane ``index``'s current settings, if any."""
        if self.image is None:
            return None
        return self.cache.get(self.image_id, self.key_for(self.panes[index].settings))

    def show_cached(self, index: int) -> bool:
        """Show the cached result for the pane's settings now (no worker); True on a hit."""
        enc = self.cached_for(index)
        if enc is None:
            return False
        pane = self.panes[index]
        pane.request_id += 1  # supersede whatever is in flight for this pane
        self.add_to_history(enc)  # a cached result is a result: it is on its curve
        pane.busy = False
        pane.error = ""
        pane.encoding = enc
        pane.progress = 1.0
        pane.status = f"{enc.bpp:.3f} bpp (cached)"
        return True

    def start(self, request: EncodeRequest) -> None:
        pane = self.panes[request.pane]
        pane.busy = True
        pane.progress = 0.0
        pane.error = ""
        pane.status = "encoding…"

    def is_current(self, request: EncodeRequest) -> bool:
        """True when ``request`` is its pane's newest one for the current image."""
        return (request.pane >= 0 and request.image_id == self.image_id
                and request.request_id == self.panes[request.pane].request_id)

    def make_background_request(self, settings: PaneSettings) -> Optional[EncodeRequest]:
        """A request shown in no pane (RD sweeps, restored sessions): it only feeds the plot."""
        if self.image is None:
            return None
        which = self.encode_metrics()
        return EncodeRequest(pane=-1, request_id=0, image=self.image, image_id=self.image_id,
                             codec=settings.codec, params=settings.to_params(),
                             key=self.key_for(settings), target_bpp=settings.target_bpp,
                             metrics=which)

    def finish(self, request: EncodeRequest, encoding: Encoding) -> bool:
        """Store a worker's result; show it only if it answers the newest request.

        Returns True when the pane now shows ``encoding``.
        """
        self.cache.put(encoding)
        if encoding.image_id == self.image_id:
            self.add_to_history(encoding)
        if not self.is_current(request):
            return False
        pane = self.panes[request.pane]
        pane.encoding = encoding
        pane.busy = False
        pane.progress = 1.0
        pane.status = f"{encoding.bpp:.3f} bpp in {encoding.elapsed:.2f} s"
        return True

    def fail(self, request: EncodeRequest, message: str, cancelled: bool = False) -> bool:
        """A worker failed or was cancelled; only the pane's newest request changes the pane."""
        if not self.is_current(request):
            return False
        pane = self.panes[request.pane]
        pane.busy = False
        pane.progress = 0.0
        pane.status = "cancelled" if cancelled else "failed"
        if not cancelled:
            pane.error = message
        return True

    def add_to_history(self, encoding: Encoding) -> None:
        if any(e.key == encoding.key and e.image_id == encoding.image_id for e in self.history):
            return
        self.history.append(encoding)
        self.events.history(value=self.history, added=encoding)

    @staticmethod
    def settings_of(encoding: Encoding) -> PaneSettings:
        """The pane settings that produced ``encoding`` (a cancelled change goes back to them)."""
        p = encoding.params
        return PaneSettings(codec=encoding.codec, rate=float(p.rate), quantizer=p.quantizer,
                            decoder=p.decoder,
                            diffusion_steps=int(p.diffusion_steps or DEFAULT_DIFFUSION_STEPS),
                            seed=int(p.seed), target_bpp=encoding.target_bpp)

    def revert_to_shown(self, index: int) -> bool:
        """Put pane ``index``'s settings back on what it shows (after a cancel): the controls
        never show a rate next to a result computed at another one.  False with no result."""
        pane = self.panes[index]
        enc = pane.encoding
        if enc is None or enc.key.startswith("file:"):
            return False
        s = self.settings_of(enc)
        if s.target_bpp is not None:
            s.rate = pane.settings.rate  # a target-bpp result: the target is the setting
        if s.decoder != "diffusion":  # steps and seed change nothing here: keep the user's
            s.diffusion_steps, s.seed = pane.settings.diffusion_steps, pane.settings.seed
        pane.settings = s
        return True

    # ------------------------------------------------------------------ scores on demand
    def shown_encodings(self) -> list[Encoding]:
        """Every encoding the studio shows for this image: the RD points and the panes'."""
        out: list[Encoding] = []
        for e in self.history + [p.encoding for p in self.active_panes if p.encoding]:
            if e.image_id == self.image_id and all(e is not o for o in out):
                out.append(e)
        return out

    def missing_metric(self, metric: str) -> list[Encoding]:
        """The shown encodings without ``metric`` (e.g. LPIPS turned on after they ran)."""
        return [e for e in self.shown_encodings() if metric not in e.metrics]

    def add_scores(self, scores: list[tuple[Encoding, dict[str, float]]]) -> None:
        """Metrics computed later (a worker scored existing results): the encodings gain them
        and every view of them refreshes."""
        changed = []
        for enc, metrics in scores:
            if enc.image_id != self.image_id:
                continue
            enc.metrics.update(metrics)
            changed.append(enc)
        if not changed:
            return
        self.events.history(value=self.history, rescored=changed)
        for p in self.panes:
            if p.encoding is not None and any(p.encoding is e for e in changed):
                p.events.encoding(value=p.encoding, old=p.encoding)

    # ------------------------------------------------------------------ RD data
    @staticmethod
    def curve_name(enc: Encoding) -> str:
        """Learned encodings split by quantizer and decoder: each is its own RD curve."""
        try:
            fam = get_codec(enc.codec).family
        except Exception:
            fam = "classical"
        if fam == "learned":
            return f"{enc.codec} ({enc.params.quantizer}, {enc.params.decoder})"
        return enc.codec

    def rd_curves(self, metric: str) -> dict[str, tuple[list[float], list[float]]]:
        """``{curve: (bpps, values)}`` sorted by bpp, from this image's encodings."""
        curves: dict[str, list[tuple[float, float]]] = {}
        for e in self.history:
            v = e.metrics.get(metric)
            if v is None or not np.isfinite(v):
                continue
            curves.setdefault(self.curve_name(e), []).append((e.bpp, float(v)))
        out = {}
        for name, pts in curves.items():
            pts.sort()
            out[name] = ([p[0] for p in pts], [p[1] for p in pts])
        return out

    def add_dataset_curve(self, curve) -> None:
        """A finished :class:`~app.model.dataset.DatasetCurve` joins the plot (replacing one of
        the same name)."""
        self.dataset_curves[curve.name] = curve
        self.events.dataset(value=curve)

    def dataset_rd_curves(self, metric: str) -> dict[str, tuple[list[float], list[float]]]:
        """``{"[folder avg] series": (bpps, values)}`` of the dataset curves with ≥ 1 point."""
        out = {}
        for name, c in self.dataset_curves.items():
            b, q = c.points(metric)
            if b:
                out[name] = (b, q)
        return out

    def operating_points(self, metric: str) -> list[tuple[int, float, float]]:
        """(pane index, bpp, value) of what the active panes show."""
        pts = []
        for p in self.active_panes:
            e = p.encoding
            if e is not None and np.isfinite(e.metrics.get(metric, np.nan)):
                pts.append((p.index, e.bpp, e.metrics[metric]))
        return pts

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-able session: image path, pane settings, view state, encodings' parameters."""
        view = self.view.dict()
        return {
            "format": SESSION_FORMAT,
            "version": 1,
            "image_path": self.image_path,
            "image_id": self.image_id,
            "panes": [p.settings.to_dict() for p in self.panes],
            "view": view,
            "encodings": [{"codec": e.codec, "params": asdict(e.params),
                           "target_bpp": e.target_bpp} for e in self.history],
        }

    def apply_dict(self, d: dict[str, Any]) -> list[PaneSettings]:
        """Restore panes and view from :meth:`to_dict` output (the image is loaded by the caller).

        Returns the settings of the saved encodings so the controller can re-run them.
        """
        if d.get("format") != SESSION_FORMAT:
            from lic_core.errors import LicError

            raise LicError("not a LIC Studio session file")
        for p, s in zip(self.panes, d.get("panes", [])):
            p.settings = PaneSettings.from_dict(s)
        self.view.update(d.get("view", {}))
        self.view.validate()
        todo = []
        for e in d.get("encodings", []):
            params = e.get("params", {})
            todo.append(PaneSettings(codec=e.get("codec", "jpeg"), rate=params.get("rate", 75.0),
                                     quantizer=params.get("quantizer", "round"),
                                     decoder=params.get("decoder", "mse"),
                                     diffusion_steps=params.get("diffusion_steps", DEFAULT_DIFFUSION_STEPS),
                                     seed=params.get("seed", 0), target_bpp=e.get("target_bpp")))
        return todo
