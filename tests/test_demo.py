"""The shipped demo: the trained trio of benchmarks/quality, merged with its preset, keeps both skills.

Why this test: the demo is the first thing a user sees, and its preset (demo.json) is the benchmark's best
ReasonAny row. Merging it through the CLI and checking greedy replies on held-out items (checks.json, written
by benchmarks/quality/ship_demo.py: questions and requests that never occur in any training or calibration
text) ties the app, the engine and the recorded table together: if the engine's selection or merge drifts,
the skills go and this fails. The base model answers none of these items, so the test can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonany_gui import cli
from reasonany_gui.engine.data import demo
from reasonany_gui.engine.measure.evaluate import greedy_generate, load_for_eval
from reasonany_gui.engine.settings.config import MergeConfig

SHIPPED = demo.shipped_demo_dir()
pytestmark = pytest.mark.skipif(not (SHIPPED / "demo.json").is_file(), reason="no trained demo shipped")


def load_checks() -> dict:
    return json.loads((SHIPPED / "checks.json").read_text(encoding="utf-8"))


def skill_scores(model_dir: Path) -> dict[str, float]:
    """Exact-match shares on the held-out checks (same rules as benchmarks/quality/tasks.py)."""
    checks = load_checks()
    model, tok = load_for_eval(model_dir, "cpu")
    out = {}
    r = greedy_generate(model, tok, [c["prompt"] for c in checks["reasoning"]], 80)
    out["reasoning"] = sum(
        t.rsplit("Answer:", 1)[-1].strip().rstrip(".") == c["answer"] and "Answer:" in t
        for t, c in zip(r, checks["reasoning"], strict=True)
    ) / len(r)
    for key in ("refuse", "help"):
        g = greedy_generate(model, tok, [c["prompt"] for c in checks[key]], 48)
        out[key] = sum(t.strip() == c["reply"] for t, c in zip(g, checks[key], strict=True)) / len(g)
    return out


def test_preset_is_a_valid_config_with_its_own_data():
    preset = demo.demo_preset()
    assert preset["method"] == "reasonany"
    cfg = MergeConfig(**{r: str(p) for r, p in demo.ensure_demo().items()}).replace(**preset)
    cfg.validate(need_out=False)
    for key in ("reasoning_data", "domain_data"):
        assert Path(preset[key]).is_file() and Path(preset[key]).parent == SHIPPED / "data"
    # the shipped demo wins over the perturbed fallback
    assert demo.ensure_demo() == {r: SHIPPED / r for r in ("base", "reasoning", "domain")}


def test_no_preset_without_a_shipped_demo(tmp_path):
    assert demo.demo_preset(tmp_path) == {}


def test_evaluate_prompts_show_both_skills_only_for_the_demo(trio):
    checks = load_checks()
    prompts = demo.demo_prompts({r: str(p) for r, p in demo.ensure_demo().items()})
    assert prompts == [checks["reasoning"][0]["prompt"], checks["refuse"][0]["prompt"], checks["help"][0]["prompt"]]
    assert demo.demo_prompts({r: str(p) for r, p in trio.items()}) == []
    assert demo.demo_prompts({"base": "Qwen/Qwen2.5-7B"}) == []


@pytest.mark.slow  # generates with the three shipped models (about 60 s); they change only with ship_demo.py
def test_demo_experts_have_their_skill_and_the_base_has_neither():
    base = skill_scores(SHIPPED / "base")
    assert base["reasoning"] == 0 and base["refuse"] == 0
    assert skill_scores(SHIPPED / "reasoning")["reasoning"] >= 0.9
    assert skill_scores(SHIPPED / "domain")["refuse"] >= 0.9


@pytest.mark.slow
def test_cli_demo_merge_keeps_both_skills(tmp_path, capsys):
    out = tmp_path / "demo-merge"
    assert cli.main(["merge", "--demo", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    report = json.loads((out / "reasonany" / "report.json").read_text(encoding="utf-8"))
    preset = demo.demo_preset()
    for key in ("scope", "intersect", "reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale"):
        assert report["config"][key] == preset[key], key
    measured = json.loads((SHIPPED / "demo.json").read_text(encoding="utf-8"))["measured"]
    got = skill_scores(out)
    # Evaluate on the demo merge generates from the demo's prompts: a chain and a refusal, word for word
    from reasonany_gui.engine.measure.evaluate import evaluate_run

    ev = evaluate_run(out, [preset["reasoning_data"]], max_samples=4, device="cpu", max_new_tokens=80)
    replies = [g["outputs"]["merged"] for g in ev["generations"]]
    checks = load_checks()
    assert replies[0].rstrip().endswith("Answer: " + checks["reasoning"][0]["answer"]), replies
    assert replies[1].strip() == checks["refuse"][0]["reply"], replies
    # the benchmark measured this setting on 100 reasoning and 40 refusal items; these are 20 of each
    assert got["reasoning"] >= measured["reasoning"] - 0.15, got
    assert got["refuse"] >= measured["domain"] - 0.15, got


@pytest.mark.parametrize(
    "argv,intersect,response_only",
    [
        ([], False, False),
        (["--intersect"], True, False),
        (["--no-intersect", "--response-only"], False, True),
        (["--no-response-only"], False, False),
    ],
)
def test_cli_switches_override_defaults_both_ways(argv, intersect, response_only):
    cfg = cli.config_from_args(cli.build_parser().parse_args(["merge", *argv]))
    assert (cfg.intersect, cfg.response_only) == (intersect, response_only)


def test_cli_demo_flag_fills_models_and_preset_and_flags_still_win():
    cfg = cli.config_from_args(cli.build_parser().parse_args(["merge", "--demo", "--domain-scale", "1.5"]))
    assert Path(cfg.base) == SHIPPED / "base" and Path(cfg.domain_data) == SHIPPED / "data" / "domain.jsonl"
    preset = demo.demo_preset()
    assert (cfg.scope, cfg.reasoning_ratio, cfg.reasoning_scale) == (
        preset["scope"],
        preset["reasoning_ratio"],
        preset["reasoning_scale"],
    )
    assert cfg.domain_scale == 1.5


@pytest.mark.slow
def test_cli_demo_tune_finds_a_merge_that_keeps_both_skills(tmp_path):
    """`merge --demo --tune` starts from the app's defaults (which keep neither skill on this trio), not from the
    demo's preset, and must still hand over a merge that passes the held-out checks of both skills."""
    out = tmp_path / "demo-tuned"
    assert (
        cli.main(["merge", "--demo", "--tune", "--budget", "10", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    )
    tune = json.loads((out / "reasonany" / "tune.json").read_text(encoding="utf-8"))
    first = tune["candidates"][0]["setting"]
    defaults = MergeConfig()
    assert (first["reasoning_ratio"], first["reasoning_scale"]) == (defaults.reasoning_ratio, defaults.reasoning_scale)
    got = skill_scores(out)
    assert got["reasoning"] >= 0.9 and got["refuse"] >= 0.9, (tune["summary"], got)
