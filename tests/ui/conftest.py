"""UI test fixtures: offscreen Qt, a private REASONANY_HOME, tiny model trios, and a leak check.

QT_QPA_PLATFORM must be set before anything imports Qt, hence at the top of this file.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

#: settings that keep a UI run on the tiny trio to a second or two on 2 CPU cores
FAST = {"samples": 4, "max_length": 64, "device": "cpu"}


@pytest.fixture(autouse=True)
def reasonany_home(tmp_path, monkeypatch) -> Path:
    """Settings, logs, score cache and demo of each test live in its own folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("REASONANY_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_threads_left(qapp):
    """Fail a test that leaves a worker thread running (napari-style leak check)."""
    yield
    from reasonany_gui.ui.worker import live_threads

    deadline = time.monotonic() + 10
    while live_threads() and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.02)
    left = live_threads()
    for t in left:  # do not let one leak cascade into the next tests
        t.cancel()
        t.wait(10000)
    assert not left, f"worker threads left running: {[t.objectName() for t in left]}"


@pytest.fixture(scope="session")
def styled_app(qapp):
    from reasonany_gui.app import apply_style

    apply_style(qapp)
    return qapp


@pytest.fixture(scope="session")
def trio(tmp_path_factory) -> dict[str, Path]:
    """A tiny Qwen2 base/reasoning/domain trio, built once (read-only for the tests)."""
    from reasonany_gui.engine.demo import build_trio

    return build_trio(tmp_path_factory.mktemp("trio"), arch="qwen2", seed=0)


@pytest.fixture(scope="session")
def other_trio(tmp_path_factory) -> dict[str, Path]:
    """A trio with another hidden size and depth: mixing it with `trio` is a mismatch."""
    from reasonany_gui.engine.demo import build_trio

    return build_trio(tmp_path_factory.mktemp("other"), arch="qwen2", seed=1, hidden=32, layers=3)


@pytest.fixture
def window(qtbot, styled_app, trio, tmp_path):
    """The main window with the tiny trio picked, fast settings and a fresh output folder."""
    from reasonany_gui.ui.main_window import MainWindow

    w = MainWindow(demo_on_first_start=False)
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    pick_models(w, trio)
    w.settings.apply(FAST)
    w.output.out.setText(str(tmp_path / "merged"))
    yield w
    w.runner.shutdown(10000)
    w.close()


SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SHOT_SIZE = (1440, 900)


@pytest.fixture
def screenshot(qtbot):
    """shoot(window, name): save the window as docs/screenshots/NAME.png once the timers painted."""

    def shoot(w, name: str) -> Path:
        from PySide6.QtWidgets import QApplication

        focus = QApplication.focusWidget()
        if focus is not None:  # no blinking cursor or selected text in the pictures
            focus.clearFocus()
        w.run_panel.refresh()
        w.run_panel.plots.refresh()
        qtbot.wait(150)
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        assert w.grab().save(str(path))
        assert path.stat().st_size > 20_000  # a real picture, not an empty window
        return path

    return shoot


@pytest.fixture
def job_waiter(qtbot):
    """wait(window) -> ('finished'|'failed', job name, result or exception)."""
    return lambda w, timeout=120_000: wait_job(qtbot, w, timeout)


@pytest.fixture
def picker():
    """pick(window, {role: folder}) chooses the three models as a user would."""
    return pick_models


def pick_models(w, specs: dict) -> None:
    for role in ("base", "reasoning", "domain"):
        w.models.pickers[role].set_spec(str(specs[role]))


def wait_job(qtbot, w, timeout: int = 120_000):
    """Wait until the window's current job ends; return ('finished'|'failed', name, payload)."""
    box: dict = {}
    if not w.runner.busy:
        raise AssertionError("no job is running")

    def fin(name, result):
        box["r"] = ("finished", name, result)

    def fail(name, exc):
        box["r"] = ("failed", name, exc)

    w.runner.finished.connect(fin)
    w.runner.failed.connect(fail)
    try:
        qtbot.waitUntil(lambda: "r" in box, timeout=timeout)
    finally:
        w.runner.finished.disconnect(fin)
        w.runner.failed.disconnect(fail)
    return box["r"]
