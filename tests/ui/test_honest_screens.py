"""Screens that must not show stale or contradictory numbers (issue 11): the data preview, Results after a
re-tune or a cancelled merge, the Run screen's time left, and the guidance next to the numbers."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

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
    assert not res.showing_results and "running" in res.empty.text()  # while it runs
    qtbot.mouseClick(w.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    assert w.run_panel.eta.text() == ""  # no "about 6 s left" after Cancel
    state, name, _ = job_waiter(w)
    assert (state, name) == ("failed", "merge")
    assert not res.showing_results and "cancelled" in res.empty.text()
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


def test_answers_are_shown_whole():
    """Issue 23: a reply is judged by its chain and its final answer, so none is cut with '…'.
    (The verdicts themselves are the engine's: tests/test_verdicts.py.)"""
    from reasonany_gui.ui.results.evaluation import whole_reply

    chain = "Gub's mentor is Kol. Kol's mentor is Toz.\nAnswer: Toz"
    assert whole_reply(f"\n{chain}\n\n") == chain
    assert whole_reply("Kob's mentor is Dax, and Dax's men") == "Kob's mentor is Dax, and Dax's men"


def test_every_view_belongs_to_its_run(qtbot, window, job_waiter, monkeypatch, tmp_path):
    """Issue 23: open run A, ask a question, open run B: no answer, evaluation or search of A is shown."""
    from reasonany_gui.ui import jobs

    w = window
    runs = []
    for name in ("run-a", "run-b"):
        w.output.out.setText(str(tmp_path / name))
        qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
        state, _name, result = job_waiter(w)
        assert state == "finished", result
        runs.append(result.out)

    def fake_ask(out_dir, config, prompt, device="auto", max_new_tokens=96):
        return lambda _listener, _cancel: {
            "prompt": prompt,
            "outputs": {r: f"answer of {out_dir.name}" for r in jobs.ASK_ROLES},
        }

    monkeypatch.setattr(jobs, "ask_job", fake_ask)
    res = w.results
    w.open_run(runs[0])
    assert job_waiter(w)[:2] == ("finished", "open")
    res.evaluation.prompt.setText("Who is Kob's grand-mentor?")
    qtbot.mouseClick(res.evaluation.ask_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "ask")
    assert res.evaluation.answers["merged"].toPlainText() == "answer of run-a"
    w.session.record("evaluation", {"perplexity": {"a": {"merged": 2.0, "base": 3.0}}, "generations": []})
    w.session.record("tune", FAKE_TUNE_SECTION)
    w.show_session_results()
    assert res.evaluation.table.rowCount() == 1 and res.tune_view.result is not None

    w.open_run(runs[1])
    assert job_waiter(w)[:2] == ("finished", "open")
    assert all(box.toPlainText() == "" for box in res.evaluation.answers.values())
    assert res.evaluation.result is None and res.evaluation.table.rowCount() == 0
    assert res.tune_view.result is None
    # back to A: its report holds no evaluation (the one above was only recorded), and the answers stay gone
    w.open_run(runs[0])
    assert job_waiter(w)[:2] == ("finished", "open")
    assert all(box.toPlainText() == "" for box in res.evaluation.answers.values())


#: a finished search as the report keeps it (only what the view reads)
FAKE_TUNE_SECTION = {
    "summary": "Recommended: ReasonAny.",
    "recommended": 0,
    "pareto": [0],
    "warnings": [],
    "candidates": [
        {
            "index": 0,
            "label": "ReasonAny",
            "setting": {"method": "reasonany", "reasoning_ratio": 0.3, "domain_ratio": 0.3},
            "kept": {"reasoning": 0.9, "domain": 0.8},
        }
    ],
}


def test_the_search_speaks_the_apps_terms_and_explains_its_numbers(qtbot, styled_app):
    """Issue 23: no p or λ where the controls say share and strength; kept shares over 100 % and the difference
    from Evaluate's numbers are explained in words."""
    from reasonany_gui.engine.methods.registry import REGISTRY
    from reasonany_gui.ui.results.evaluation import EvaluationView
    from reasonany_gui.ui.tune.view import TuneView

    settings = [
        {
            "method": "reasonany",
            "reasoning_ratio": 0.2,
            "domain_ratio": 0.2,
            "reasoning_scale": 2.24,
            "domain_scale": 2.24,
            "scope": "tensor",
        },
        {
            "method": "task_arithmetic",
            "reasoning_ratio": 0.5,
            "domain_ratio": 0.5,
            "reasoning_scale": 1.0,
            "domain_scale": 1.0,
            "scope": "tensor",
        },
    ]
    labels = [REGISTRY[s["method"]].describe(s) for s in settings]
    assert "λ" in labels[0] and " p " in labels[0]  # the engine's own words
    section = {
        "summary": f"Recommended: {labels[1]}. The best masked merge tried, {labels[0]}, kept 90 % and 80 %.",
        "recommended": 1,
        "pareto": [0, 1],
        "warnings": [],
        "candidates": [
            {"index": i, "label": label, "setting": s, "kept": kept}
            for i, (label, s, kept) in enumerate(
                zip(
                    labels,
                    settings,
                    [{"reasoning": 0.9, "domain": 0.8}, {"reasoning": 1.12, "domain": 1.0}],
                    strict=True,
                )
            )
        ],
    }
    view = TuneView()
    qtbot.addWidget(view)
    view.set_result(section)
    view.mark_current(settings[0])
    view.refresh()
    shown = [view.summary.text(), view.shown_now.text(), view.status.text()] + [
        view.table.item(r, 0).text() for r in range(view.table.rowCount())
    ]
    assert not any("λ" in t or " p " in t for t in shown), shown
    assert "ReasonAny · shares 20 % / 20 % · strengths 2.24 / 2.24" in view.summary.text()
    assert "Task Arithmetic · strengths 1 / 1" in view.summary.text()
    assert "Over 100 %" in view.status.text() and "Evaluate measures on other held-out texts" in view.status.text()
    # issue 21: the kept shares read as estimates from the user's checks, to be confirmed with Evaluate
    headers = [view.table.horizontalHeaderItem(c).text() for c in (1, 2)]
    assert headers == ["Reasoning kept (estimate)", "Domain kept (estimate)"]
    axes = [view.scatter.plot.getAxis(side).labelText for side in ("bottom", "left")]
    assert axes == ["reasoning gain kept on your checks (estimate)", "domain gain kept on your checks (estimate)"]
    words = " ".join(label.text() for label in view.findChildren(QLabel))
    assert "estimates from held-out rows" in words and "check the pick with Evaluate" in words
    assert "reasoning kept (estimate): 90 %" in view.table.item(0, 1).toolTip()

    evaluation = EvaluationView()
    qtbot.addWidget(evaluation)
    evaluation.show_result(
        {
            "perplexity": {"r": {"merged": 2.0, "base": 3.0, "reasoning": 2.1, "domain": 3.1}},
            "kept": {"merged": {"reasoning": 1.32, "domain": 0.9}},
            "verdict": ["Task Arithmetic (λ 1/1) on the same data keeps 87 % of the reasoning gain."],
            "generations": [],
        }
    )
    assert "Over 100 %" in evaluation.status.text()
    assert "other held-out texts" in evaluation.comparison.text()


def test_the_own_question_compares_with_task_arithmetic(qtbot, window, job_waiter):
    """Issue 23: the own-question boxes show Task Arithmetic too, as Evaluate compares with it everywhere else."""
    w = window
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "merge")
    view = w.results.evaluation
    view.reply_tokens.setValue(16)
    view.prompt.setText("Who is Kob's grand-mentor?")
    qtbot.mouseClick(view.ask_button, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "ask"), result
    assert set(result["outputs"]) == {"merged", "task_arithmetic", "base", "reasoning", "domain"}
    assert view.answers["task_arithmetic"].toPlainText() == result["outputs"]["task_arithmetic"].strip()
    assert w.session.pipeline is not None  # the comparison merge was its own pipeline; the kept one is untouched
