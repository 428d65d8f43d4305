"""Results ▸ Find a good setting, driven through the widgets on a tiny trio with real skills (issues 10 and 15):
the search runs in the worker, its points appear live, the recommended one is marked, a click re-tunes to a point,
Save writes tune.json; Cancel and a bad checks file leave the masks as they were; "tune automatically" on
Settings makes Merge write the recommended merge; Evaluate's verdict warnings are shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt

from reasonany_gui.engine.core.errors import CancelledError
from reasonany_gui.engine.measure.candidates import SETTING_KEYS
from reasonany_gui.ui.texts import setting_words
from reasonany_gui.ui.tune.view import in_app_terms, split_summary

FAST = {"samples": 4, "max_length": 64, "device": "cpu"}  # as tests/ui/conftest.py's


def setting_of(cfg) -> dict:
    return {k: getattr(cfg, k) for k in SETTING_KEYS}


@pytest.fixture
def skilled_window(qtbot, styled_app, skilled, picker, tmp_path, shot_size):
    """The window with the trio whose experts learned real skills, its calibration files and fast settings."""
    from reasonany_gui.ui.main_window import MainWindow

    trio, files = skilled
    w = MainWindow(demo_on_first_start=False)
    qtbot.addWidget(w)
    w.resize(*shot_size)
    w.show()
    picker(w, trio)
    w.data.set_specs(str(files["reasoning"]), str(files["domain"]))
    w.settings.apply(FAST)
    (tmp_path / "merges").mkdir(exist_ok=True)
    w.output.out.setText(str(tmp_path / "merges" / "qwen-safety-reasoning"))
    yield w
    w.runner.shutdown(10000)
    w.close()


def merge(qtbot, w, job_waiter):
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "merge"), result
    return result


def click_point(qtbot, view, index: int) -> None:
    """A real mouse click on the candidate's point in the plot."""
    x, y = view.positions()[index]
    vb = view.scatter.plot.vb
    at = view.scatter.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
    qtbot.mouseClick(view.scatter.viewport(), Qt.MouseButton.LeftButton, pos=at)


