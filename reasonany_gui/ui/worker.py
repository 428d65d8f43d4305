"""Runs engine work off the GUI thread and forwards its events back, one signal per event.

Why a QThread subclass whose run() calls the engine directly: the pipeline is a plain blocking call,
so the thread needs no event loop of its own. Stopping is cooperative (the engine checks the
CancelToken between samples and tensors), and waiting for the thread never depends on a queued
`quit` that the GUI thread would have to deliver (that deadlocks). Events cross threads as
`Signal(object)` carrying the engine's small immutable dataclasses; the GUI stores the latest ones
and redraws on a timer, so a burst of thousands of events costs the window nothing.
"""

from __future__ import annotations

import logging
import time
import traceback
import weakref
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal

from reasonany_gui.engine.events import CancelToken, Log, StageFinished, StageStarted

log = logging.getLogger(__name__)

#: a job: called on the worker thread with (listener, cancel token), returns the job's result
JobFn = Callable[[Callable[[object], None], CancelToken], Any]

_live: "weakref.WeakSet[JobThread]" = weakref.WeakSet()


def live_threads() -> list["JobThread"]:
    """Job threads still running (the test suite fails a test that leaves any behind)."""
    out = []
    for t in list(_live):
        try:
            if t.isRunning():
                out.append(t)
        except RuntimeError:  # the C++ object is gone (deleteLater): it is not running
            _live.discard(t)
    return out


_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _log_event(ev: object, step: int = 0) -> None:
    """The log file gets what the log pane shows, plus stage boundaries (for bug reports).

    step: the stage's number within this job. Why not the event's index/total: a re-tune or a save reuses the
    merge's pipeline, whose stage count runs on past its plan ("stage 6/5")."""
    if isinstance(ev, Log):
        log.log(_LEVELS.get(ev.level, logging.INFO), "engine: %s", ev.message)
    elif isinstance(ev, StageStarted):
        log.info("step %d of this job started: %s", step, ev.title)
    elif isinstance(ev, StageFinished):
        log.info("stage %s finished in %.2f s", ev.stage, ev.seconds)


class JobThread(QThread):
    """One engine job on its own thread. Signals are delivered queued to GUI-thread receivers."""

    event = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)  # the exception; its formatted traceback is in `self.traceback_text`
    done = Signal(object, object, object)  # (thread, result, exception or None), after the above

    def __init__(self, name: str, fn: JobFn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"reasonany-{name}")
        self.name = name
        self._fn = fn
        self.cancel_token = CancelToken()
        self.traceback_text = ""
        self.events_emitted = 0
        self.steps = 0
        _live.add(self)

    def run(self) -> None:  # worker thread
        started = time.monotonic()
        try:
            result = self._fn(self._emit, self.cancel_token)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user as a dialog
            self.traceback_text = traceback.format_exc()
            level = logging.INFO if type(exc).__name__ == "CancelledError" else logging.ERROR
            log.log(level, "job %s failed after %.1f s:\n%s", self.name, time.monotonic() - started,
                    self.traceback_text)
            self.failed.emit(exc)
            self.done.emit(self, None, exc)
        else:
            log.info("job %s finished in %.1f s", self.name, time.monotonic() - started)
            self.succeeded.emit(result)
            self.done.emit(self, result, None)

    def _emit(self, ev: object) -> None:  # worker thread: the engine's listener
        self.events_emitted += 1
        if isinstance(ev, StageStarted):
            self.steps += 1
        _log_event(ev, self.steps)
        self.event.emit(ev)

    def cancel(self) -> None:
        self.cancel_token.cancel()


class JobRunner(QObject):
    """Starts one job at a time and re-emits its signals with the job's name attached.

    Lives in the GUI thread. `finished(name, result)` and `failed(name, exc)` arrive after the thread
    has returned from the engine call, so the next job may start from the slot.
    """

    event = Signal(object)
    started = Signal(str)
    finished = Signal(str, object)
    failed = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: JobThread | None = None
        self.last_traceback = ""

    @property
    def busy(self) -> bool:
        return self._thread is not None

    @property
    def current(self) -> str | None:
        return self._thread.name if self._thread is not None else None

    @property
    def thread(self) -> JobThread | None:
        return self._thread

    def start(self, name: str, fn: JobFn) -> JobThread:
        if self._thread is not None:
            raise RuntimeError(f"a job is already running ({self._thread.name}); wait for it or cancel it")
        t = JobThread(name, fn)
        t.event.connect(self.event)
        t.done.connect(self._done)  # a bound slot of a GUI-thread QObject: delivered queued
        self._thread = t
        t.start()
        self.started.emit(name)
        return t

    def cancel(self) -> None:
        if self._thread is not None:
            self._thread.cancel()

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Cancel and wait for the job (closing the window). True when no thread is left running."""
        t = self._thread
        if t is None:
            return True
        t.cancel()
        ok = t.wait(timeout_ms)
        if not ok:
            log.warning("job %s did not stop within %d ms", t.name, timeout_ms)
        return ok

    def _done(self, t: JobThread, result: Any, exc: BaseException | None) -> None:
        # The signal is emitted at the very end of run(); wait briefly so the thread is really gone
        # before the next job starts (no queued quit involved, so this cannot deadlock).
        t.wait(5000)
        if self._thread is t:
            self._thread = None
        _live.discard(t)
        t.deleteLater()
        if exc is None:
            self.finished.emit(t.name, result)
        else:
            self.last_traceback = t.traceback_text
            self.failed.emit(t.name, exc)
