"""A working day in one window (issue 22, item 12): cycles of merge, evaluate, own question (with Task Arithmetic's
answer, a second pipeline merged in memory and closed), re-tune, save version and open run on the tiny trio, then
what must not grow: resident memory after warm-up, open file handles, threads and temporary folders; and every saved
folder must open again. The window fixture closes without Quit's question (quit_confirmed), so a cycle may end with
re-tuned masks unsaved.

Slow (about 15 s a cycle here): `REASONANY_SOAK_CYCLES=30 QT_QPA_PLATFORM=offscreen python -m pytest -q -m slow
tests/ui/test_soak.py -s` prints the figures docs/RELIABILITY.md records."""

from __future__ import annotations

import gc
import os
import tempfile
import threading
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt

from reasonany_gui.engine.core.paths import cache_dir
from reasonany_gui.engine.io.writer import TMP_MARK
from reasonany_gui.engine.output.report import load_run

CYCLES = int(os.environ.get("REASONANY_SOAK_CYCLES", "30"))
WARM_UP = 3


def _temp_folders(*roots: Path) -> list[Path]:
    """The app's temporary folders anywhere under `roots`, and launch folders in the system temp folder."""
    found = [p for root in roots if root.exists() for p in root.rglob(f"*{TMP_MARK}*")]
    return found + [p for p in Path(tempfile.gettempdir()).glob("reasonany-ranks-*") if p.stat().st_uid == os.getuid()]


def _sample(proc: psutil.Process) -> dict[str, int]:
    gc.collect()
    return {
        "rss": proc.memory_info().rss,
        "files": proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles(),
        "threads": proc.num_threads(),
        "python_threads": threading.active_count(),
    }


@pytest.mark.slow
def test_one_window_survives_a_working_day(qtbot, window, job_waiter, tmp_path):
    w = window
    w.session.eval_options = {"max_samples": 2, "max_length": 32}
    w.results.evaluation.reply_tokens.setValue(16)
    proc = psutil.Process()
    saved: list[Path] = []
    samples: list[dict[str, int]] = []

    def run(name: str) -> object:
        state, job, result = job_waiter(w)
        assert (state, job) == ("finished", name), result
        return result

    for cycle in range(CYCLES):
        out = tmp_path / "merges" / f"cycle-{cycle:02d}"
        w.output.out.setText(str(out))
        qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
        run("merge")
        saved.append(out)
        qtbot.mouseClick(w.results.evaluate, Qt.MouseButton.LeftButton)
        run("evaluate")
        w.start_ask("What is 2 + 2?")
        answers = run("ask")["outputs"]  # type: ignore[index]
        assert "task_arithmetic" in answers  # the comparison merge is built and closed every cycle too
        w.results.retune.boxes["reasoning_ratio"].setValue(30.0 + cycle % 5 * 10)
        qtbot.mouseClick(w.results.retune.apply_button, Qt.MouseButton.LeftButton)
        run("retune")
        qtbot.mouseClick(w.results.save_version, Qt.MouseButton.LeftButton)
        saved.append(Path(run("save").out))  # type: ignore[attr-defined]
        w.open_run(out)
        run("open")
        samples.append(_sample(proc))
        print(f"cycle {cycle + 1}: {samples[-1]}", flush=True)

    warm, last = samples[WARM_UP - 1], samples[-1]
    growth_mb = (last["rss"] - warm["rss"]) / 2**20
    per_cycle = growth_mb / max(CYCLES - WARM_UP, 1)
    print(
        f"SOAK {CYCLES} cycles: RSS {warm['rss'] / 2**20:.0f} MB after {WARM_UP} -> {last['rss'] / 2**20:.0f} MB "
        f"({per_cycle:+.2f} MB a cycle); files {warm['files']} -> {last['files']}; threads {warm['threads']} -> "
        f"{last['threads']} (Python {warm['python_threads']} -> {last['python_threads']})",
        flush=True,
    )
    assert per_cycle < 8.0  # measured figures: docs/RELIABILITY.md, "Round three", item 12
    assert last["files"] <= warm["files"] + 4
    assert last["threads"] <= warm["threads"] + 2 and last["python_threads"] <= warm["python_threads"]
    assert not _temp_folders(tmp_path, cache_dir())
    assert len(saved) == 2 * CYCLES and len(set(saved)) == len(saved)
    for folder in saved:
        view = load_run(folder)
        assert view.names and view.report["config"]["out"]
