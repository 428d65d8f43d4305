"""UI test fixtures: offscreen Qt, a private REASONANY_HOME, a second tiny trio, and a leak check.

The tiny `trio` itself is tests/conftest.py's (one session fixture for the engine and the UI tests).

QT_QPA_PLATFORM must be set before anything imports Qt, hence at the top of this file.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import re  # noqa: E402
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
def other_trio(tmp_path_factory) -> dict[str, Path]:
    """A trio with another hidden size and depth: mixing it with `trio` is a mismatch."""
    from reasonany_gui.engine.data.demo import build_trio

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
    (tmp_path / "merges").mkdir(exist_ok=True)  # a name that reads well in the screenshots
    w.output.out.setText(str(tmp_path / "merges" / "qwen-safety-reasoning"))
    yield w
    w.quit_confirmed = True  # a test that leaves re-tuned masks unsaved: close without the question, release all
    w.close()
    w.runner.shutdown(10000)
    w.close()


SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SHOT_SIZE = (1024, 700)  # the smallest screen the app is laid out for (issue 23)
#: only a run with REASONANY_UPDATE_SCREENSHOTS=1 rewrites docs/screenshots/ (no git churn from ordinary runs)
UPDATE_SHOTS = os.environ.get("REASONANY_UPDATE_SCREENSHOTS") == "1"


def _neutralizer(base: Path):
    """text -> text with pytest's temp folders shown as a user's: models under ~/models, the rest under ~."""
    roots = sorted({str(base), str(base.resolve())}, key=len, reverse=True)
    pattern = re.compile("(?:" + "|".join(re.escape(r) for r in roots) + r")/([^/\s<>\"']+)")

    def sub(m: re.Match) -> str:
        return "~/models" if m.group(1).startswith(("trio", "other")) else "~"

    return lambda text: pattern.sub(sub, text)


def _show_neutral_paths(w, neutral) -> list:
    """Rewrite what the widgets display; returns the undo steps (the flow goes on with the real paths)."""
    from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QListWidget, QPlainTextEdit, QTableWidget, QTextEdit

    undo: list = []

    def swap(widget, get, put):
        old = get()
        new = neutral(old)
        if new != old:
            blocked = widget.blockSignals(True)
            put(new)
            widget.blockSignals(blocked)
            undo.append((widget, put, old))

    # widgets that show one text: (class, getter, setter)
    for cls, get, put in (
        (QLabel, "text", "setText"),
        (QLineEdit, "text", "setText"),
        (QPlainTextEdit, "toPlainText", "setPlainText"),
        (QTextEdit, "toHtml", "setHtml"),
    ):
        for widget in w.findChildren(cls):
            swap(widget, getattr(widget, get), getattr(widget, put))
    for box in w.findChildren(QComboBox):
        for i in range(box.count()):
            swap(box, lambda b=box, i=i: b.itemText(i), lambda t, b=box, i=i: b.setItemText(i, t))
    for lst in w.findChildren(QListWidget):
        for i in range(lst.count()):
            item = lst.item(i)
            swap(lst, item.text, item.setText)
    for table in w.findChildren(QTableWidget):
        for r in range(table.rowCount()):
            for c in range(table.columnCount()):
                item = table.item(r, c)
                if item is not None:
                    swap(table, item.text, item.setText)
    return undo


@pytest.fixture
def shot_size() -> tuple[int, int]:
    """The window size of the docs' screenshots."""
    return SHOT_SIZE


@pytest.fixture
def screenshot(qtbot, tmp_path, tmp_path_factory):
    """shoot(window, name): save the window as NAME.png once the timers painted.

    Into the test's temp folder; into docs/screenshots/ only with REASONANY_UPDATE_SCREENSHOTS=1. Paths are
    shown as ~/models/... and ~/merges/... so the pictures never show pytest's temp folders."""
    folder = SHOTS if UPDATE_SHOTS else tmp_path / "screenshots"
    neutral = _neutralizer(tmp_path_factory.getbasetemp())

    def shoot(w, name: str) -> Path:
        from PySide6.QtWidgets import QApplication

        focus = QApplication.focusWidget()
        if focus is not None:  # no blinking cursor or selected text in the pictures
            focus.clearFocus()
        w.run_panel.refresh()
        w.run_panel.plots.refresh()
        qtbot.wait(150)
        undo = _show_neutral_paths(w, neutral)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{name}.png"
            assert w.grab().save(str(path))
        finally:
            for widget, put, old in reversed(undo):
                blocked = widget.blockSignals(True)
                put(old)
                widget.blockSignals(blocked)
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
