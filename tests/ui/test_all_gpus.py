"""The app's "All GPUs" choice: the device picker offers it, and a merge whose `devices` names several processes
runs through the CLI's launcher, its rank 0's events on the Run screen, its result shown like "Open run…".

On this CPU-only machine the picker is tested with two pretended GPUs, and the real run uses devices = cpu,cpu
(two gloo ranks through torch's launcher, as tests/test_distributed.py runs the CLI).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from reasonany_gui.engine.core import devices
from reasonany_gui.engine.core.errors import ReasonAnyError
from reasonany_gui.engine.core.events import Progress, StageStarted
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.engine.workflows import launcher


def _two_gpus() -> list[devices.DeviceInfo]:
    return [devices.DeviceInfo(f"cuda:{i}", f"GPU {i}: Pretend", 8 << 30, 16 << 30) for i in range(2)]


def test_the_picker_offers_all_gpus_and_sets_devices(qtbot, monkeypatch):
    from reasonany_gui.ui.settings_panel import ALL_GPUS, SettingsPanel

    monkeypatch.setattr(devices, "list_devices", _two_gpus)
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    box = panel.fields["device"]
    i = box.findData(ALL_GPUS)
    assert i >= 0 and box.itemText(i) == "All GPUs (2, one process each)"
    assert panel.values()["devices"] == ""  # one device (the default): no launcher
    box.setCurrentIndex(i)
    values = panel.values()
    assert (values["device"], values["devices"]) == ("cuda", "all")
    panel.load(MergeConfig().replace(device="cuda", devices="all"))  # restored settings show the choice again
    assert box.currentData() == ALL_GPUS
    panel.load(MergeConfig().replace(device="cuda:1"))
    assert (panel.values()["device"], panel.values()["devices"]) == ("cuda:1", "")


def test_one_gpu_or_none_has_no_all_gpus_entry(qtbot):
    from reasonany_gui.ui.settings_panel import ALL_GPUS, SettingsPanel

    panel = SettingsPanel()  # this machine: the CPU only
    qtbot.addWidget(panel)
    assert panel.fields["device"].findData(ALL_GPUS) < 0


def test_a_failed_rank_reaches_on_error_and_the_error_dialog(qtbot, window, job_waiter, tmp_path, monkeypatch):
    """The job fails with rank 0's one message (a fake launcher keeps this fast; the relay itself is
    tests/test_distributed.py's), shown in the app's usual error dialog."""

    message = "Rank 1 of 2 failed, so every rank stopped and nothing was written. Rank 1's error: disk on fire"
    script = tmp_path / "fake_launcher.py"
    script.write_text(
        textwrap.dedent(f"""
        import json, sys
        print(json.dumps({{"type": "StageStarted", "stage": "check", "title": "Checking", "index": 0, "total": 5}}))
        print(json.dumps({{"type": "failed", "message": {message!r}, "input": False, "cancelled": False}}))
        sys.exit(1)
        """),
        encoding="utf-8",
    )
    monkeypatch.setattr(launcher, "launch_command", lambda path, flags, n: [sys.executable, str(script)])
    w = window
    real = w.build_config
    monkeypatch.setattr(w, "build_config", lambda: real().replace(devices="cpu,cpu"))
    events: list[object] = []
    w.runner.engine_event.connect(events.append)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, name, exc = job_waiter(w, timeout=30_000)
    assert (state, name) == ("failed", "merge") and isinstance(exc, ReasonAnyError) and str(exc) == message
    assert any(isinstance(e, StageStarted) and e.title == "Checking" for e in events)
    assert "disk on fire" in w.errors.last.informativeText()
    assert w.run_panel.heading.text() == "Stopped by an error"
    assert not Path(w.output.out.text()).exists()


def test_two_process_merge_reports_progress_and_shows_the_run(qtbot, window, job_waiter, monkeypatch):
    """Two gloo ranks through torch's launcher, then a re-tune from the score cache (about 25 s on 2 cores)."""
    w = window
    real = w.build_config
    monkeypatch.setattr(w, "build_config", lambda: real().replace(devices="cpu,cpu", samples=4, max_length=32))
    out = Path(w.output.out.text())
    events: list[object] = []
    w.runner.engine_event.connect(events.append)  # what the Run screen gets (it listens to the same signal)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, name, view = job_waiter(w, timeout=240_000)
    assert (state, name) == ("finished", "merge"), view
    progress = [e for e in events if isinstance(e, Progress)]
    assert any(e.stage.startswith("identify") for e in progress) and progress[-1].overall == pytest.approx(1.0)
    assert out.is_dir() and Path(view.out_dir) == out
    report = json.loads((out / "reasonany" / "report.json").read_text(encoding="utf-8"))
    assert report["config"]["devices"] == "cpu,cpu"
    assert w.run_panel.heading.text() == "Finished" and str(out) in w.results.where.text()
    assert w.store.recent("runs")[0] == str(out)
    assert w.session.pipeline is None and w.results.retune.isEnabled()  # shown as "Open run…" shows a run

    # re-tuning reads the two ranks' reduced scores from the cache: no backward pass in this process
    w.results.retune.boxes["domain_ratio"].setValue(2.0)
    qtbot.mouseClick(w.results.retune.apply_button, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "retune"), result
    assert w.session.pipeline.backward_passes == 0 and w.session.pipeline.config.domain_ratio == 0.02


@pytest.mark.slow  # two real ranks started and stopped: the launcher gives them up to 30 s
def test_cancel_stops_both_ranks_and_leaves_no_output(qtbot, window, job_waiter, monkeypatch):
    """Cancel signals the launcher's process group; it forwards SIGTERM to the ranks, which cancel cleanly."""
    import time

    from reasonany_gui.engine.core.errors import CancelledError

    w = window
    real = w.build_config
    monkeypatch.setattr(w, "build_config", lambda: real().replace(devices="cpu,cpu", samples=64))
    out = Path(w.output.out.text())
    before = sorted(p.name for p in out.parent.iterdir())
    t_cancel: dict[str, float] = {}

    def cancel_on_identify(ev: object) -> None:
        if isinstance(ev, Progress) and ev.stage.startswith("identify") and "t" not in t_cancel:
            t_cancel["t"] = time.monotonic()
            qtbot.mouseClick(w.run_panel.cancel_button, Qt.MouseButton.LeftButton)

    w.runner.engine_event.connect(cancel_on_identify)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, name, exc = job_waiter(w, timeout=240_000)
    assert (state, name) == ("failed", "merge") and isinstance(exc, CancelledError), exc
    assert time.monotonic() - t_cancel["t"] < 30.0
    assert not out.exists() and sorted(p.name for p in out.parent.iterdir()) == before
    assert w.run_panel.heading.text() == "Cancelled" and w.errors.last is None
