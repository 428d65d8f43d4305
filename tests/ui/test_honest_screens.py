"""Screens that must not show stale or contradictory numbers (issue 11): the data preview, Results after a
re-tune or a cancelled merge, the Run screen's time left, and the guidance next to the numbers."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from reasonany_gui.engine.scoring.estimate import RunClock
from reasonany_gui.engine.settings.config import MergeConfig


def test_a_newly_chosen_file_is_previewed_at_once(qtbot, window, tmp_path):
    w = window
    w.go("data")
    picker = w.data.pickers["domain"]
    good = tmp_path / "mine.jsonl"
    good.write_text("\n".join(json.dumps({"text": f"Sample {i} about interest rates."}) for i in range(6)))
    picker.set_spec(str(good))  # what "Choose file…" does; no page change, no explicit refresh
    assert picker.preview_rows and picker.preview_rows[0][0].startswith("Sample 0")
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"nothing useful": 1}\n')
    picker.set_spec(str(bad))
    assert picker.preview_error and str(bad) in picker.preview_error
    assert picker.table.rowCount() == 0 and picker.status.text().startswith("⚠")


def test_results_after_retune_and_after_a_cancelled_merge(qtbot, window, job_waiter):
    w = window
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "merge")
    res = w.results
    heat = res.inspector.heatmaps
    heat._hovered(0, 0)  # the pointer rests on a cell: its numbers are shown
    old_hover = heat.hover.text()
    assert "%" in old_hover
    res.evaluation.show_result({"perplexity": {"a": {"merged": 2.0, "base": 3.0}}, "generations": []})
    assert res.evaluation.table.rowCount() == 1

    # a re-tune: the hover numbers and the evaluation of the saved model no longer describe what is shown
    res.retune.boxes["reasoning_ratio"].setValue(12.0)
    qtbot.mouseClick(res.retune.apply_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "retune")
    assert heat.hover.text() != old_hover and "%" not in heat.hover.text()
    assert res.evaluation.result is None and res.evaluation.table.rowCount() == 0
    assert "not saved" in res.evaluation.status.text()
    assert not res.evaluate.isEnabled() and res.where.kind == "warn"

    # a merge that is cancelled: no old masks under a banner that reads as this run's, and an honest Run screen
    w.output.out.setText(str(w.output.out.text()) + "-again")
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert res.body.currentIndex() == 0 and "running" in res.empty.text()  # while it runs
    qtbot.mouseClick(w.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    assert w.run_panel.eta.text() == ""  # no "about 6 s left" after Cancel
    state, name, _ = job_waiter(w)
    assert (state, name) == ("failed", "merge")
    assert res.body.currentIndex() == 0 and "cancelled" in res.empty.text()
    assert res.out_dir is None and not res.where.isVisibleTo(res) and res.inspector.selection is None
    assert heat.data == {} and "No masks" in res.inspector.totals.text()
    assert w.run_panel.eta.text() == "" and w.run_panel.heading.text() == "Cancelled"


def test_run_clock_weighs_stages_by_cost():
    """Two scoring passes of 100 s and a 10 s write: after the first pass (measured 200 s, twice the guess)
    the time left counts the second pass at the measured speed, and the bar stands at about half."""
    costs = {
        "check": 1.0,
        "identify:reasoning@reasoning": 100.0,
        "identify:domain@domain": 100.0,
        "select": 1.0,
        "write": 10.0,
    }
    clock = RunClock(costs)
    clock.start("check", 0.0)
    clock.finish("check", 1.0)
    clock.start("identify:reasoning@reasoning", 1.0)
    clock.progress("identify:reasoning@reasoning", 0.5, 101.0)
    assert 90 < clock.remaining(101.0) < 400
    clock.finish("identify:reasoning@reasoning", 200.0)
    clock.start("identify:domain@domain", 201.0)
    left = clock.remaining(201.0)
    assert 200 <= left <= 215  # 200 s (measured rate) + select + write, not 100 s from the nominal guess
    low, high = clock.remaining_range(201.0)
    assert low < left < high
    assert 0.45 < clock.fraction(201.0) < 0.55  # by time, not by stage count (which would say 2 of 5 = 40 %)


def test_the_estimate_is_a_range_and_timed_runs_narrow_it(qtbot, window):
    from reasonany_gui.engine.scoring.estimate import estimate_run

    info = window.models.infos["base"]
    cfg = MergeConfig().replace(samples=100, max_length=256, device="cpu")
    rough = estimate_run(cfg, info)
    timed = estimate_run(cfg, info, speed_factor=3.0)
    assert rough.seconds_range[0] < rough.seconds < rough.seconds_range[1] and not rough.measured
    assert timed.measured and abs(timed.seconds / rough.seconds - 3.0) < 0.2
    assert (timed.seconds_range[1] / timed.seconds_range[0]) < (rough.seconds_range[1] / rough.seconds_range[0])
    window.settings.speed_factors = {"cpu": 3.0}
    window.settings.apply({"device": "cpu"})
    assert "timed from your last run" in window.settings.estimate.text()


def test_strength_follows_share_and_demo_values_are_labelled(qtbot, trio, picker):
    from reasonany_gui.engine.data import demo
    from reasonany_gui.ui.main_window import MainWindow

    w = MainWindow()  # first start: the demo and its preset (50 %/30 % with 2.00/3.33 = 1/share)
    qtbot.addWidget(w)
    s = w.settings
    if demo.demo_preset():
        assert s.demo_note.isVisibleTo(s) and "demo's own setting" in s.demo_note.text()
        assert s.follow.isChecked()
    s.follow.setChecked(True)
    s.fields["reasoning_ratio"].setValue(20.0)
    assert s.values()["reasoning_scale"] == 5.0 and not s.fields["reasoning_scale"].isEnabled()
    s.fields["domain_ratio"].setValue(5.0)
    assert s.values()["domain_scale"] == 10.0  # 1/0.05 = 20 is above the allowed 10
    s.follow.setChecked(False)
    assert s.fields["reasoning_scale"].isEnabled()
    picker(w, trio)  # own models: the demo note goes, the recommended values come back
    assert not s.demo_note.isVisibleTo(s)
    w.close()


def test_whole_word_answers():
    """(The verdicts themselves are the engine's: tests/test_verdicts.py.)"""
    from reasonany_gui.ui.results.evaluation import whole_words

    assert whole_words("Kob's mentor is Dax, and Dax's men") == "Kob's mentor is Dax, and Dax's …"
    assert whole_words("The answer is Pim.") == "The answer is Pim."
