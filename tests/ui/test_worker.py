"""The worker -> GUI path: thousands of events, cancellation, errors, no threads left behind."""

from __future__ import annotations

import time

import numpy as np
import pytest

from reasonany_gui.engine.core.errors import CancelledError
from reasonany_gui.engine.core.events import Log, Progress, SensitivityUpdate, StageFinished, StageStarted
from reasonany_gui.ui.run_panel import RunPanel
from reasonany_gui.ui.worker import JobRunner, live_threads

MODULES = ("q", "k", "v", "o", "gate", "up", "down")


def _wait(qtbot, runner: JobRunner, timeout: int = 60_000):
    box = {}
    runner.finished.connect(lambda n, r: box.setdefault("r", ("finished", n, r)))
    runner.failed.connect(lambda n, e: box.setdefault("r", ("failed", n, e)))
    qtbot.waitUntil(lambda: "r" in box, timeout=timeout)
    return box["r"]


def test_thousands_of_events_reach_the_gui(qtbot):
    """5000 Progress + 200 plot updates through Signal(object): no crash (PySide6 6.12.0 aborts at ~570)."""
    panel = RunPanel()
    qtbot.addWidget(panel)
    runner = JobRunner()
    runner.engine_event.connect(panel.on_event)
    panel.begin("Test")

    def job(listener, cancel):
        listener(StageStarted("identify:reasoning@reasoning", "Scoring", 0, 1))
        for i in range(5000):
            listener(Progress("identify:reasoning@reasoning", (i + 1) / 5000, (i + 1) / 5000, f"sample {i + 1}", 1.0))
            if i % 25 == 0:
                grid = np.full((4, len(MODULES)), float(i + 1))
                listener(
                    SensitivityUpdate("reasoning@reasoning", "reasoning", "reasoning", i // 25 + 1, 200, MODULES, grid)
                )
        listener(Log("info", "done"))
        listener(StageFinished("identify:reasoning@reasoning", 1.0))
        return 42

    runner.start("flood", job)
    state, name, result = _wait(qtbot, runner)
    assert (state, name, result) == ("finished", "flood", 42)
    qtbot.waitUntil(lambda: panel.events_received == 5000 + 200 + 3, timeout=10_000)
    panel.refresh()
    assert panel.overall.value() == 1000
    assert panel.stages["identify:reasoning@reasoning"].state == "done"
    plots = panel.plots
    assert plots.updates_received == 200
    qtbot.waitUntil(lambda: plots.redraws >= 1, timeout=5_000)
    assert plots.redraws < 200  # throttled: redrawn on the timer, not per event
    assert plots.latest["reasoning@reasoning"].samples_done == 200
    assert "done" in panel.log_view.toPlainText()


def test_cancel_stops_a_job_within_seconds(qtbot):
    runner = JobRunner()
    started = {}

    def job(listener, cancel):
        started["t"] = time.monotonic()
        for _ in range(100_000):
            cancel.check()
            time.sleep(0.001)
        return "not cancelled"

    runner.start("slow", job)
    qtbot.waitUntil(lambda: "t" in started, timeout=5_000)
    t0 = time.monotonic()
    runner.cancel()
    state, _name, exc = _wait(qtbot, runner)
    assert state == "failed" and isinstance(exc, CancelledError)
    assert time.monotonic() - t0 < 3.0
    assert not runner.busy
    assert live_threads() == []


def test_an_error_in_the_job_is_reported_with_its_traceback(qtbot):
    runner = JobRunner()

    def job(listener, cancel):
        raise ValueError("boom in the worker")

    runner.start("bad", job)
    state, name, exc = _wait(qtbot, runner)
    assert state == "failed" and name == "bad" and isinstance(exc, ValueError)
    assert "boom in the worker" in runner.last_traceback
    # the runner is usable again
    runner.start("good", lambda listener, cancel: 7)
    assert _wait(qtbot, runner)[2] == 7


def test_handlers_given_at_start_get_the_result_or_the_error_in_the_gui_thread(qtbot):
    """The window says what a job's result means when it starts the job: no dispatch on job names afterwards.
    Each handler runs in the GUI thread (widgets may be touched there), before `finished`/`failed`, once, and
    only for its own job: the next job's handlers are its own."""
    import threading

    runner = JobRunner()
    calls: list = []
    gui = threading.current_thread()

    def on_result(result):
        calls.append(("result", result, threading.current_thread() is gui, runner.busy))

    def on_error(exc):
        calls.append(("error", type(exc).__name__, threading.current_thread() is gui, runner.busy))

    runner.finished.connect(lambda n, r: calls.append(("finished", n)))
    runner.start("first", lambda listener, cancel: 5, on_result, on_error)
    assert _wait(qtbot, runner) == ("finished", "first", 5)
    assert calls == [("result", 5, True, False), ("finished", "first")]

    def bad(listener, cancel):
        raise ValueError("boom")

    calls.clear()
    runner.start("second", bad, on_error=on_error)
    assert _wait(qtbot, runner)[0] == "failed"
    assert calls == [("error", "ValueError", True, False)]  # `first`'s result handler is not called again

    calls.clear()
    runner.start("third", lambda listener, cancel: 1)  # no handlers: only the signals
    assert _wait(qtbot, runner)[2] == 1
    assert calls == [("finished", "third")]


def test_one_job_at_a_time(qtbot):
    runner = JobRunner()
    gate = {"go": False}

    def job(listener, cancel):
        while not gate["go"]:
            cancel.check()
            time.sleep(0.005)
        return 1

    runner.start("first", job)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start("second", job)
    gate["go"] = True
    assert _wait(qtbot, runner)[2] == 1


def test_shutdown_cancels_and_joins(qtbot):
    runner = JobRunner()

    def job(listener, cancel):
        while True:
            cancel.check()
            time.sleep(0.005)

    t = runner.start("forever", job)
    qtbot.waitUntil(t.isRunning, timeout=5_000)
    assert runner.shutdown(5_000)
    assert not t.isRunning()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5_000)
