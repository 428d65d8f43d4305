"""The GUI follows the method registry and the settings metadata (config.Setting): no second list to forget.

Why: each setting's range, unit and words were written again in the settings panel and the Re-tune card, and
the methods' titles and help in texts.py and settings_panel.py; a new method or setting did not show up, or
showed up with another range than the validator's."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from reasonany_gui.engine.methods.registry import REGISTRY, MergeMethod, TensorTrio
from reasonany_gui.engine.settings.config import MergeConfig


def _half_way(t: TensorTrio, cfg: MergeConfig):
    return t.base + 0.5 * (t.tau_r + t.tau_d)


@pytest.fixture
def throwaway(monkeypatch) -> MergeMethod:
    record = MergeMethod(
        "half_way",
        "Half way",
        "Half-way average",
        "Adds half of each expert's change.",
        "none: a test method",
        _half_way,
    )
    monkeypatch.setitem(REGISTRY, record.id, record)
    return record


def panel_values(qtbot) -> dict[str, dict]:
    """What each input panel hands to the config, keyed by the panel name used in Setting.gui."""
    from reasonany_gui.ui.data_panel import DataPanel
    from reasonany_gui.ui.models_panel import ModelsPanel
    from reasonany_gui.ui.output_panel import OutputPanel
    from reasonany_gui.ui.settings_panel import SettingsPanel

    panels = {"models": ModelsPanel(), "data": DataPanel(), "settings": SettingsPanel(), "output": OutputPanel()}
    for p in panels.values():
        qtbot.addWidget(p)
    return {
        "models": panels["models"].specs(),
        "data": panels["data"].specs(),
        "settings": panels["settings"].values(),
        "output": panels["output"].values(),
    }


def test_every_setting_with_a_panel_has_a_widget_there(qtbot):
    values = panel_values(qtbot)
    for panel, shown in values.items():
        assert set(shown) == set(MergeConfig.fields_where(gui=panel)), panel
    shown_anywhere = set().union(*values.values())
    for name, meta in MergeConfig.settings().items():
        assert (name in shown_anywhere) or meta.yaml_only or meta.cli_only, f"{name} is in no panel, unexplained"


def test_spin_boxes_follow_the_ranges_and_units(qtbot):
    from reasonany_gui.ui.settings_panel import SettingsPanel, setting_value, show_setting

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    for name, box in panel.fields.items():
        meta = MergeConfig.settings()[name]
        assert box.toolTip() == meta.tooltip, name
        if isinstance(box, (QSpinBox, QDoubleSpinBox)):
            inset = 0.01 if meta.open_range else 0
            assert box.minimum() == pytest.approx(meta.shown(meta.low) + inset), name
            assert box.maximum() == pytest.approx(meta.shown(meta.high) - inset), name
            assert box.suffix() == (" %" if meta.percent else f" {meta.unit}" if meta.unit else ""), name
    ratio = panel.fields["reasoning_ratio"]
    show_setting("reasoning_ratio", ratio, 0.07)
    assert ratio.value() == pytest.approx(7.0) and setting_value("reasoning_ratio", ratio) == 0.07


def test_granularity_and_score_precision_are_advanced_settings(qtbot):
    from reasonany_gui.ui.settings_panel import ADVANCED_FIELDS, SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    assert {"granularity", "score_precision"} <= set(ADVANCED_FIELDS)
    panel.apply({"granularity": "tensor", "score_precision": "float32"})
    assert (panel.values()["granularity"], panel.values()["score_precision"]) == ("tensor", "float32")


def test_scoring_only_settings_follow_the_method_record(qtbot):
    from reasonany_gui.ui.settings_panel import SCORED_FIELDS, SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    assert set(SCORED_FIELDS) == set(MergeConfig.fields_where(gui="settings", scoring_only=True))
    panel.apply({"method": "task_arithmetic"})
    assert not any(panel.fields[n].isEnabled() for n in SCORED_FIELDS)
    panel.apply({"method": "ties"})  # TIES reads the shares as its densities
    assert panel.fields["reasoning_ratio"].isEnabled() and not panel.fields["samples"].isEnabled()
    panel.apply({"method": "reasonany"})
    assert all(panel.fields[n].isEnabled() for n in SCORED_FIELDS)


def test_a_registered_method_is_in_both_method_combos_with_its_help(qtbot, throwaway):
    from reasonany_gui.ui.results.retune_card import RETUNE_FIELDS, RetuneCard
    from reasonany_gui.ui.settings_panel import SettingsPanel

    panel, card = SettingsPanel(), RetuneCard()
    qtbot.addWidget(panel)
    qtbot.addWidget(card)
    for combo in (panel.method, card.boxes["method"]):
        assert isinstance(combo, QComboBox)
        i = combo.findData("half_way")
        assert i >= 0 and combo.itemText(i) == "Half way (comparison)"
    panel.apply({"method": "half_way"})
    assert panel.method_help.text() == throwaway.help and panel.values()["method"] == "half_way"
    assert tuple(card.boxes) == RETUNE_FIELDS == MergeConfig.fields_where(retune_card=True)
    card.load(MergeConfig(method="half_way", reasoning_ratio=0.25))
    assert card.values()["method"] == "half_way" and card.values()["reasoning_ratio"] == 0.25


def test_switches_are_check_boxes_labelled_from_the_metadata(qtbot):
    from reasonany_gui.ui.settings_panel import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    for name, box in panel.fields.items():
        if isinstance(getattr(MergeConfig(), name), bool):
            assert isinstance(box, QCheckBox) and box.text() == MergeConfig.settings()[name].label


def test_the_save_screen_is_generated_from_the_metadata(qtbot):
    """The Save screen builds its widgets like the Settings screen (gui="output"): same tooltips, choices, values."""
    from reasonany_gui.ui.output_panel import OutputPanel

    panel = OutputPanel()
    qtbot.addWidget(panel)
    assert tuple(panel.fields) == MergeConfig.fields_where(gui="output")
    for name, box in panel.fields.items():
        meta = MergeConfig.settings()[name]
        assert box.toolTip() == meta.tooltip, name
        if isinstance(box, QComboBox) and not box.isEditable():
            assert [box.itemData(i) for i in range(box.count())] == list(meta.options()), name
    chosen = MergeConfig(out="/tmp/somewhere", dtype="float16", tokenizer_source="domain", shard_size="3GB")
    panel.load(chosen)
    assert panel.values() == {n: getattr(chosen, n) for n in panel.fields}
    panel.load(MergeConfig())  # a config without a folder keeps the folder shown (the suggested one)
    assert panel.values()["out"] == "/tmp/somewhere" and panel.values()["dtype"] == "auto"
    dtype = panel.fields["dtype"]
    assert dtype.itemText(dtype.findData("auto")) == "Same as the base model"
