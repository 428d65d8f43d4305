"""A candidate answering a long checks file shows progress while it runs (issue 22 item 6), at most ~10 lines a
second, and its pass rate is the same as answering all checks in one go."""

from __future__ import annotations

import time

import skills

from reasonany_gui.engine.core.events import Progress
from reasonany_gui.engine.measure.candidates import reference_setting
from reasonany_gui.engine.measure.checks import Checks
from reasonany_gui.engine.measure.tune import PROGRESS_PER_SECOND, Tuner
from reasonany_gui.engine.run.pipeline import Pipeline


def test_pass_rate_reports_each_chunk_and_scores_all_replies():
    checks = Checks(reasoning=[{"prompt": f"q{i}", "answer": "42" if i % 4 else "7"} for i in range(20)])
    calls: list[int] = []
    seen: list[tuple[int, int]] = []

    def generate(prompts: list[str]) -> list[str]:
        calls.append(len(prompts))
        return ["it is 42"] * len(prompts)

    rate = checks.pass_rate("reasoning", generate, lambda done, total: seen.append((done, total)), chunk=8)
    assert calls == [8, 8, 4]
    assert seen == [(8, 20), (16, 20), (20, 20)]
    assert rate == 15 / 20  # every fourth check wants "7"


def test_progress_lines_are_throttled_but_the_last_always_comes():
    tuner = Tuner.__new__(Tuner)  # only the listener and the share done are read
    events: list[object] = []
    tuner.listener, tuner.at = events.append, 0.25
    report = tuner._checks_progress("domain")
    for done in range(1, 1001):
        report(done, 1000)
    lines = [e for e in events if isinstance(e, Progress)]
    assert 1 <= len(lines) < 1000 and lines[-1].message == "domain checks answered: 1000/1000"
    assert all(e.fraction == 0.25 and e.stage == "tune" for e in lines)
    time.sleep(1 / PROGRESS_PER_SECOND)
    report(1, 1000)
    assert len([e for e in events if isinstance(e, Progress)]) == len(lines) + 1  # a tenth of a second later


def test_a_candidate_with_a_long_checks_file_emits_progress_while_it_answers(skilled):
    trio, files = skilled
    p = Pipeline(skills.trio_config(trio, files, samples=24, max_length=96, device="cpu", method="task_arithmetic"))
    p.check()
    from reasonany_gui.engine.data.calibration import load_tokenizer
    from reasonany_gui.engine.measure.live import LiveMerge

    checks = Checks(reasoning=[{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(40)])
    events: list[object] = []
    tuner = Tuner(p, budget=1, checks=checks, check_tokens=2, listener=events.append)
    live = LiveMerge(p)
    try:
        tuner._select(reference_setting("base"))
        before = time.perf_counter()
        m, _ = tuner._measure(live, {}, load_tokenizer(trio["base"]))
        seconds = time.perf_counter() - before
    finally:
        live.close()
        p.close()
    lines = [e.message for e in events if isinstance(e, Progress)]
    assert lines[0] == "reasoning checks answered: 8/40"  # during the candidate, not only at its end
    assert lines[-1] == "reasoning checks answered: 40/40"
    assert len(lines) <= 5 + PROGRESS_PER_SECOND * seconds  # 5 chunks of 8, no more than ~10 a second
    assert 0.0 <= m.checks["reasoning"] <= 1.0
