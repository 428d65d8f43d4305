"""tune.summarize on hand-made candidates: its sentence follows the numbers of the table, and names each method by
its registry title (LED-Merging is not "ReasonAny")."""

from __future__ import annotations

from typing import Any

from reasonany_gui.engine.measure.candidates import Candidate
from reasonany_gui.engine.measure.tune import summarize


def _cand(i: int, method: str, r: float | None, d: float | None, change: float = 1.0) -> Candidate:
    setting: dict[str, Any] = {"method": method, "reasoning_scale": 1.0, "domain_scale": 1.0}
    setting |= {"reasoning_ratio": 0.05, "domain_ratio": 0.2}  # a label without ratios ignores them
    return Candidate(i, setting, kept={"reasoning": r, "domain": d}, change=change)


def test_a_dense_pick_ahead_on_both_says_more_of_both():
    best, masked = _cand(0, "task_arithmetic", 0.9, 0.8), _cand(1, "reasonany", 0.7, 0.6)
    text = summarize([best, masked], best)
    assert "Task Arithmetic kept more of both skills than the best ReasonAny setting tried" in text
    assert "(ReasonAny p 0.05/0.2, λ 1/1, tensor scope: 70 % and 60 %)." in text


def test_a_dense_pick_behind_on_one_skill_says_so_and_why():
    best, masked = _cand(0, "ties", 0.7, 0.9), _cand(1, "led", 0.95, 0.6)
    text = summarize([best, masked], best)
    assert "more of both" not in text
    assert "TIES kept more of the domain gain and less of the reasoning gain than the best" in text
    assert "the best LED-Merging setting tried" in text and "ReasonAny" not in text
    assert "its weaker skill is the stronger" in text  # 0.7 against 0.6


def test_a_dense_pick_within_the_tie_tolerance_is_explained_by_its_smaller_change():
    best = _cand(0, "task_arithmetic", 0.80, 0.99, change=0.5)
    masked = _cand(1, "reasonany", 0.81, 0.95, change=2.0)
    text = summarize([best, masked], best)
    assert "TIES" not in text and "more of both" not in text
    assert "Task Arithmetic kept more of the domain gain and less of the reasoning gain" in text
    assert "within what the checks can tell apart, and Task Arithmetic changes the base less" in text


def test_equal_shown_numbers_are_not_called_more():
    best, masked = _cand(0, "dare", 0.801, 0.7), _cand(1, "reasonany", 0.799, 0.7)  # both shown as 80 % and 70 %
    text = summarize([best, masked], best)
    assert "DARE kept at least as much as the best ReasonAny setting tried" in text and "more" not in text


def test_a_dense_pick_behind_on_both_shown_numbers_does_not_claim_more():
    best, masked = _cand(0, "linear", 0.80, 0.80, change=0.1), _cand(1, "reasonany", 0.81, 0.81, change=3.0)
    text = summarize([best, masked], best)
    assert "Linear average kept" not in text and "at least as much" not in text
    assert "The best ReasonAny setting tried" in text and "tensor scope: 81 % and 81 %) kept more;" in text
    assert "within what the checks can tell apart, and Linear average changes the base less" in text


def test_a_masked_pick_names_the_best_dense_merge():
    best, dense = _cand(0, "reasonany", 0.9, 0.9), _cand(1, "task_arithmetic", 0.6, 0.7)
    text = summarize([best, dense], best)
    assert "The best dense merge tried, Task Arithmetic λ 1/1, kept 60 % and 70 %." in text