def test_find_a_good_setting_through_the_widgets(qtbot, skilled_window, job_waiter, screenshot, shot_size):
    w = skilled_window
    first = merge(qtbot, w, job_waiter)
    res, view = w.results, w.results.tune_view
    pipeline = w.session.pipeline
    passes = pipeline.backward_passes
    assert view.find_button.isEnabled() and not view.points
    res.tabs.setCurrentWidget(view)
    view.options.budget.setValue(4)
    assert w.settings.tune_options.values()["budget"] == 4  # one set of options, shown in two places

    qtbot.mouseClick(view.find_button, Qt.MouseButton.LeftButton)
    assert w.runner.current == "tune" and view.cancel_button.isVisible() and not view.find_button.isEnabled()
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "tune"), result
    tuned = pipeline.tune_result
    assert w.session.pipeline is pipeline and pipeline.backward_passes == passes  # from the cached scores: no gradients
    assert not view.cancel_button.isVisible() and view.find_button.isEnabled()

    # the points: one per candidate, each in its method's scatter, the recommended one starred, the front drawn
    assert len(view.points) == len(tuned.candidates) == 4 and view.redraws >= 1
    drawn = {int(p.data()): m for m, item in view.scatter.scatters.items() for p in item.points()}
    assert drawn == {c.index: c.setting["method"] for c in tuned.candidates}
    assert {"reasonany", "task_arithmetic"} <= set(drawn.values())
    assert view.recommended == tuned.recommended
    star = view.scatter.recommended.points()
    assert len(star) == 1 and int(star[0].data()) == tuned.recommended
    assert (star[0].pos().x(), star[0].pos().y()) == pytest.approx(view.positions()[tuned.recommended])
    assert view.front() == tuned.pareto
    if len(tuned.pareto) > 1:
        assert len(view.scatter.front.getData()[0]) == len(tuned.pareto)
    assert view.table.rowCount() == 4 and view.table.item(tuned.recommended, 0).text().startswith("★")
    assert (
        "Click to see" in view.scatter._tips[tuned.recommended]
        and setting_words(tuned.best().setting) in view.scatter._tips[tuned.recommended]
    )
    # the result in words, and the recommended merge is what the masks show now (not saved yet)
    words, extra = split_summary(in_app_terms(tuned.summary, tuned.report_section()["candidates"]))
    assert view.summary.text() == words and words.startswith("Recommended:")
    assert "λ" not in words and setting_words(tuned.best().setting) in words  # the app's terms, not p and λ
    assert all(any(x in t for t in view.warning_texts()) for x in tuned.warnings + extra)
    assert setting_of(pipeline.config) == tuned.best().setting
    assert view.current == tuned.recommended and "the recommended setting" in view.shown_now.text()
    assert res.where.kind == "warn" and res.save_version.isEnabled()
    assert res.retune.values()["method"] == tuned.best().setting["method"]

    # a click on another point re-tunes to it, from the cached scores
    target = next(c for c in tuned.candidates if c.setting["method"] == "reasonany" and c.index != tuned.recommended)
    assert all(view.positions()[target.index] != view.positions()[i] for i in view.points if i != target.index)
    click_point(qtbot, view, target.index)
    assert w.runner.current == "retune"
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "retune"), result
    assert setting_of(pipeline.config) == target.setting and pipeline.backward_passes == passes
    assert view.current == target.index and "not the recommended one" in view.shown_now.text()
    assert res.inspector.selection is pipeline.selection is not None
    assert view.recommended == tuned.recommended and len(view.scatter.recommended.points()) == 1
    ring = view.scatter.current.points
    qtbot.waitUntil(lambda: len(ring()) == 1 and int(ring()[0].data()) == target.index, timeout=2000)  # the timer
    assert view.table.item(target.index, 0).text().startswith("●")
    w.go("results")
    w.resize(*shot_size)
    qtbot.wait(100)
    area = w.stack.currentWidget()
    area.verticalScrollBar().setValue(res.tabs.mapTo(res, res.tabs.rect().topLeft()).y())
    screenshot(w, "8-find-setting")
    w.resize(*shot_size)

    # Save this version: the chosen setting, with the search in tune.json and in the report
    qtbot.mouseClick(res.save_version, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "save"), result
    saved = Path(result.out)
    assert saved != first.out
    tune_json = json.loads((saved / "reasonany" / "tune.json").read_text())
    assert tune_json["recommended"] == tuned.recommended and len(tune_json["candidates"]) == 4
    report = json.loads((saved / "reasonany" / "report.json").read_text())
    assert report["tune"]["summary"] == tuned.summary
    assert {k: report["config"][k] for k in SETTING_KEYS} == target.setting
    assert "How the setting was chosen" in (saved / "README.md").read_text()
    assert not (Path(first.out) / "reasonany" / "tune.json").exists()  # the first merge is untouched
    assert len(view.points) == 4 and view.current == target.index  # the saved report shows the same search

    # re-opened later, the run shows its search again
    w.open_run(saved)
    assert job_waiter(w)[:2] == ("finished", "open")
    assert len(view.points) == 4 and view.recommended == tuned.recommended and view.current == target.index
    assert view.find_button.isEnabled() and w.session.pipeline is None

    # ... and a new search on the opened run takes its scores from the score cache: no backward pass at all
    view.options.budget.setValue(3)
    qtbot.mouseClick(view.find_button, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "tune"), result
    assert w.session.pipeline is not None and w.session.pipeline.backward_passes == 0 and len(view.points) == 3
    assert view.points[0]["setting"] == target.setting  # the search starts from the setting shown


def test_cancel_and_a_bad_checks_file_leave_the_masks_as_they_were(qtbot, skilled_window, job_waiter, tmp_path):
    w = skilled_window
    merge(qtbot, w, job_waiter)
    res, view = w.results, w.results.tune_view
    p = w.session.pipeline
    before = (p.config, p.selection)

    # a malformed checks file: refused with its reason before anything is measured
    bad = tmp_path / "checks.json"
    bad.write_text('{"reasoning": [{"prompt": "2+2?"}]}', encoding="utf-8")
    view.options.checks.setText(str(bad))
    qtbot.mouseClick(view.find_button, Qt.MouseButton.LeftButton)
    state, name, exc = job_waiter(w)
    assert (state, name) == ("failed", "tune")
    box = w.errors.last
    assert box is not None and box.windowTitle() == "Please check your input"
    assert str(bad) in box.informativeText() and "answer" in box.informativeText()
    assert (p.config, p.selection) == before and p.tune_result is None
    box.close()
    w.errors.last = None

    # Cancel in the middle of the search, once the first points are on the plot (drawn live, while it runs)
    qtbot.mouseClick(view.options.clear, Qt.MouseButton.LeftButton)
    view.options.budget.setValue(24)
    qtbot.mouseClick(view.find_button, Qt.MouseButton.LeftButton)
    drawn = lambda: sum(len(item.points()) for item in view.scatter.scatters.values())  # noqa: E731
    qtbot.waitUntil(lambda: drawn() >= 1, timeout=120_000)
    assert w.runner.current == "tune" and view.progress.isVisible() and "measured" in view.status.text()
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert view.cancel_button.text() == "Cancelling…"
    state, name, exc = job_waiter(w)
    assert (state, name) == ("failed", "tune") and isinstance(exc, CancelledError)
    assert w.errors.last is None  # a cancel is not an error
    assert w.session.pipeline is p and p.config is before[0] and p.selection is before[1] and p.tune_result is None
    assert res.inspector.selection is before[1] and res.where.kind == "ok" and not res.save_version.isEnabled()
    assert 1 <= len(view.points) < 24 and "cancelled" in view.status.text()
    assert view.find_button.isEnabled() and not view.cancel_button.isVisible()

    # the points measured so far still work
    index = min(view.points)
    view._choose(index)
    assert job_waiter(w)[:2] == ("finished", "retune")
    assert setting_of(p.config) == view.points[index]["setting"]


