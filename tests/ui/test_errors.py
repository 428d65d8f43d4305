"""What a user sees when something is wrong: cancel, bad folders, mismatched models, out of memory, bugs."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt

from reasonany_gui.engine.core import paths
from reasonany_gui.engine.core.errors import CancelledError, OutOfMemoryError
from reasonany_gui.engine.core.events import Progress
from reasonany_gui.ui import jobs


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cancel_during_identification_leaves_no_output(qtbot, window, job_waiter):
    w = window
    w.settings.apply({"samples": 64})  # long enough to be cancelled in the middle
    out = Path(w.output.out.text())
    before = leftovers(out.parent)
    t_cancel = {}

    def cancel_on_identify(ev):
        if isinstance(ev, Progress) and ev.stage.startswith("identify") and "t" not in t_cancel:
            t_cancel["t"] = time.monotonic()
            qtbot.mouseClick(w.run_panel.cancel_button, Qt.MouseButton.LeftButton)

    w.runner.engine_event.connect(cancel_on_identify)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, name, exc = job_waiter(w)
    assert (state, name) == ("failed", "merge") and isinstance(exc, CancelledError)
    assert time.monotonic() - t_cancel["t"] < 5.0  # stops within seconds
    assert not out.exists()
    assert leftovers(out.parent) == before  # no temporary folder either
    assert w.run_panel.heading.text() == "Cancelled"
    assert w.errors.last is None  # a cancel is not an error: no dialog
    assert w.merge_button.isEnabled() and w.session.pipeline is None


def test_bad_model_folder_is_explained_before_anything_runs(qtbot, window, tmp_path):
    w = window
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    w.models.pickers["domain"].set_spec(str(empty))
    picker = w.models.pickers["domain"]
    assert picker.model_info is None and picker.error and "config.json" in picker.error
    assert w.models.verdict.kind == "error" and str(empty) in w.models.verdict.text()
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert not w.runner.busy
    box = w.errors.last
    assert box is not None and box.windowTitle() == "Please check your input"
    assert str(empty) in box.informativeText()
    assert w.current_page() is w.models
    assert not Path(w.output.out.text()).exists()


def test_mismatched_trio_is_explained_in_plain_words(qtbot, window, trio, other_trio):
    w = window
    w.models.pickers["reasoning"].set_spec(str(other_trio["reasoning"]))
    assert w.models.verdict.kind == "error"
    text = w.models.verdict.text()
    assert "hidden size (32)" in text and "(64)" in text and "number of layers (3)" in text
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert not w.runner.busy
    assert w.errors.last.windowTitle() == "Please check your input"
    assert "not fine-tuned from this base" in w.errors.last.informativeText()
    assert not Path(w.output.out.text()).exists()
    # putting the right model back makes the three fit again
    w.models.pickers["reasoning"].set_spec(str(trio["reasoning"]))
    assert w.models.verdict.kind == "ok"


def test_bad_setting_is_refused_with_its_name(qtbot, window):
    w = window
    w.output.fields["shard_size"].setCurrentText("lots")
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert not w.runner.busy
    assert w.errors.last.windowTitle() == "Please check your input"
    assert "shard_size" in w.errors.last.informativeText()


def test_out_of_memory_offers_a_one_click_retry(qtbot, window, job_waiter, monkeypatch):
    w = window
    configs = []

    def fake_merge_job(config):
        configs.append(config)

        def run(listener, cancel):
            if len(configs) == 1:
                raise OutOfMemoryError(
                    "CUDA ran out of memory while scoring the reasoning model.",
                    {"max_length": 32, "gradient_checkpointing": True},
                )
            raise CancelledError()

        return run

    monkeypatch.setattr(jobs, "merge_job", fake_merge_job)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, _, exc = job_waiter(w)
    assert state == "failed" and isinstance(exc, OutOfMemoryError)
    box = w.errors.last
    assert box.windowTitle() == "Not enough memory"
    assert "Max tokens per sample: 32" in box.informativeText()
    assert "Save memory on long samples: on" in box.informativeText()
    assert w.errors.retry_button is not None
    w.errors.retry_button.click()  # retries at once with the suggested settings
    state, _, _ = job_waiter(w)
    assert len(configs) == 2
    assert (configs[1].max_length, configs[1].gradient_checkpointing) == (32, True)
    assert w.settings.values()["max_length"] == 32  # and the screen shows them


def test_unexpected_error_shows_message_and_log_path(qtbot, window, job_waiter, monkeypatch):
    w = window

    def broken_merge_job(config):
        def run(listener, cancel):
            raise RuntimeError("the disk controller caught fire")

        return run

    monkeypatch.setattr(jobs, "merge_job", broken_merge_job)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, _, _ = job_waiter(w)
    assert state == "failed"
    box = w.errors.last
    assert box.windowTitle() == "Something went wrong"
    assert "the disk controller caught fire" in box.informativeText()
    assert str(paths.log_file()) in box.informativeText()
    assert "RuntimeError" in box.detailedText()
    assert w.run_panel.heading.text() == "Stopped by an error"
    assert w.merge_button.isEnabled()  # the app stays usable


def test_closing_the_window_during_a_run_cancels_it(qtbot, window):
    w = window
    w.settings.apply({"samples": 64})
    out = Path(w.output.out.text())
    before = leftovers(out.parent)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    thread = w.runner.job_thread
    qtbot.waitUntil(lambda: w.run_panel.events_received > 3, timeout=60_000)
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 10.0
    assert not thread.isRunning()
    assert not out.exists() and leftovers(out.parent) == before


def test_bad_data_file_found_by_the_engine_becomes_an_input_dialog(qtbot, window, job_waiter, tmp_path):
    w = window
    missing = tmp_path / "no-such-file.jsonl"
    w.data.pickers["domain"].set_spec(str(missing))
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, name, exc = job_waiter(w)
    assert (state, name) == ("failed", "merge")
    box = w.errors.last
    assert box.windowTitle() == "Please check your input"
    assert str(missing) in box.informativeText()
    assert not Path(w.output.out.text()).exists()
    assert w.merge_button.isEnabled()
