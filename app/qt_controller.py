"""Glue between the session model and the worker pool (Qt side, no widgets).

Pane settings changes are answered from the cache at once when possible; otherwise they restart a
250 ms single-shot timer per pane (debounce while a slider moves) and the newest request replaces
(cancels) the pane's running one.  Results come back through :meth:`SessionModel.finish`, which
ignores stale ones (request ids).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, QTimer, Signal

from .model import memory, session_file, sweep
from .model.encoding import Encoding, PaneSettings
from .model.errors import CancelledError, LicError
from .model.jobs import ScoreRequest, run_encode, run_scores
from .model.session import EncodeRequest, SessionModel
from .qt_file_jobs import QtFileJobs
from .qt_signals import ModelSubscriptions
from .qt_workers import QtWorkerPool

DEBOUNCE_MS = 250


class QtEncodeController(QObject):
    """Schedules encodes for the panes and decodes for opened files.

    Signals
    -------
    error(str, str) : title, one-line message for a dialog.
    message(str) : status-bar text.
    background_progress(int, int) : background encodes (RD sweeps) finished / submitted since
        the pool was last idle; ``(0, 0)`` when none is left.
    """

    error = Signal(str, str)
    message = Signal(str)
    background_progress = Signal(int, int)
    #: results being scored with a metric turned on later: (done, total), (0, 0) at the end
    scoring_progress = Signal(int, int)
    #: a codec swept over an image folder: (encodes done, total), (0, 0) at the end
    dataset_progress = Signal(int, int)
    #: opening a file (reading, decoding, hashing, preview): (fraction, what), (-1, "") at the end
    file_progress = Signal(float, str)

    def __init__(self, session: SessionModel, pool: Optional[QtWorkerPool] = None,
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.pool = pool or QtWorkerPool(parent=self)
        #: short jobs the views ask for (the inspector's maps of a big encoding): never queued
        #: behind two long encodes
        self.light_pool = QtWorkerPool(max_threads=1, parent=self)
        self.files = QtFileJobs(self)
        self._inflight: dict[int, EncodeRequest] = {}
        self._timers: list[QTimer] = []
        self._bg_total = 0
        self._bg_done = 0
        self._subs = ModelSubscriptions(self)
        for pane in session.panes:
            t = QTimer(self)
            t.setSingleShot(True)
            t.setInterval(DEBOUNCE_MS)
            t.timeout.connect(lambda i=pane.index: self.encode_now(i))
            self._timers.append(t)
            self._subs.connect(pane.events.settings,
                               lambda e, i=pane.index: self._on_settings_change(i))
        self._subs.connect(session.events.image, self._on_image_change)
        self._subs.connect(session.view.events.n_panes, self._on_n_panes_change)
        # LPIPS on demand: whatever is shown without it gets it, in a worker
        self._score_job: Optional[ScoreRequest] = None
        self._unscorable: set[int] = set()
        self._score_timer = QTimer(self)
        self._score_timer.setSingleShot(True)
        self._score_timer.setInterval(60)
        self._score_timer.timeout.connect(self.score_missing)
        self._subs.connect(session.view.events.compute_lpips, self._on_scores_needed)
        self._subs.connect(session.view.events.compute_ms_ssim, self._on_scores_needed)
        self._subs.connect(session.events.history, self._on_scores_needed)
        for pane in session.panes:
            self._subs.connect(pane.events.encoding, self._on_scores_needed)

    # ------------------------------------------------------------------ scheduling
    @property
    def auto_encode(self) -> bool:
        """Whether changes start encodes: the session's :attr:`SessionModel.auto_encode`."""
        return self.session.auto_encode

    @auto_encode.setter
    def auto_encode(self, on: bool) -> None:
        self.session.auto_encode = bool(on)

    def _on_settings_change(self, index: int) -> None:
        if not self.auto_encode or self.session.image is None:
            return
        if self.session.show_cached(index):  # instant: slider moved back to a known value
            self._timers[index].stop()
            self._cancel_inflight(index)
            return
        self.session.panes[index].status = "waiting…"
        self._timers[index].start()

    def _on_image_change(self, event) -> None:
        self.pool.cancel_all()
        self.light_pool.cancel_all()
        self._inflight.clear()
        self._unscorable.clear()
        # once every view has dropped the old pictures (later in this event loop turn), give
        # their memory back to the system
        QTimer.singleShot(0, memory.release)
        if self.auto_encode:
            self.encode_all()

    def _on_n_panes_change(self, event) -> None:
        if self.auto_encode and self.session.image is not None:
            for p in self.session.active_panes:
                if p.encoding is None and not p.busy:
                    self.encode_now(p.index)

    def encode_all(self, force: bool = False) -> None:
        """Encode every visible pane (``force``: really encode again, not from the cache —
        Encode → Re-encode all)."""
        for p in self.session.active_panes:
            self.encode_now(p.index, force=force)

    def encode_now(self, index: int, force: bool = False) -> None:
        """Encode pane ``index`` now (cache first unless ``force``), cancelling its previous
        request."""
        self._timers[index].stop()
        if self.session.image is None:
            return
        if not force and self.session.show_cached(index):
            self._cancel_inflight(index)
            return
        req = self.session.make_request(index)
        if req is None:
            return
        self._cancel_inflight(index)
        self._inflight[index] = req
        self.session.start(req)
        self.pool.submit(run_encode, req, self._on_done, self._on_fail, self._on_progress)

    def encode_background(self, settings: PaneSettings) -> bool:
        """Encode without showing it in a pane (adds an RD point).  False on cache hit/no image."""
        if self.session.image is None:
            return False
        hit = self.session.cache.get(self.session.image_id, self.session.key_for(settings))
        if hit is not None:
            self.session.add_to_history(hit)
            return False
        req = self.session.make_background_request(settings)
        if req is None:
            return False
        self._bg_total += 1
        self.background_progress.emit(self._bg_done, self._bg_total)
        self.pool.submit(run_encode, req, self._on_done, self._on_fail, None)
        return True

    def _background_finished(self) -> None:
        self._bg_done += 1
        if self._bg_done >= self._bg_total:
            self._bg_done = self._bg_total = 0  # the next sweep counts from zero
        self.background_progress.emit(self._bg_done, self._bg_total)

    def sweep(self, index: int, points: int = 6) -> int:
        """Encode pane ``index``'s codec at ``points`` rates across its range (RD curve; the
        plan is :func:`app.model.sweep.sweep_settings`).  Returns how many encodes started."""
        plan = sweep.sweep_settings(self.session.panes[index].settings, points)
        return sum(self.encode_background(s) for s in plan)

    def _cancel_inflight(self, index: int) -> None:
        req = self._inflight.pop(index, None)
        if req is not None:
            req.token.cancel()

    def cancel(self, index: int) -> None:
        """User cancel of pane ``index``'s running (or still pending) encode; the pane's
        settings go back to the result it shows."""
        pending = self._timers[index].isActive()
        self._timers[index].stop()
        req = self._inflight.get(index)
        if req is not None:
            req.token.cancel()  # the worker's failure reverts the settings (_on_fail)
        elif pending or self.session.panes[index].status == "waiting…":
            self._revert(index)
            self.session.panes[index].status = "cancelled"

    def cancel_all(self) -> None:
        pending = [i for i, t in enumerate(self._timers) if t.isActive()]
        for t in self._timers:
            t.stop()
        for i in pending:
            if i not in self._inflight:
                self._revert(i)
                self.session.panes[i].status = "cancelled"
        self._score_timer.stop()
        self.pool.cancel_all()
        self.light_pool.cancel_all()

    def _revert(self, index: int) -> None:
        """Settings back on the shown result, without encoding anything."""
        with self.session.auto_encode_paused():
            self.session.revert_to_shown(index)

    def restore_session(self, d: dict) -> None:
        """Panes and view from a read session file (:mod:`app.model.session_file`), then encode
        the panes and re-run the saved encodings (cache hits when still there); one-line
        :class:`LicError` for a session that cannot be applied."""
        todo = session_file.restore_session(self.session, d)
        self.encode_all()
        for s in todo:
            self.encode_background(s)

    def is_idle(self) -> bool:
        """No timer pending and no job running (tests wait on this)."""
        return self.pool.active_count() == 0 and self.light_pool.active_count() == 0 \
            and not any(t.isActive() for t in self._timers) and not self._score_timer.isActive()

    # ------------------------------------------------------------------ dataset curves
    def sweep_dataset(self, folder: str | Path, index: int = 0, points: int = 6,
                      cache_dir: Optional[str | Path] = None) -> bool:
        """Sweep pane ``index``'s codec (its quantizer and decoder) over every image of
        ``folder`` in a worker; the average curve joins the RD plot (cached on disk).  False
        (and an ``error``) when the folder cannot be swept."""
        from .model import dataset

        s = self.session.panes[index].settings
        try:
            images = dataset.list_images(folder)
            rates = sweep.sweep_rates(s.codec, points)
        except LicError as exc:
            self.error.emit("Cannot sweep that folder", str(exc))
            return False
        which = ("psnr", "ms_ssim") + (("lpips",) if self.session.view.compute_lpips else ())
        req = dataset.DatasetRequest(folder=str(folder), settings=s, rates=rates, metrics=which,
                                     cache_dir=str(cache_dir or dataset.dataset_cache_dir()))
        total = len(images) * len(rates)
        self.dataset_progress.emit(0, total)
        self.message.emit(f"sweeping {s.codec} over {Path(folder).name}: {len(images)} images × "
                          f"{len(rates)} rates…")

        def progress(r, fraction, msg):
            self.dataset_progress.emit(int(round(fraction * total)), total)

        def done(r, curve):
            self.dataset_progress.emit(0, 0)
            self.session.add_dataset_curve(curve)
            how = "from the cache" if curve.cached else f"in {curve.seconds:.0f} s"
            self.message.emit(f"dataset curve {curve.name}: mean of {curve.n_images} images at "
                              f"{len(curve.rates)} rates ({how})")

        def fail(r, exc):
            self.dataset_progress.emit(0, 0)
            if isinstance(exc, CancelledError):
                self.message.emit("dataset sweep cancelled")
                return
            msg = str(exc) if isinstance(exc, LicError) else f"{type(exc).__name__}: {exc}"
            self.error.emit(f"Dataset sweep of {s.codec} failed", msg)

        from .model.dataset import run_dataset_sweep

        self.pool.submit(run_dataset_sweep, req, done, fail, progress)
        return True

    # ------------------------------------------------------------------ scores on demand
    def _on_scores_needed(self, event=None) -> None:
        if self.session.deferred_metrics() and self.session.image is not None:
            self._score_timer.start()

    def score_missing(self, metrics: Optional[tuple[str, ...]] = None) -> bool:
        """Score every shown result that lacks one of ``metrics`` (default: the session's
        deferred metrics — LPIPS turned on after the results ran, MS-SSIM of a big image's
        results) in one worker job, one result after the other (a 24 MP MS-SSIM takes 6–15 s
        and ~0.4 GB: never two at once); True when a job was started."""
        s = self.session
        metrics = s.deferred_metrics() if metrics is None else tuple(metrics)
        if s.image is None or self._score_job is not None or not metrics:
            return False
        todo, wanted = [], []
        for e in s.shown_encodings():
            lack = tuple(m for m in metrics
                         if m not in e.metrics and (id(e), m) not in self._unscorable)
            if lack:
                todo.append(e)
                wanted.append(lack)
        if not todo:
            return False
        names = sorted({m for w in wanted for m in w})
        label = ", ".join(m.upper().replace("_", "-") for m in names)
        job = ScoreRequest(image=s.image, image_id=s.image_id, encodings=todo,
                           metrics=tuple(names), wanted=wanted)
        self._score_job = job
        self.scoring_progress.emit(0, len(todo))
        self.message.emit(f"scoring {len(todo)} result(s) with {label}…")

        def progress(r, fraction, msg):
            if r is self._score_job:
                self.scoring_progress.emit(int(round(fraction * len(todo))), len(todo))

        def done(r, scores):
            self._score_job = None
            self.scoring_progress.emit(0, 0)
            missed = False
            for enc, lack in zip(r.encodings, r.wanted):
                got = next((m for e, m in scores if e is enc), {})
                for m in lack:
                    if m not in got:
                        missed = True
                        self._unscorable.add((id(enc), m))  # never asked again (no retries)
            self.session.add_scores(scores)
            if missed:
                self.message.emit(f"{label} could not be computed for some results")
            self._on_scores_needed()  # results that arrived meanwhile

        def fail(r, exc):
            self._score_job = None
            self.scoring_progress.emit(0, 0)
            if isinstance(exc, CancelledError):
                return
            self._unscorable.update((id(e), m) for e, lack in zip(r.encodings, r.wanted)
                                    for m in lack)
            msg = str(exc) if isinstance(exc, LicError) else f"{type(exc).__name__}: {exc}"
            self.error.emit(f"Scoring with {label} failed", msg)

        self.pool.submit(run_scores, job, done, fail, progress)
        return True

    # ------------------------------------------------------------------ results
    def _on_progress(self, req: EncodeRequest, fraction: float, message: str) -> None:
        if self.session.is_current(req):
            pane = self.session.panes[req.pane]
            pane.progress = fraction
            pane.status = message

    def _on_done(self, req: EncodeRequest, enc: Encoding) -> None:
        if req.pane < 0:
            self._background_finished()
        if self._inflight.get(req.pane) is req:
            del self._inflight[req.pane]
        shown = self.session.finish(req, enc)
        if shown:
            t = enc.result.timings
            parts = [f"{k} {v * 1000:.0f} ms" for k, v in t.items() if isinstance(v, float)]
            name = self.session.panes[req.pane].name
            if enc.note:  # e.g. a target bpp the codec cannot reach: say so where it shows
                self.message.emit(f"{name}: {enc.note}")
            else:
                self.message.emit(f"{name}: {enc.codec} {enc.bpp:.3f} bpp — {', '.join(parts)} "
                                  f"(total {enc.elapsed:.2f} s)")

    def _on_fail(self, req: EncodeRequest, exc: BaseException) -> None:
        if req.pane < 0:
            self._background_finished()
        if self._inflight.get(req.pane) is req:
            del self._inflight[req.pane]
        cancelled = isinstance(exc, CancelledError)
        msg = str(exc) if isinstance(exc, LicError) else f"{type(exc).__name__}: {exc}"
        shown = self.session.fail(req, msg, cancelled=cancelled)
        if cancelled:
            if shown:
                self._revert(req.pane)  # the controls show what the pane shows again
                self.message.emit("encode cancelled")
            return
        if shown or req.pane < 0:
            self.error.emit(f"Encoding with {req.codec} failed", msg)

    # ------------------------------------------------------------------ files
    # (app/qt_file_jobs.py: reading, decoding and hashing run in workers, with progress)
    def open_compressed(self, path: str | Path,
                        then: Optional[Callable[[], None]] = None) -> None:
        """Decode a .lic (or classical) file in a worker, then show it *as decoded*."""
        self.files.open_compressed(path, then)

    def open_image(self, path: str | Path, then: Optional[Callable[[], None]] = None) -> None:
        """Load an image file in a worker (never on the GUI thread), then make it the original."""
        self.files.open_image(path, then)

    def compare_against(self, path: str | Path,
                        then: Optional[Callable[[], None]] = None) -> bool:
        """Name the original of the opened compressed file (:meth:`QtFileJobs.compare_against`)."""
        return self.files.compare_against(path, then)

    def open_path(self, path: str | Path, then: Optional[Callable[[], None]] = None) -> bool:
        """Open an image or a compressed file in a worker (:meth:`QtFileJobs.open_path`)."""
        return self.files.open_path(path, then)

    def close_image(self) -> bool:
        """File → Close: stop what runs for the picture and let go of it (its memory is given
        back once the views have dropped it)."""
        self.files.cancel()
        self.cancel_all()
        return self.session.close()
