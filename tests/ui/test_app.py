"""Start-up: the demo on first start, the entry point, the log file, the estimate, the score cache, evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from reasonany_gui.engine.core import paths
from reasonany_gui.engine.data import demo
from reasonany_gui.engine.settings.config import MergeConfig


def test_first_start_preselects_the_demo(qtbot, styled_app):
    from reasonany_gui.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    specs = w.models.specs()
    assert all(Path(specs[r], "config.json").is_file() for r in ("base", "reasoning", "domain"))
    assert w.models.verdict.kind == "ok"
    cfg = w.build_config()
    # the demo's own data and benchmarked setting (demo.json); every other setting at the MergeConfig default
    preset = demo.demo_preset()
    default = MergeConfig().replace(**preset)
    assert (cfg.reasoning_data, cfg.domain_data) == (default.reasoning_data, default.domain_data)
    for name, value in w.settings.values().items():
        assert value == getattr(default, name), name
    # the estimate is there before anything runs
    assert "Estimate" in w.settings.estimate.text() and "RAM" in w.settings.estimate.text()
    w.close()


@pytest.fixture
def preset(styled_app) -> dict:
    """The shipped demo's preset; these tests need the trained demo."""
    found = demo.demo_preset()
    if not found:
        pytest.skip("no trained demo shipped")
    return found


def open_window(qtbot):
    """A main window as the app opens it (first start: the demo; later: the saved settings)."""
    from reasonany_gui.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    return w


def test_picking_own_models_drops_the_demo_preset_but_keeps_user_changes(qtbot, preset, trio, picker):
    w = open_window(qtbot)
    assert w.settings.values()["reasoning_ratio"] == preset["reasoning_ratio"]
    w.settings.apply({"domain_scale": 1.25})  # the user's own change survives
    picker(w, trio)
    default = MergeConfig()
    values = w.settings.values()
    assert values["domain_scale"] == 1.25
    for name in ("reasoning_ratio", "domain_ratio", "reasoning_scale", "scope", "intersect"):
        assert values[name] == getattr(default, name), name
    assert (w.data.specs()["reasoning_data"], w.data.specs()["domain_data"]) == (
        default.reasoning_data,
        default.domain_data,
    )
    assert "recommended defaults" in w.status_text.text()
    w.close()


def test_a_restored_demo_still_drops_its_preset_for_own_models(qtbot, preset, trio, picker):
    first = open_window(qtbot)
    first.save_settings()  # what closing the window does
    first.close()
    w = open_window(qtbot)  # the next start restores the demo and its preset from the settings file
    assert w.settings.values()["domain_scale"] == preset["domain_scale"]
    picker(w, trio)
    assert w.settings.values()["domain_scale"] == MergeConfig().domain_scale
    w.close()


def test_data_preview_of_a_users_file_and_a_broken_one(qtbot, window, tmp_path):
    w = window
    good = tmp_path / "mine.jsonl"
    good.write_text("\n".join(json.dumps({"text": f"Sample number {i} about interest rates."}) for i in range(7)))
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"nothing useful": 1}\n')
    picker = w.data.pickers["domain"]
    picker.set_spec(str(good))
    w.go("data")
    assert [t for t, _ in picker.preview_rows][0].startswith("Sample number 0")
    assert len(picker.preview_rows) == 5 and all(n and n > 30 for _, n in picker.preview_rows)
    assert picker.combo.currentData() == str(good)
    picker.set_spec(str(bad))
    w.data.refresh_previews()
    assert picker.preview_error and str(bad) in picker.preview_error
    assert picker.table.rowCount() == 0 and picker.status.text().startswith("⚠")


def test_settings_store_types_round_trip(reasonany_home):
    from reasonany_gui.ui.settings_store import SettingsStore, settings_path

    store = SettingsStore()
    assert store.path == settings_path() and store.path.parent == paths.config_dir()
    cfg = MergeConfig(base="/m/base", samples=33, reasoning_ratio=0.125, intersect=False, device="cuda:1")
    store.save_config(cfg)
    store.add_recent("runs", "/a")
    store.add_recent("runs", "/b")
    store.add_recent("runs", "/a")
    again = SettingsStore()
    back = again.load_config()
    assert (back.samples, back.reasoning_ratio, back.intersect, back.device, back.base) == (
        33,
        0.125,
        False,
        "cuda:1",
        "/m/base",
    )
    assert isinstance(back.samples, int) and isinstance(back.intersect, bool)
    assert again.recent("runs") == ["/a", "/b"]
    assert store.path.suffix == ".ini" and "samples=33" in store.path.read_text()


