"""docs/EXTENDING.md's promise, checked on its own examples: a method added as one function and one record, and a
setting added as one field, reach the CLI (flag, help, validation), the app (method list, setting widget), the
tuner (candidates), the time estimate and the report, with nothing else edited.

Why the examples are read from the doc: the doc is what a developer copies; if its code stopped working, or the
promise stopped holding, this test fails, and the doc cannot drift from what the test checks."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import skills
import torch
from safetensors.torch import load_file

from reasonany_gui import cli
from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.io.model_info import ModelInfo
from reasonany_gui.engine.measure.candidates import anchor_settings, describe_setting, neighbours
from reasonany_gui.engine.methods import registry
from reasonany_gui.engine.methods.registry import REGISTRY, MergeMethod
from reasonany_gui.engine.scoring.estimate import stage_costs
from reasonany_gui.engine.settings.config import MergeConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "EXTENDING.md"
CLI_FAST = ["--samples", "4", "--max-length", "48", "--device", "cpu", "--no-cache", "--quiet"]
#: a 1 B-parameter model, for the estimate (no files needed)
INFO = ModelInfo(Path("."), "Qwen2ForCausalLM", "qwen2", 10**9, "bfloat16", 2 * 10**9, 24, 2048, 32000, False, 5632)


def example(name: str) -> str:
    """The code block under `<!-- example: NAME -->` in docs/EXTENDING.md."""
    m = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert m, f"docs/EXTENDING.md has no '{name}' example"
    return m.group(1)


def valid_config(**kw: object) -> MergeConfig:
    return MergeConfig(base="b", reasoning="r", domain="d", out="o", **kw)


@pytest.fixture
def half_way():
    """The doc's method, written into the registry module as the doc says (and taken out afterwards)."""
    before = set(vars(registry))
    exec(compile(example("method"), str(DOC), "exec"), vars(registry))  # noqa: S102 - our own doc's example
    try:
        yield REGISTRY["half_way"]
    finally:
        REGISTRY.pop("half_way", None)
        for name in set(vars(registry)) - before:
            delattr(registry, name)


# ============================================================================ a method: one function, one record
def test_the_method_reaches_the_cli_and_its_validation(half_way: MergeMethod):
    args = cli.build_parser().parse_args(["merge", "--method", "half_way"])
    assert cli.config_from_args(args).method == "half_way"
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["merge"]
    helps = " ".join(sub.format_help().split())
    assert "half_way: Adds half of each expert's change, times its strength." in helps
    valid_config(method="half_way").validate()
    with pytest.raises(InputError, match=r"half_way needs reasoning_scale \+ domain_scale > 0"):
        valid_config(method="half_way", reasoning_scale=0.0, domain_scale=0.0).validate()


def test_the_method_reaches_the_app(half_way: MergeMethod):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from reasonany_gui.ui.setting_widgets import setting_widget
    from reasonany_gui.ui.texts import describe_value

    app = QApplication.instance() or QApplication([])
    box = setting_widget("method")
    entries = {box.itemData(i): box.itemText(i) for i in range(box.count())}
    assert entries["half_way"] == "Half way (comparison)"
    assert describe_value("method", "half_way") == "Method: Half way (comparison)"
    assert (half_way.colour, half_way.marker) == ("#d92d20", "star")  # the tuner's scatter plot
    box.deleteLater()
    del app


def test_the_method_reaches_the_tuner(half_way: MergeMethod):
    rows = anchor_settings(MergeConfig())
    mine = [r for r in rows if r["method"] == "half_way"]
    assert [(r["reasoning_scale"], r["domain_scale"]) for r in mine] == [(1.0, 1.0), (2.0, 2.0)]
    scored = [i for i, r in enumerate(rows) if REGISTRY[r["method"]].needs_scores and i > 0]
    assert all(rows.index(r) < min(scored) for r in mine), "a dense method's anchors come before the masked ones"
    assert describe_setting(mine[0]) == "Half way λ 1/1"
    steps = {(k, n[k]) for n in neighbours(mine[0]) for k in n if n[k] != mine[0][k]}
    assert steps == {("reasoning_scale", 1.25), ("reasoning_scale", 0.8), ("domain_scale", 1.25), ("domain_scale", 0.8)}


def test_the_method_reaches_the_estimate(half_way: MergeMethod):
    ours = stage_costs(MergeConfig(method="half_way"), INFO)["write"]
    plain = stage_costs(MergeConfig(method="task_arithmetic"), INFO)["write"]
    assert ours - plain == pytest.approx(INFO.num_params * (14.0 - 12.0) * 1e-9)


def test_the_method_merges_and_the_report_names_it(half_way: MergeMethod, trio, data_files, tmp_path, capsys):
    out = tmp_path / "half"
    argv = skills.merge_argv(trio, data_files, out, "--method", "half_way", *CLI_FAST)
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert json.loads((out / "reasonany" / "report.json").read_text())["method"] == "half_way"
    assert "Half-way merge" in (out / "README.md").read_text()
    assert "Half-way merge" in (out / "reasonany" / "report.html").read_text()
    merged = load_file(str(next(out.glob("*.safetensors"))))
    weights = {r: load_file(str(next(Path(trio[r]).glob("*.safetensors")))) for r in ("base", "reasoning", "domain")}
    name = next(n for n in merged if n.endswith("mlp.down_proj.weight"))
    b, r, d = (weights[k][name].float() for k in ("base", "reasoning", "domain"))
    expected = b + 0.5 * (2.0 * (r - b) + 2.0 * (d - b))  # the default strengths are 2
    assert torch.allclose(merged[name].float(), expected, atol=1e-5)


