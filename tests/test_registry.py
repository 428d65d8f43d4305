"""The method registry and the settings metadata are the one place a method or a setting is described.

Why these tests: before the registry, a method's id, titles, "needs scores" and selection direction were written
in five to seven files, and a scored method added without editing selection.py silently got LED's direction.
These tests prove that every registered method is complete and merges, and that the CLI, the validator, the
selection and the report follow a method registered at run time (a throwaway one, via monkeypatch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import skills
import torch
from safetensors.torch import load_file

from reasonany_gui import cli
from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.methods import registry as methods
from reasonany_gui.engine.methods.registry import REGISTRY, MergeMethod, TensorTrio, get_method, merge_tensor
from reasonany_gui.engine.run import pipeline
from reasonany_gui.engine.scoring.selection import mask_terms
from reasonany_gui.engine.settings import config
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.engine.settings.fields import Setting

CLI_FAST = ["--samples", "4", "--max-length", "48", "--device", "cpu", "--no-cache", "--quiet"]


def merge_argv(trio: dict, data_files: dict, out: Path, method: str) -> list[str]:
    return skills.merge_argv(trio, data_files, out, "--method", method, *CLI_FAST)


def merge_parser() -> argparse.ArgumentParser:
    """The `reasonany merge` sub-parser."""
    subs = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices["merge"]


def _half_way(t: TensorTrio, cfg: MergeConfig) -> torch.Tensor:
    """The throwaway method: half of each task vector, whatever the strengths."""
    return t.base + 0.5 * (t.tau_r + t.tau_d)


THROWAWAY = MergeMethod(
    "half_way",
    "Half way",
    "Half-way average (throwaway test method)",
    "Adds half of each expert's change.",
    "none: a test method",
    _half_way,
)


@pytest.fixture
def throwaway(monkeypatch) -> MergeMethod:
    """A method registered for one test only (monkeypatch removes it afterwards)."""
    monkeypatch.setitem(REGISTRY, THROWAWAY.id, THROWAWAY)
    return THROWAWAY


def valid_config(**kw) -> MergeConfig:
    return MergeConfig(base="b", reasoning="r", domain="d", out="o", **kw)


# ============================================================================ the registry itself
@pytest.mark.parametrize("method_id", list(REGISTRY))
def test_every_registered_method_is_complete(method_id):
    record = REGISTRY[method_id]
    assert record.problems() == []
    assert method_id in config.METHODS and (method_id in config.SCORED_METHODS) == record.needs_scores
    assert valid_config(method=method_id).needs_scores == record.needs_scores
    assert set(record.uses) <= set(MergeConfig.settings()), "uses names settings that do not exist"


@pytest.mark.parametrize("method_id", list(REGISTRY))
def test_every_method_leaves_the_base_when_the_experts_equal_it(method_id):
    """τ = 0 for both experts: every merge formula must give back the base exactly (masks or not)."""
    g = torch.Generator().manual_seed(1)
    base = torch.randn(8, 6, generator=g)
    masks = (torch.rand(8, 6, generator=g) < 0.5, torch.rand(8, 6, generator=g) < 0.5)
    out = merge_tensor(method_id, "layer.weight", base, base.clone(), base.clone(), valid_config(), *masks)
    assert out.dtype == torch.float32 and torch.equal(out, base)


@pytest.mark.parametrize("method_id", list(REGISTRY))
def test_every_method_merges_a_tiny_trio(method_id, trio, data_files, tmp_path, capsys):
    out = tmp_path / method_id
    code = cli.main(merge_argv(trio, data_files, out, method_id))
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "reasonany" / "report.json").read_text())
    assert report["method"] == method_id
    assert (out / "reasonany" / "masks.safetensors").exists() == REGISTRY[method_id].needs_scores
    merged = load_file(str(next(out.glob("*.safetensors"))))
    base = load_file(str(next(Path(trio["base"]).glob("*.safetensors"))))
    changed = [n for n in merged if n in base and not torch.equal(merged[n], base[n])]
    assert changed, "the merge left every tensor at the base's values"
    assert REGISTRY[method_id].full_title in (out / "README.md").read_text()


def test_selection_directions_come_from_the_record(monkeypatch):
    """A new scored method gets the directions its record gives, never LED's or ReasonAny's by default."""
    both_bottom = MergeMethod(
        "bottoms", "Bottoms", "Bottoms", "help", "ref", methods._masked, {"reasoning": "bottom", "domain": "bottom"}
    )
    monkeypatch.setitem(REGISTRY, "bottoms", both_bottom)
    terms = mask_terms("bottoms", 0.2, 0.3, intersect=True)
    assert {t.map_id: (t.direction, t.ratio) for ts in terms.values() for t in ts} == {
        "reasoning@reasoning": ("bottom", 0.2),
        "base@reasoning": ("bottom", 0.2),
        "domain@domain": ("bottom", 0.3),
        "base@domain": ("bottom", 0.3),
    }
    assert [t.direction for t in mask_terms("reasonany", 0.5, 0.5, False)["reasoning"]] == ["bottom"]
    assert [t.direction for t in mask_terms("led", 0.5, 0.5, False)["reasoning"]] == ["top"]
    with pytest.raises(ValueError, match="selects no weights"):
        mask_terms("task_arithmetic", 0.5, 0.5, False)


@pytest.mark.parametrize(
    "bad,why",
    [
        ({"selection": {"reasoning": "bottom"}}, "selection must give"),
        ({"selection": {"reasoning": "top", "domain": "sideways"}}, "selection must give"),
        ({"title": " "}, "empty title"),
        ({"id": "Has-Dash"}, "lower-case identifier"),
        ({"id": "ties"}, "registered twice"),
        ({"merge_ns": 0.0}, "merge_ns must be a positive"),
        ({"check": None}, "merge and check must be callable"),
    ],
)
def test_an_incomplete_record_is_refused(bad, why):
    fields = {
        "id": "new_one",
        "title": "T",
        "full_title": "T",
        "help": "h",
        "reference": "r",
        "merge": methods._masked,
        **bad,
    }
    with pytest.raises(ValueError, match=why):
        methods.register(MergeMethod(**fields))
    assert "new_one" not in REGISTRY and REGISTRY["ties"].title == "TIES"


def test_unknown_method_is_refused_by_the_per_tensor_dispatch():
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")


# ============================================================================ a method registered at run time
def test_a_registered_method_is_a_cli_choice_valid_and_titled(throwaway, capsys):
    args = cli.build_parser().parse_args(["merge", "--method", "half_way"])
    assert cli.config_from_args(args).method == "half_way"
    assert "half_way: Adds half of each expert's change." in " ".join(merge_parser().format_help().split())
    valid_config(method="half_way").validate()
    assert not valid_config(method="half_way").needs_scores
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["merge", "--method", "nope"])
    with pytest.raises(InputError, match="method = 'nope' is not one of: .*half_way"):
        valid_config(method="nope").validate()


def test_a_registered_method_merges_through_the_cli_and_the_report_names_it(
    throwaway, trio, data_files, tmp_path, capsys
):
    out = tmp_path / "half"
    assert cli.main(merge_argv(trio, data_files, out, "half_way")) == 0, capsys.readouterr().err
    assert throwaway.full_title in (out / "README.md").read_text()
    assert throwaway.full_title in (out / "reasonany" / "report.html").read_text()
    merged = load_file(str(next(out.glob("*.safetensors"))))
    weights = {r: load_file(str(next(Path(trio[r]).glob("*.safetensors")))) for r in ("base", "reasoning", "domain")}
    name = next(n for n in merged if n.endswith("mlp.down_proj.weight"))
    b, r, d = (weights[k][name].float() for k in ("base", "reasoning", "domain"))
    assert torch.allclose(merged[name].float(), b + 0.5 * ((r - b) + (d - b)), atol=1e-6)


# ============================================================================ settings defined once
def test_every_field_has_a_setting_and_is_exposed_or_marked_yaml_only():
    flags = {s for a in merge_parser()._actions for s in a.option_strings}
    for name, meta in MergeConfig.settings().items():
        assert isinstance(meta, Setting) and meta.label and meta.tooltip, name
        if meta.yaml_only:
            assert config.cli_flag(name) is None and not meta.gui, f"{name} is YAML-only but exposed"
            continue
        assert config.cli_flag(name) in flags, f"{name} has no CLI flag"
        assert meta.gui or meta.cli_only, f"{name} has no widget and no reason why not"
        assert meta.gui in ("", "models", "data", "settings", "output"), name


def _other_value(name: str, meta: Setting, default):
    """A legal value different from the default, as a CLI argument and as the config value."""
    if isinstance(default, bool):
        return None, not default
    if meta.options():
        value = next(o for o in meta.options() if o != default)
        return value, value
    if isinstance(default, int):
        return str(int(meta.low) + 1), int(meta.low) + 1
    if isinstance(default, float):
        value = (meta.low + meta.high) / 3
        return repr(value), value
    return {"device": ("cpu", "cpu"), "shard_size": ("2GB", "2GB")}.get(name, ("some/thing", "some/thing"))


@pytest.mark.parametrize("name", [n for n in MergeConfig.settings() if config.cli_flag(n)])
def test_each_flag_sets_its_field(name):
    meta = MergeConfig.settings()[name]
    default = getattr(MergeConfig(), name)
    arg, value = _other_value(name, meta, default)
    flag = config.cli_flag(name)
    argv = [flag if value else "--no-" + flag[2:]] if arg is None else [flag, arg]
    cfg = cli.config_from_args(cli.build_parser().parse_args(["merge", *argv]))
    assert getattr(cfg, name) == value
    untouched = cli.config_from_args(cli.build_parser().parse_args(["merge"]))
    assert getattr(untouched, name) == default  # not given = the default (or the config file's value) stands


@pytest.mark.parametrize("name", [n for n, s in MergeConfig.settings().items() if s.low is not None])
def test_validation_ranges_follow_the_metadata(name):
    meta = MergeConfig.settings()[name]
    whole = isinstance(getattr(MergeConfig(), name), int)
    below = (int(meta.low) - 1) if whole else (meta.low if meta.open_range else meta.low - 0.5)
    above = (int(meta.high) + 1) if whole else (meta.high if meta.open_range else meta.high + 0.5)
    for bad in (below, above):
        with pytest.raises(InputError, match=f"{name} = {bad!r} must be a"):
            valid_config(**{name: bad}).validate()
    middle = int((meta.low + meta.high) // 2) if whole else (meta.low + meta.high) / 2
    valid_config(**{name: middle}).validate()


def test_field_lists_are_generated_from_the_metadata():
    assert set(MergeConfig.fields_where(retunable=True)) == pipeline.RETUNABLE
    # what a re-tune may change without new gradients: selection and merge knobs and the output, never data or scores
    assert {"method", "reasoning_ratio", "domain_scale", "scope", "out"} <= pipeline.RETUNABLE
    assert not pipeline.RETUNABLE & {"score", "samples", "max_length", "reasoning_data", "base", "compute_dtype"}
    assert set(MergeConfig.fields_where(retune_card=True)) <= pipeline.RETUNABLE
    assert config.FIELD_TYPES["shard_size"] == "size" and config.FIELD_TYPES["out"] == "text or empty"


def test_percent_is_converted_in_one_place():
    meta = MergeConfig.settings()["reasoning_ratio"]
    assert meta.shown(0.05) == pytest.approx(5.0) and meta.stored(5.0) == 0.05
    scale = MergeConfig.settings()["reasoning_scale"]
    assert scale.shown(1.5) == 1.5 and scale.stored(1.5) == 1.5


def test_config_reads_the_registry_lazily_and_imports_no_torch():
    """config is read by light tools (settings store, run.yaml checks); the registry lives next to the torch
    formulas, so config must reach it through function-level imports only."""
    import subprocess
    import sys

    code = "import sys, reasonany_gui.engine.settings.config as c; print('torch' in sys.modules, c.METHODS[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "reasonany"]


def test_the_report_names_every_setting_by_its_metadata():
    """report.html and the model card label a setting with its Setting.label and show a percent field ×100, as the
    GUI does (no second table of titles in the report)."""
    from reasonany_gui.engine.output.card import setting_rows

    cfg = valid_config(reasoning_ratio=0.07, reasoning_data="/home/someone/private/notes.jsonl")
    rows = {key: (label, text) for label, key, text in setting_rows(cfg.to_dict())}
    assert not rows.keys() & {"base", "reasoning", "domain", "out", "extra"}, "local paths in a shared document"
    for name, meta in MergeConfig.settings().items():
        if name in rows:
            assert rows[name][0] == meta.label, name
            if meta.percent:
                assert rows[name][1] == f"{meta.shown(getattr(cfg, name)):.2f} %", name
    assert rows["reasoning_ratio"][1] == "7.00 %" and rows["reasoning_data"][1] == "local: notes.jsonl"
    assert setting_rows({"some_old_key": 3}) == [("Some old key", "some_old_key", "3")]  # an older report's key


# A setting added as one field (a patched copy of config.py, in a subprocess): tests/test_extending.py, on the
# example of docs/EXTENDING.md.
