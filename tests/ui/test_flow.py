"""The whole flow driven through the widgets on a tiny trio: pick, run, watch, inspect, re-tune, save, reopen.

It also takes the README's screenshots; `REASONANY_UPDATE_SCREENSHOTS=1` writes them to docs/screenshots/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer

from reasonany_gui.engine.core.events import Progress


def report_counts(out: Path) -> dict:
    report = json.loads((out / "reasonany" / "report.json").read_text())
    return {
        n: {k: int(c[k]) for k in ("numel", "reasoning", "domain", "conflicts")}
        for n, c in report["per_tensor"].items()
    }


def test_full_flow(qtbot, window, job_waiter, screenshot, shot_size):
    w = window
    shoot = lambda _qtbot, win, name: screenshot(win, name)  # noqa: E731
    wait_job = lambda _qtbot, win: job_waiter(win)  # noqa: E731
    w.resize(*shot_size)
    # 1. models: described, and they fit together
    for role in ("base", "reasoning", "domain"):
        info = w.models.pickers[role].model_info
        assert info is not None and info.architecture == "Qwen2ForCausalLM" and info.num_layers == 2
        assert "Qwen2ForCausalLM" in w.models.pickers[role].info.text()
    assert w.models.verdict.kind == "ok"
    w.go("models")
    shoot(qtbot, w, "1-models")

    # 2. data: presets chosen, previews show samples with token counts
    w.data.pickers["domain"].set_spec("builtin:biomedicine")
    w.go("data")
    for role in ("reasoning", "domain"):
        rows = w.data.pickers[role].preview_rows
        assert len(rows) == 5 and all(isinstance(t, int) and t > 0 for _, t in rows)
        assert w.data.pickers[role].table.rowCount() == 5
        assert "longer than the 64-token limit" in w.data.pickers[role].status.text()
    shoot(qtbot, w, "2-data")

    # 3. settings: fast values applied on top of the MergeConfig defaults
    w.go("settings")
    # intersection on (not the default) so that all four passes run and the Run screen shows four plots
    w.settings.apply({"intersect": True})
    cfg = w.build_config()
    assert (cfg.samples, cfg.max_length, cfg.method, cfg.domain_data) == (4, 64, "reasonany", "builtin:biomedicine")
    shoot(qtbot, w, "3-settings")
    w.go("save")
    out = Path(w.output.out.text())
    assert not out.exists()
    shoot(qtbot, w, "4-save")

    # 4. run: press Merge, watch the live plots, take a picture mid-run
    seen = {"identify": 0}

    def count(ev):
        if isinstance(ev, Progress) and ev.stage.startswith("identify"):
            seen["identify"] += 1

    w.runner.engine_event.connect(count)
    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(20)
    heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))
    heartbeat.start()
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert w.runner.busy and w.current_page() is w.run_panel
    assert not w.merge_button.isEnabled()
    state, name, result = wait_job(qtbot, w)
    heartbeat.stop()
    assert (state, name) == ("finished", "merge"), result
    # the window stayed responsive: the GUI thread's timer kept ticking during the whole run
    assert len(beats) > 10 and max(b - a for a, b in zip(beats, beats[1:], strict=False)) < 2.0
    assert out.is_dir() and (out / "config.json").is_file() and (out / "reasonany" / "report.json").is_file()
    assert list(out.glob("*.safetensors"))
    assert seen["identify"] > 0
    assert w.current_page() is w.results  # the app moves on to the results by itself

    # 5. live sensitivity plots received data for all four passes, drawn on the timer
    plots = w.run_panel.plots
    assert set(plots.latest) == {"reasoning@reasoning", "base@reasoning", "domain@domain", "base@domain"}
    for upd in plots.latest.values():
        assert upd.samples_done == upd.samples_total == 4
        assert upd.grid.shape == (2, 7) and np.isfinite(upd.grid).all() and (upd.grid > 0).all()
    assert plots.updates_received >= 4
    w.go("run")
    qtbot.waitUntil(lambda: plots.redraws >= 1, timeout=5_000)
    assert all(stage.state == "done" for stage in w.run_panel.stages.values())
    assert w.run_panel.overall.value() == 1000
    shoot(qtbot, w, "5-run")

    # 6. mask inspector: counts equal report.json's, a cell opens its tensors, mask picture and histogram
    w.go("results")
    inspector = w.results.inspector
    counts = report_counts(out)
    assert inspector.table.shown_counts() == counts
    totals = json.loads((out / "reasonany" / "report.json").read_text())["totals"]
    assert sum(c["reasoning"] for c in counts.values()) == totals["reasoning"] > 0
    names = inspector.open_cell(1, "q")
    assert names == ["model.layers.1.self_attn.q_proj.bias", "model.layers.1.self_attn.q_proj.weight"]
    detail = inspector.detail
    assert detail.current == "model.layers.1.self_attn.q_proj.bias"
    detail.tensors.setCurrentRow(1)
    assert detail.current == "model.layers.1.self_attn.q_proj.weight"
    img = detail.mask_image.image
    assert img.shape == (64, 64, 3)  # q_proj.weight of the tiny model is 64 x 64, shown 1:1
    n_reasoning = counts["model.layers.1.self_attn.q_proj.weight"]["reasoning"]
    blue = np.all(img == [47, 111, 222], axis=-1).sum()
    assert blue == n_reasoning
    assert set(detail.thresholds) == {"reasoning", "domain"} and detail.thresholds["reasoning"] is not None
    # a click on the heatmap goes to the same place: image rows are modules, columns layers
    heat = inspector.heatmaps
    clicked = []
    heat.cellClicked.connect(lambda layer, module: clicked.append((layer, module)))
    heat._clicked(heat.modules.index("v"), 0)
    assert clicked == [(0, "v")] and detail.title.text() == "Layer 0 · v"
    detail.tensors.setCurrentRow(1)
    assert detail.current == "model.layers.0.self_attn.v_proj.weight"
    assert detail.mask_image.image.shape == (32, 64, 3)  # v_proj of the tiny model: 2 kv heads x 16 dims
    shoot(qtbot, w, "6-results")

    # 7. re-tune: a larger reasoning share re-selects from cached scores, no new backward pass
    pipeline = w.session.pipeline
    passes = pipeline.backward_passes
    assert passes == 16  # 4 passes x 4 samples
    w.results.retune.boxes["reasoning_ratio"].setValue(80.0)  # up from the default 50 %
    qtbot.mouseClick(w.results.retune.apply_button, Qt.MouseButton.LeftButton)
    state, name, _ = wait_job(qtbot, w)
    assert (state, name) == ("finished", "retune")
    assert w.session.pipeline is pipeline and pipeline.backward_passes == passes
    assert pipeline.config.reasoning_ratio == 0.8
    new_total = sum(c["reasoning"] for c in inspector.table.shown_counts().values())
    assert new_total > totals["reasoning"]
    assert w.results.save_version.isEnabled() and w.results.where.kind == "warn"

    # ... and "Save this version" writes it to a new folder whose report matches the inspector
    qtbot.mouseClick(w.results.save_version, Qt.MouseButton.LeftButton)
    state, name, result = wait_job(qtbot, w)
    assert (state, name) == ("finished", "save"), result
    second = Path(result.out)
    assert second != out and second.is_dir()
    assert report_counts(second) == inspector.table.shown_counts()
    assert pipeline.backward_passes == passes

    # 8. open run: the first folder again, its report and masks
    w.open_run(out)
    state, name, _ = wait_job(qtbot, w)
    assert (state, name) == ("finished", "open")
    assert inspector.table.shown_counts() == counts
    assert str(out) in w.results.where.text()
    assert "Method" in w.results.summary.text()
    assert w.store.recent("runs")[0] == str(out)
    assert w.session.pipeline is None and w.results.retune.isEnabled()
    inspector.open_cell(1, "q")  # an opened run's masks come from its folder: the empty histogram says why
    assert "an opened run shows its masks only" in detail.hist_plot.titleLabel.text
    assert not detail.thresholds and not detail.hist_plot.listDataItems()  # no empty plot posing as scores

    # ... and re-tuning the opened run takes its scores from the score cache: no backward pass at all
    w.results.retune.boxes["domain_ratio"].setValue(2.0)
    qtbot.mouseClick(w.results.retune.apply_button, Qt.MouseButton.LeftButton)
    state, name, result = wait_job(qtbot, w)
    assert (state, name) == ("finished", "retune"), result
    assert w.session.pipeline.backward_passes == 0 and w.session.pipeline.config.domain_ratio == 0.02
    assert sum(c["domain"] for c in inspector.table.shown_counts().values()) < totals["domain"]
    inspector.open_cell(1, "q")  # re-tuned, the scores are at hand: the histogram is drawn
    assert "threshold" in detail.hist_plot.titleLabel.text and detail.hist_plot.listDataItems()


def test_settings_and_choices_persist(qtbot, styled_app, trio, picker):
    from reasonany_gui.ui.main_window import MainWindow

    pick_models = picker
    w = MainWindow(demo_on_first_start=False)
    qtbot.addWidget(w)
    w.show()
    pick_models(w, trio)
    w.settings.apply({"samples": 17, "max_length": 96, "reasoning_ratio": 0.07, "intersect": False, "method": "ties"})
    w.data.pickers["domain"].set_spec("builtin:finance")
    w.resize(700, 500)
    saved = w.saveGeometry()
    w.close()

    w2 = MainWindow(demo_on_first_start=False)
    qtbot.addWidget(w2)
    w2.show()
    cfg = w2.build_config()
    assert (cfg.samples, cfg.max_length, cfg.reasoning_ratio, cfg.intersect, cfg.method) == (
        17,
        96,
        0.07,
        False,
        "ties",
    )
    assert cfg.domain_data == "builtin:finance"
    assert cfg.base == str(trio["base"]) and w2.models.pickers["base"].model_info is not None
    assert w2.store.geometry() == saved  # restoreGeometry clamps to the (offscreen) screen, so compare bytes
    w2.close()


def test_a_baseline_method_merges_without_masks(qtbot, window, job_waiter):
    w = window
    w.settings.apply({"method": "task_arithmetic", "reasoning_scale": 0.5, "domain_scale": 0.5})
    assert not w.settings.fields["samples"].isEnabled()  # no importance measurement for baselines
    out = Path(w.output.out.text())
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "merge"), result
    assert (out / "config.json").is_file() and not (out / "reasonany" / "masks.safetensors").exists()
    assert result.selection is None and w.session.pipeline.backward_passes == 0
    assert not w.results.retune.isEnabled()
    assert w.results.inspector.table.shown_counts() == {}
    assert "No masks" in w.results.inspector.totals.text()
    assert w.run_panel.plots.updates_received == 0