# ============================================================================ a setting: one field
#: run in a copy of the package whose config.py has the doc's field (nothing else edited)
SETTING_CHECKS = """
import argparse, dataclasses, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication, QDoubleSpinBox
from reasonany_gui import cli
from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.io.model_info import ModelInfo
from reasonany_gui.engine.measure.candidates import SETTING_KEYS, anchor_settings, neighbours
from reasonany_gui.engine.methods.registry import REGISTRY
from reasonany_gui.engine.scoring.estimate import stage_costs
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.ui.settings_panel import SettingsPanel

base, reasoning, domain, reasoning_data, domain_data, out = sys.argv[1:7]
# the CLI: a flag with the tooltip as help, and the range check
assert cli.config_from_args(cli.build_parser().parse_args(["merge", "--blend", "0.4"])).blend == 0.4
sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["merge"]
assert "How much of the merged change is kept" in " ".join(sub.format_help().split())
try:
    MergeConfig(base="b", reasoning="r", domain="d", out="o", blend=1.5).validate()
    raise SystemExit("the validator let blend = 1.5 through")
except InputError as exc:
    assert "blend = 1.5 must be a fraction between 0 and 1" in str(exc), exc
# the app: a percent spin box on the settings panel
app = QApplication([])
panel = SettingsPanel()
box = panel.fields["blend"]
assert isinstance(box, QDoubleSpinBox) and box.suffix() == " %"
panel.apply({"blend": 0.3})
assert box.value() == 30.0 and panel.values()["blend"] == 0.3
# the tuner: every candidate carries it, and a method that reads it has it stepped
assert SETTING_KEYS[-1] == "blend"
rows = anchor_settings(MergeConfig(blend=0.5))
assert all(r["blend"] == 0.5 for r in rows)
REGISTRY["ties"] = dataclasses.replace(REGISTRY["ties"], uses=REGISTRY["ties"].uses + ("blend",))
ties = next(r for r in rows if r["method"] == "ties")
assert {n["blend"] for n in neighbours(ties)} == {0.5, 0.625, 0.4}
# the estimate takes it
info = ModelInfo(Path("."), "Qwen2ForCausalLM", "qwen2", 10**9, "bfloat16", 2 * 10**9, 24, 2048, 32000, False, 5632)
assert stage_costs(MergeConfig(blend=0.5), info)["write"] > 0
# the report: a merge with --blend shows its row
argv = ["merge", "--base", base, "--reasoning", reasoning, "--domain", domain, "--reasoning-data", reasoning_data]
argv += ["--domain-data", domain_data, "--out", out, "--blend", "0.4"]
argv += ["--method", "task_arithmetic", "--device", "cpu", "--quiet"]
assert cli.main(argv) == 0
html = (Path(out) / "reasonany" / "report.html").read_text()
assert "Blend" in html and "40.00 %" in html, html
print("followed")
"""


def _package_with(tmp_path: Path, field: str) -> Path:
    """A copy of the package (links, except config.py) whose MergeConfig has one more field, before
    tokenizer_source: what a developer's edit of config.py does, and nothing else."""
    import reasonany_gui

    source = Path(reasonany_gui.__file__).parent
    copy = tmp_path / "pkg" / "reasonany_gui"
    settings = copy / "engine" / "settings"
    settings.mkdir(parents=True)
    for folder, keep in ((source, "engine"), (source / "engine", "settings")):
        target = copy if folder == source else copy / "engine"
        for entry in folder.iterdir():
            if entry.name not in (keep, "__pycache__"):
                (target / entry.name).symlink_to(entry)
    for entry in (source / "engine" / "settings").iterdir():
        if entry.name not in ("config.py", "__pycache__"):
            (settings / entry.name).symlink_to(entry)
    text = (source / "engine" / "settings" / "config.py").read_text(encoding="utf-8")
    anchor = "    tokenizer_source: str = setting("
    assert text.count(anchor) == 1, "the test's anchor field moved: pick another line to add the field before"
    (settings / "config.py").write_text(text.replace(anchor, field + anchor), encoding="utf-8")
    return copy.parent


def test_a_setting_added_as_one_field_reaches_the_cli_the_app_the_tuner_the_estimate_and_the_report(
    trio, data_files, tmp_path
):
    """Why a copy in a subprocess: the panels and the CLI read the fields when they are imported, as they do in
    the app; a field added to the live class in this process would not prove what a developer's edit does."""
    root = _package_with(tmp_path, example("setting"))
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "QT_QPA_PLATFORM": "offscreen",
        "REASONANY_HOME": str(tmp_path / "home"),
    }
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r})\nimport reasonany_gui\n"
        f"assert reasonany_gui.__file__.startswith({str(root)!r}), reasonany_gui.__file__\n" + SETTING_CHECKS
    )
    paths = [str(trio[r]) for r in ("base", "reasoning", "domain")] + [
        str(data_files[s]) for s in ("reasoning", "domain")
    ]
    argv = [sys.executable, "-c", code, *paths, str(tmp_path / "out")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("followed"), out.stdout + out.stderr
