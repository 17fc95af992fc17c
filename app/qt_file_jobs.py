"""Opening files in workers, with progress and Cancel (Qt side, no widgets).

Reading a 24 MP photo takes seconds (decode, content hash, display preview: issue 28 item 3);
all of it runs in the controller's pool and reports through ``file_progress``, which the
status bar's task widget shows with a Cancel button.  A picture the machine cannot hold is
refused in one line before it is decoded (:func:`app.model.memory.check`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject

from .model import display, memory, services
from .model.decoded import DecodedFile
from .model.encoding import Encoding, codec_family
from .model.errors import CancelledError, LicError
from .model.jobs import LoadedImage, run_load_image, run_open_compressed, run_score_decoded
from .model.session import CancelToken


class FileJob:
    """A file job for the pool (tracked by identity, cancelled through ``token``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.token = CancelToken()


class QtFileJobs(QObject):
    """The controller's file side: open an image or a compressed file, name an original.

    ``controller`` is the ``QtEncodeController`` that owns it (its pool, signals, session and
    ``encode_now``; not imported here: no import circle).
    """

    def __init__(self, controller: QObject) -> None:
        super().__init__(controller)
        self.c = controller
        self.session = controller.session
        self.jobs: list[FileJob] = []

    # ------------------------------------------------------------------ progress, cancel
    def _start(self, job: FileJob, what: str) -> None:
        self.jobs.append(job)
        self.c.message.emit(what)
        self.c.file_progress.emit(0.0, what)

    def _end(self, job: FileJob) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        if not self.jobs:
            self.c.file_progress.emit(-1.0, "")

    def _progress(self, job: FileJob, fraction: float, message: str) -> None:
        if job in self.jobs:
            self.c.file_progress.emit(float(fraction), f"{Path(job.path).name}: {message}")

    def cancel(self) -> None:
        """Stop every file being opened (the picture shown stays)."""
        for job in list(self.jobs):
            job.token.cancel()

    def busy(self) -> bool:
        return bool(self.jobs)

    def _fail(self, job: FileJob, title: Optional[str] = None):
        def fail(r, exc):
            self._end(job)
            if isinstance(exc, CancelledError):
                self.c.message.emit(f"opening {Path(job.path).name} cancelled")
                return
            msg = str(exc) if isinstance(exc, LicError) else f"{type(exc).__name__}: {exc}"
            self.c.error.emit(title or f"Cannot open {Path(job.path).name}", msg)
        return fail

    def _families(self) -> tuple[str, ...]:
        return tuple(codec_family(p.settings.codec) for p in self.session.active_panes)

    # ------------------------------------------------------------------ opening
    def open_image(self, path: str | Path, then: Optional[Callable[[], None]] = None) -> None:
        """Load an image file in a worker (decode, hash, preview), then make it the original."""
        job = FileJob(path)
        self._start(job, f"loading {Path(path).name}…")
        families, ms_ssim = self._families(), bool(self.session.view.compute_ms_ssim)

        def work(r, sink):
            return run_load_image(r.path, r.token, sink, families, ms_ssim)

        def done(r, loaded: LoadedImage):
            self._end(job)
            img, warning = loaded.image, loaded.warning
            self.session.set_image(img, path=r.path, image_id=loaded.image_id)
            self.c.message.emit(f"opened {Path(r.path).name} ({img.shape[1]}×{img.shape[0]})")
            if warning:
                self.c.message.emit(warning)
            if then:
                then()

        self.c.pool.submit(work, job, done, self._fail(job), self._progress)

    def open_compressed(self, path: str | Path,
                        then: Optional[Callable[[], None]] = None) -> None:
        """Decode a .lic (or classical) file in a worker, then show it *as decoded*."""
        job = FileJob(path)
        self._start(job, f"decoding {Path(path).name}…")

        def work(r, sink):
            return run_open_compressed(r.path, r.token, sink)

        def done(r, decoded: DecodedFile):
            self._end(job)
            self.session.open_decoded(decoded)
            self.c.message.emit(f"decoded {decoded.name} with {decoded.codec} "
                                f"({len(decoded.data):,} bytes, {decoded.bpp:.3f} bpp) — no "
                                "original to score it against: File → Compare against original…")
            if then:
                then()

        self.c.pool.submit(work, job, done, self._fail(job), self._progress)

    def open_path(self, path: str | Path, then: Optional[Callable[[], None]] = None) -> bool:
        """Open an image or a compressed file in a worker.

        False (and an ``error`` signal) when the file cannot even be looked at; otherwise True
        and the load runs off the GUI thread: a file that turns out unreadable becomes an
        ``error`` signal (a one-line dialog) when the worker reports back.
        """
        p = Path(path)
        try:
            if not p.is_file():
                raise LicError(f"{p} does not exist")
            with open(p, "rb") as f:
                magic = f.read(4)
        except LicError as exc:
            self.c.error.emit(f"Cannot open {p.name}", str(exc))
            return False
        except OSError as exc:
            self.c.error.emit(f"Cannot open {p.name}", exc.strerror or str(exc))
            return False
        if services.is_compressed_file(p, magic):
            self.open_compressed(p, then)
        else:
            self.open_image(p, then)
        return True

    # ------------------------------------------------------------------ naming an original
    def compare_against(self, path: str | Path,
                        then: Optional[Callable[[], None]] = None) -> bool:
        """Name the original of the opened compressed file.

        The file becomes pane A's encoding of that original (scored in a worker, its header's
        settings shown in pane A); the other panes encode the original as usual.  A big
        original is read in a worker too (then True means "started"; a refusal arrives as an
        ``error``); a small one is checked at once.
        """
        decoded = self.session.decoded
        p = Path(path)
        title = f"Cannot compare against {p.name}"
        if decoded is None:
            self.c.error.emit(title, "open a compressed file first")
            return False
        size = memory.image_size(p)
        if size is not None and display.is_big(size):
            job = FileJob(p)
            self._start(job, f"loading {p.name}…")

            def work(r, sink):
                return run_load_image(r.path, r.token, sink, self._families(),
                                      bool(self.session.view.compute_ms_ssim),
                                      check=self.session.check_original)

            def done(r, loaded: LoadedImage):
                self._end(job)
                if self.session.decoded is decoded:
                    self._adopt_original(decoded, loaded.image, p, loaded.image_id, then)

            self.c.pool.submit(work, job, done, self._fail(job, title), self._progress)
            return True
        try:
            image = services.load_image(p)
            self.session.check_original(image)
        except LicError as exc:
            self.c.error.emit(title, str(exc))
            return False
        self._adopt_original(decoded, image, p, None, then)
        return True

    def _adopt_original(self, decoded: DecodedFile, image, p: Path, image_id: Optional[str],
                        then: Optional[Callable[[], None]]) -> None:
        c = self.c
        with self.session.auto_encode_paused():
            self.session.set_image(image, path=str(p), file_info=decoded.info, keep_decoded=True,
                                   image_id=image_id)
            self.session.panes[0].settings = decoded.settings
        pane = self.session.panes[0]
        pane.busy, pane.status = True, "scoring the file…"
        image_id = self.session.image_id
        image = self.session.image
        which = self.session.encode_metrics()
        job = FileJob(p)

        def work(r, sink):
            return run_score_decoded(decoded, image, image_id, which)

        def done(r, enc: Encoding):
            if self.session.image_id == image_id and self.session.decoded is decoded:
                self.session.show_file_encoding(enc)
                psnr = enc.metrics.get("psnr", float("nan"))
                c.message.emit(f"A: {decoded.name} scored against {p.name}: "
                               f"{enc.bpp:.3f} bpp, {psnr:.2f} dB")
            if then:
                then()

        c.pool.submit(work, job, done, self._fail(job), None)
        for other in self.session.active_panes[1:]:
            c.encode_now(other.index)