def test_tune_automatically_writes_the_recommended_merge(qtbot, skilled_window, job_waiter):
    w = skilled_window
    w.go("settings")
    assert not w.settings.tune_options.isEnabled()
    w.settings.auto_tune.setChecked(True)
    w.settings.tune_options.budget.setValue(3)
    result = merge(qtbot, w, job_waiter)
    out = Path(result.out)
    tuned = result.pipeline.tune_result
    assert tuned is not None and len(tuned.candidates) == 3
    report = json.loads((out / "reasonany" / "report.json").read_text())
    assert {k: report["config"][k] for k in SETTING_KEYS} == tuned.best().setting
    assert json.loads((out / "reasonany" / "tune.json").read_text())["recommended"] == tuned.recommended
    assert "tune" in w.run_panel.stages and w.run_panel.stages["tune"].state == "done"
    view = w.results.tune_view
    assert len(view.points) == 3 and view.current == view.recommended == tuned.recommended
    assert w.results.where.kind == "ok"  # the recommended merge is the one saved
    # the choice is remembered with the other settings
    w.save_settings()
    prefs = w.store.tune_preferences(default_budget=24)
    assert prefs.auto and prefs.budget == 3


def test_evaluate_shows_the_verdict_warnings(qtbot, styled_app, tmp_path):
    from reasonany_gui.ui.results.panel import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_output(tmp_path)
    panel.tabs.setCurrentWidget(panel.evaluation)
    ev = {
        "perplexity": {
            "r.jsonl": {"merged": 4.0, "base": 4.0, "reasoning": 2.0, "domain": 4.1, "task_arithmetic": 2.5},
            "d.jsonl": {"merged": 3.0, "base": 4.0, "reasoning": 4.1, "domain": 2.9, "task_arithmetic": 3.0},
        },
        "kept": {"merged": {"reasoning": 0.0, "domain": 0.9}, "task_arithmetic": {"reasoning": 0.7, "domain": 0.9}},
        "verdict": [
            "The merged model lost the reasoning skill: it keeps 0 % of the reasoning model's gain on "
            "held-out reasoning data.",
            "Warning: the merged model kept 0 % of the reasoning gain: on reasoning data it is no better "
            "than the base model.",
            "Task Arithmetic (λ 1/1) on the same data keeps 70 % of the reasoning gain, 90 % of the domain gain.",
            'Warning: plain Task Arithmetic keeps more of the two skills than this merge. Run "Find a good '
            'setting" (reasonany tune) before you use this merge.',
        ],
        "generations": [],
    }
    ev_view = panel.evaluation
    ev_view.data_roles = {"r.jsonl": "reasoning", "d.jsonl": "domain"}
    ev_view.show_result(ev)
    banner = ev_view.verdict_warning
    assert banner.isVisibleTo(panel) and banner.kind == "warn"
    assert "kept 0 % of the reasoning gain" in banner.text() and "plain Task Arithmetic" in banner.text()
    assert ev_view.verdicts["reasoning"].kind == "error" and "No" in ev_view.verdicts["reasoning"].text()
    assert "keeps 70 %" in ev_view.comparison.text() and "Warning" not in ev_view.comparison.text()
    assert ev_view.find_setting.isVisibleTo(panel)
    qtbot.mouseClick(ev_view.find_setting, Qt.MouseButton.LeftButton)
    assert panel.tabs.currentWidget() is panel.tune_view
    ev_view.show_result(None)  # nothing to warn about without an evaluation
    assert not banner.isVisibleTo(panel) and not ev_view.find_setting.isVisibleTo(panel)