def test_evaluate_then_clear_the_score_cache(qtbot, window, job_waiter, screenshot, shot_size):
    """After a merge: Evaluate shows perplexities and answers; clearing the score cache frees its space."""
    pytest.importorskip("reasonany_gui.engine.measure.evaluate")
    w = window
    w.resize(*shot_size)
    w.session.eval_options = {"max_samples": 2, "max_length": 32}
    w.results.evaluation.reply_tokens.setValue(16)  # the shortest reply the user may choose
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[0] == "finished"
    assert w.results.evaluate.isEnabled()
    qtbot.mouseClick(w.results.evaluate, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "evaluate"), result
    view = w.results.evaluation
    columns = view.table.columnCount()
    assert view.table.rowCount() == 2 and columns >= 4  # the engine may add a comparison (Task Arithmetic)
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(columns)]
    assert headers[0] == "Merged" and {"Merged", "Base", "Reasoning", "Domain"} <= set(headers)  # in words
    values = [float(view.table.item(r, c).text()) for r in range(2) for c in range(4)]
    assert all(v > 1.0 for v in values)  # perplexities of a tiny random model
    assert "[merged]" in view.generations.toPlainText()
    assert all(b.text().startswith(("✓", "≈", "✗", "?")) for b in view.verdicts.values())  # a verdict per skill
    report = json.loads((w.session.out_dir / "reasonany" / "report.json").read_text())
    assert report["evaluation"]["perplexity"] == result["perplexity"]
    assert w.results.tabs.currentWidget() is view
    screenshot(w, "7-evaluation")

    assert w.score_store().size_bytes() > 0
    w.ask_clear_cache()
    assert w.errors.last.windowTitle() == "Clear the score cache?"
    w.errors.last.button(w.errors.last.StandardButton.Yes).click()
    assert w.score_store().size_bytes() == 0
    assert w.session.pipeline is None and not w.results.retune.isEnabled()


def test_clearing_the_cache_says_which_entries_in_use_were_kept(qtbot, window):
    """An entry another run holds is not deleted under it, and the status bar says so (not just "cleared")."""
    from reasonany_gui.engine.io.scorecache import ScoreStore

    w = window
    root = w.score_store().root
    held, free = "a" * 24, "b" * 24
    for key in (held, free):
        (root / key).mkdir(parents=True)
        (root / key / "meta.json").write_text("{}")
    other_run = ScoreStore(root)
    other_run.hold(held)
    try:
        w.clear_cache()
        assert (root / held).is_dir() and not (root / free).exists()
        assert w.status_text.text() == (
            "Score cache cleared: 1 entry removed. 1 entry in use was kept: a running merge reads them; "
            "clear again when it has finished."
        )
    finally:
        other_run.release()
    w.clear_cache()
    assert not (root / held).exists() and w.status_text.text() == "Score cache cleared: 1 entry removed."


MAIN_SCRIPT = """
import sys
from PySide6.QtCore import QTimer
from reasonany_gui import app

make = app.create_app

def create(argv=None):
    qapp = make(argv)
    QTimer.singleShot(1500, qapp.closeAllWindows)  # the app ends when its last window closes
    return qapp

app.create_app = create
sys.exit(app.main([]))
"""


@pytest.mark.slow  # starts the app in a subprocess
def test_main_starts_logs_and_quits(reasonany_home):
    """The real entry point in its own process (app.exec() must not run inside the test session)."""
    import os

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "REASONANY_HOME": str(reasonany_home)}
    out = subprocess.run([sys.executable, "-c", MAIN_SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    log = (reasonany_home / "logs" / "reasonany.log").read_text()
    assert "ReasonAny GUI" in log and "starting" in log and "exits with 0" in log
    assert (reasonany_home / "config" / "reasonany-gui.ini").is_file()  # settings saved on close
    assert "Traceback" not in out.stderr


def test_python_dash_m_entry_point_exists():
    out = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('reasonany_gui.__main__') is not None)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "True"
    from reasonany_gui.app import main

    assert callable(main)


def test_missing_x11_libraries_are_named(monkeypatch):
    import ctypes.util

    from reasonany_gui import app

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else f"lib{name}.so")
    assert app.missing_x11_libraries() == ["libxcb-cursor0"]
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # an explicit platform: nothing to check
    assert app.missing_x11_libraries() == []


MISSING_SCRIPT = """
import sys
from reasonany_gui import app

app.missing_x11_libraries = lambda: ["libxcb-cursor0", "libxcb-icccm4"]
app.create_app = lambda argv=None: sys.exit("Qt was started")
sys.exit(app.main([]))
"""


def test_missing_libraries_end_the_app_cleanly(reasonany_home, monkeypatch):
    """Issue 23: the install line, then a clean exit (2), never Qt's abort (134)."""
    import os

    env = {**os.environ, "REASONANY_HOME": str(reasonany_home)}
    out = subprocess.run([sys.executable, "-c", MISSING_SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4" in out.stderr and "Qt was started" not in out.stderr
    assert "Traceback" not in out.stderr
    from reasonany_gui import app

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv(app.SKIP_CHECK_VARIABLE, "1")  # the way around a wrong check
    assert app.missing_x11_libraries() == []


def test_models_in_the_hugging_face_cache_are_offered(qtbot, window, monkeypatch):
    from reasonany_gui.engine.io import checkpoints

    monkeypatch.setattr(checkpoints, "cached_repo_ids", lambda: ["Qwen/Qwen2.5-7B", "deepseek-ai/R1-Distill-7B"])
    window.models.refresh_cache()
    combo = window.models.pickers["domain"].combo
    items = [combo.itemText(i) for i in range(combo.count())]
    assert "Qwen/Qwen2.5-7B" in items and "deepseek-ai/R1-Distill-7B" in items
    # choosing a repo id that is not downloaded explains itself instead of failing silently
    window.models.pickers["domain"].set_spec("someone/not-downloaded-model")
    assert "not in the local Hugging Face cache" in (window.models.pickers["domain"].error or "")
