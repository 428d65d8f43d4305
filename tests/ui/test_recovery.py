"""Recovering from problems: too little disk, out of memory, killed runs, a filled output folder, bugs, cancel."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from reasonany_gui.engine.core import paths
from reasonany_gui.engine.core.errors import CancelledError, InputError, OutOfMemoryError
from reasonany_gui.engine.io import writer
from reasonany_gui.engine.methods import registry as methods
from reasonany_gui.engine.run.pipeline import Pipeline, registry_path
from reasonany_gui.ui import jobs

UI_DIR = Path(__file__).resolve().parents[2] / "reasonany_gui" / "ui"


def temp_folders(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.glob(f".{name}{writer.TMP_MARK}*"))


def merge(qtbot, w, job_waiter):
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    return job_waiter(w)


def test_too_little_disk_is_refused_before_identification(qtbot, window, job_waiter, monkeypatch):
    w = window
    identified = []
    monkeypatch.setattr(Pipeline, "identify", lambda self, *a, **k: identified.append(1))
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 1000, 1000))
    state, _, exc = merge(qtbot, w, job_waiter)
    assert state == "failed" and isinstance(exc, InputError)
    assert identified == []  # refused in seconds, not after the long measuring stage
    box = w.errors.last
    assert box.windowTitle() == "Please check your input"
    assert "Not enough free disk space" in box.informativeText() and "1.0 KB free" in box.informativeText()


SUGGESTIONS = [
    ("accumulators", "host", "Score storage: In RAM (saves GPU memory)"),
    ("gradient_checkpointing", True, "Save memory on long samples: on"),
    ("max_length", 32, "Max tokens per sample: 32 tokens"),
    ("device", "cpu", "Device: the CPU"),
    ("compute_dtype", "bfloat16", "Working precision: bfloat16"),
]


@pytest.mark.parametrize("field,value,text", SUGGESTIONS, ids=[s[0] for s in SUGGESTIONS])
def test_each_out_of_memory_suggestion_reaches_the_settings(qtbot, window, job_waiter, monkeypatch, field, value, text):
    w = window
    w.settings.apply(
        {"accumulators": "device", "gradient_checkpointing": False, "compute_dtype": "float32", "device": "auto"}
    )
    before = w.settings.values()[field]
    assert before != value
    configs = []

    def fake_merge_job(config):
        configs.append(config)

        def run(listener, cancel):
            if len(configs) == 1:
                raise OutOfMemoryError("The GPU ran out of memory while scoring.", {field: value})
            raise CancelledError()

        return run

    monkeypatch.setattr(jobs, "merge_job", fake_merge_job)
    state, _, exc = merge(qtbot, w, job_waiter)
    assert state == "failed" and isinstance(exc, OutOfMemoryError)
    assert text in w.errors.last.informativeText()
    w.errors.retry_button.click()
    job_waiter(w)
    assert len(configs) == 2
    assert getattr(configs[1], field) == value  # the retry ran with it
    assert w.settings.values()[field] == value  # and the widget shows it
    widget = w.settings.fields[field]
    if hasattr(widget, "currentData"):
        assert widget.currentData() == value


def test_leftovers_of_killed_runs_are_offered_for_removal(qtbot, window, tmp_path):
    w = window
    left = tmp_path / f".merged{writer.TMP_MARK}dead1"
    (left / "reasonany").mkdir(parents=True)
    (left / "model-00001-of-00001.safetensors").write_bytes(b"x" * 100)
    mine = tmp_path / "users-folder"  # registered but not named by us: never removed
    mine.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    registry_path().parent.mkdir(parents=True, exist_ok=True)
    registry_path().write_text(json.dumps([{"path": str(left), "pid": pid}, {"path": str(mine), "pid": pid}]))
    box = w.offer_stale_cleanup()
    assert box is not None and box.windowTitle() == "Leftovers of interrupted runs"
    assert str(left) in box.text() and "2 unfinished" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    assert not left.exists()
    assert mine.exists()
    assert writer.stale_temp_folders(registry_path()) == []
    assert "Removed 1 leftover" in w.status_text.text()
    assert w.offer_stale_cleanup() is None  # nothing left: no question at the next start


def test_no_question_without_leftovers(window):
    assert not registry_path().exists()
    assert window.offer_stale_cleanup() is None


def test_output_folder_filled_during_the_run_goes_to_name_2(qtbot, window, job_waiter, monkeypatch):
    w = window
    out = Path(w.output.out.text())
    real = methods.merge_tensor

    def filling(*args, **kwargs):
        if not out.exists():  # something else writes into the chosen folder while the model is merged
            out.mkdir()
            (out / "notes.txt").write_text("mine")
        return real(*args, **kwargs)

    monkeypatch.setattr(methods, "merge_tensor", filling)
    state, _, result = merge(qtbot, w, job_waiter)
    assert state == "finished"
    second = out.with_name(out.name + "-2")
    assert Path(result.out) == second and (second / "config.json").is_file()
    assert (out / "notes.txt").read_text() == "mine" and not (out / "config.json").exists()
    assert w.session.out_dir == second and w.results.out_dir == second
    assert w.results.report_path() == second / "reasonany" / "report.html"
    assert str(second) in w.results.where.text()
    assert w.store.recent("runs")[0] == str(second)
    assert result.report and result.report.get("method") == "reasonany"
    opened = []
    monkeypatch.setattr(w, "open_path", lambda _what, p: opened.append(p))  # what the buttons ask the window
    w.results.open_folder.click()
    w.results.open_report.click()
    assert opened == [second, second / "reasonany" / "report.html"]


def test_a_bug_in_the_worker_is_shown_and_the_next_merge_works(qtbot, window, job_waiter, monkeypatch):
    w = window
    out = Path(w.output.out.text())

    def broken(*_a, **_k):
        raise RuntimeError("merge_tensor exploded on purpose")

    monkeypatch.setattr(methods, "merge_tensor", broken)
    state, _, exc = merge(qtbot, w, job_waiter)
    assert state == "failed" and isinstance(exc, RuntimeError)
    box = w.errors.last
    assert box.windowTitle() == "Something went wrong"
    assert "merge_tensor exploded on purpose" in box.informativeText()
    assert str(paths.log_file()) in box.informativeText()
    assert not out.exists() and temp_folders(out.parent, out.name) == []
    assert w.merge_button.isEnabled() and not w.runner.busy
    monkeypatch.undo()
    box.close()
    state, _, result = merge(qtbot, w, job_waiter)
    assert state == "finished" and Path(result.out) == out and (out / "config.json").is_file()


def test_cancel_while_saving_leaves_no_temporary_folder(qtbot, window, job_waiter, monkeypatch):
    w = window
    out = Path(w.output.out.text())
    real = methods.merge_tensor
    calls = []

    def cancelling(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the temporary folder exists now; the user presses Cancel
            assert temp_folders(out.parent, out.name)
            w.runner.cancel()  # only sets the token: safe from the worker thread
        return real(*args, **kwargs)

    monkeypatch.setattr(methods, "merge_tensor", cancelling)
    state, _, exc = merge(qtbot, w, job_waiter)
    assert state == "failed" and isinstance(exc, CancelledError)
    assert calls and temp_folders(out.parent, out.name) == [] and not out.exists()
    assert w.errors.last is None
    monkeypatch.undo()
    state, _, result = merge(qtbot, w, job_waiter)
    assert state == "finished" and (out / "config.json").is_file()
    assert temp_folders(out.parent, out.name) == []


def test_the_ui_never_loads_with_remote_code():
    """Every `from_pretrained(` in the app spells out trust_remote_code=False (or goes through the engine)."""
    offenders = []
    for path in sorted(UI_DIR.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"from_pretrained\(", text):
            call = text[m.start() : text.find(")", m.start()) + 1]
            if "trust_remote_code=False" not in call:
                offenders.append(f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}")
    assert offenders == []
    assert "AutoTokenizer" not in (UI_DIR / "data_panel.py").read_text(encoding="utf-8")
