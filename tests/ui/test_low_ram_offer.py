"""The settings screen offers the low-RAM mode in plain words when the run needs more memory than is free."""

from __future__ import annotations

from pathlib import Path

from reasonany_gui.engine.io.model_info import ModelInfo
from reasonany_gui.engine.scoring.estimate import estimate_run, low_ram_offer
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.ui.settings_panel import SettingsPanel

#: a 1.5 B float32 model scored on the CPU: weights 6 GB + float32 score sums 6 GB + the rest
INFO = ModelInfo(
    path=Path("."),
    architecture="Qwen2ForCausalLM",
    model_type="qwen2",
    num_params=1_543_714_304,
    dtype="float32",
    size_bytes=6_174_857_216,
    num_layers=28,
    hidden_size=1536,
    vocab_size=151_936,
    tied_embeddings=True,
    intermediate_size=8960,
)


def test_short_memory_shows_the_offer_and_taking_it_sets_the_passes(qtbot, monkeypatch):
    cfg = MergeConfig(device="cpu")
    est = estimate_run(cfg, INFO)
    ram = est.host_bytes - est.host_accumulator_bytes // 2  # half the score sums too many
    offer = low_ram_offer(cfg, INFO, ram)
    assert offer is not None and offer.groups > 1
    monkeypatch.setattr(SettingsPanel, "_free_bytes", staticmethod(lambda device_id: ram))
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.apply({"device": "cpu"})
    panel.set_base_info(INFO)
    text = panel.estimate.text()
    assert "Memory is short" in text and f"Score in {offer.groups} passes" in text and "of memory free" in text
    assert panel.estimate.kind == "warn"
    assert not panel.low_ram.isHidden() and panel.low_ram.text() == f"Score in {offer.groups} passes"
    panel.low_ram.click()
    assert panel.values()["score_groups"] == offer.groups
    assert "Memory is short" not in panel.estimate.text() and "scored in" in panel.estimate.text()
    assert panel.low_ram.isHidden()


def test_no_offer_when_memory_is_enough(qtbot, monkeypatch):
    monkeypatch.setattr(SettingsPanel, "_free_bytes", staticmethod(lambda device_id: 10**12))
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.apply({"device": "cpu"})
    panel.set_base_info(INFO)
    assert "Memory is short" not in panel.estimate.text() and panel.low_ram.isHidden()
