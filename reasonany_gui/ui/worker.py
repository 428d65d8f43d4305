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
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from reasonany_gui.engine.core.events import CancelToken, Log, StageFinished, StageStarted

log = logging.getLogger(__name__)

#: a job: called on the worker thread with (listener, cancel token), returns the job's result
JobFn = Callable[[Callable[[object], None], CancelToken], Any]
#: what to do with a job's result, or with the exception it raised: called in the GUI thread
OnResult = Callable[[Any], None]
OnError = Callable[[BaseException], None]

_live: weakref.WeakSet[JobThread] = weakref.WeakSet()


def live_threads() -> list[JobThread]:
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

    engine_event = Signal(object)  # one engine event, as it comes
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
        self.steps = 0
        _live.add(self)

    def run(self) -> None:  # worker thread
        started = time.monotonic()
        try:
            result = self._fn(self._emit, self.cancel_token)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user as a dialog
            self.traceback_text = traceback.format_exc()
            level = logging.INFO if type(exc).__name__ == "CancelledError" else logging.ERROR
            log.log(
                level, "job %s failed after %.1f s:\n%s", self.name, time.monotonic() - started, self.traceback_text
            )
            self.failed.emit(exc)
            self.done.emit(self, None, exc)
        else:
            log.info("job %s finished in %.1f s", self.name, time.monotonic() - started)
            self.succeeded.emit(result)
            self.done.emit(self, result, None)

    def _emit(self, ev: object) -> None:  # worker thread: the engine's listener
        if isinstance(ev, StageStarted):
            self.steps += 1
        _log_event(ev, self.steps)
        self.engine_event.emit(ev)

    def cancel(self) -> None:
        self.cancel_token.cancel()


class JobRunner(QObject):
    """Starts one job at a time, calls the handlers given with it, and re-emits its end with the job's name.

    Lives in the GUI thread. Why handlers are given to `start` (as Orange's ConcurrentMixin and napari's
    `create_worker(_connect=...)` do): the code that starts a job says what its result means, so no slot has
    to dispatch on job names or find the job's objects in shared state. The handlers, then `finished(name,
    result)` or `failed(name, exc)`, run after the thread has returned from the engine call, so the next job
    may start from them.
    """

    engine_event = Signal(object)  # the running job's engine events (JobThread.engine_event)
    started = Signal(str)
    finished = Signal(str, object)
    failed = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: JobThread | None = None
        self._handlers: tuple[OnResult | None, OnError | None] = (None, None)
        self.last_traceback = ""

    @property
    def busy(self) -> bool:
        return self._thread is not None

    @property
    def current(self) -> str | None:
        return self._thread.name if self._thread is not None else None

    @property
    def job_thread(self) -> JobThread | None:  # not QObject.thread(): the running job's own thread
        return self._thread

    def start(
        self, name: str, fn: JobFn, on_result: OnResult | None = None, on_error: OnError | None = None
    ) -> JobThread:
        """Run `fn` on a new thread; then, in the GUI thread, `on_result(result)` or `on_error(exc)`."""
        if self._thread is not None:
            raise RuntimeError(f"a job is already running ({self._thread.name}); wait for it or cancel it")
        t = JobThread(name, fn)
        t.engine_event.connect(self.engine_event)
        t.done.connect(self._done)  # a bound slot of a GUI-thread QObject: delivered queued
        self._thread = t
        self._handlers = (on_result, on_error)
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
        on_result, on_error = self._handlers
        if self._thread is t:
            self._thread = None
            self._handlers = (None, None)
        _live.discard(t)
        t.deleteLater()
        if exc is None:
            if on_result is not None:
                on_result(result)
            self.finished.emit(t.name, result)
        else:
            self.last_traceback = t.traceback_text
            if on_error is not None:
                on_error(exc)
            self.failed.emit(t.name, exc)
