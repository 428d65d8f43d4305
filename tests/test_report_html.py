"""report.html's sections on hand-made reports: a section appears only when the run has something to put in it."""

from __future__ import annotations

from typing import Any

from reasonany_gui.engine.output.report_html import render_html


def _report(method: str, totals: dict[str, int] | None) -> dict[str, Any]:
    model = {"spec": "org/model", "architecture": "LlamaForCausalLM", "num_params": 1000, "dtype": "bfloat16"}
    return {
        "config": {"method": method},
        "method": method,
        "created": "2026-12-05T03:00:00+0000",
        "models": {"base": model},
        "totals": totals,
        "timings_seconds": {"merge": 1.0},
    }


def test_task_arithmetic_has_no_empty_selection_heading():
    page = render_html(_report("task_arithmetic", None))
    assert "<h2>Selection</h2>" not in page
    assert "<h2>Models</h2>" in page and "<h2>Settings</h2>" in page


def test_a_masked_run_shows_its_selection_totals():
    totals = {"reasoning": 25, "domain": 50, "conflicts": 5, "selectable": 1000}
    page = render_html(_report("reasonany", totals))
    assert "<h2>Selection</h2>" in page
    assert "<b>25</b> (2.50%)" in page and "<b>50</b> (5.00%)" in page and "<b>5</b> (0.50%)" in page
