"""The screens' choices in and out: restored at start, the demo trio and its preset, and the plan in words.

Why the demo preset is watched here: the demo's tuned shares suit a 0.85 M-parameter model; once the user picks
their own models, what they have not changed goes back to the recommended defaults (demo_preset.DemoPreset).
"""

from __future__ import annotations

import logging

from reasonany_gui.engine.data import demo
from reasonany_gui.engine.settings.config import ROLES, MergeConfig

from .demo_preset import DemoPreset
from .results.evaluation import data_title
from .texts import describe_value
from .tune.options import DEFAULT_BUDGET
from .window_base import WindowBase
from .window_geometry import place_window

log = logging.getLogger(__name__)


class ScreenChoices(WindowBase):
    """What the screens show at start, the demo, and what they will make Merge do."""

    _demo_on_first_start: bool

    def restore(self) -> None:
        place_window(self, self.store.geometry())
        cfg = self.hidden_config
        self.models.set_recent(self.store.recent("models"))
        try:
            self.models.refresh_cache()
        except Exception as exc:  # noqa: BLE001 - a broken cache is not a reason to fail at start
            log.warning("scanning the Hugging Face cache failed: %s", exc)
        for role in ("reasoning", "domain"):
            self.data.set_recent(role, self.store.recent(f"data:{role}"))
        self.settings.speed_factors = self.store.speed_factors()
        self.settings.load(cfg)
        prefs = self.store.tune_preferences(DEFAULT_BUDGET)
        self.settings.set_tune_preferences(prefs)
        self.results.set_search_options(prefs.budget, prefs.checks)
        self.output.load(cfg)
        self.data.set_specs(cfg.reasoning_data, cfg.domain_data)
        if self.store.has_config() and all(getattr(cfg, r) for r in ROLES):
            specs = {r: getattr(cfg, r) for r in ROLES}
            self.models.set_specs(specs)
            self.demo_preset = DemoPreset.for_models(specs)  # a restored demo: its preset still applies
            if self.demo_preset.active:
                self.settings.set_demo_values(True)
        elif self._demo_on_first_start:
            self.use_demo()
        if not self.output.values()["out"]:
            specs = self.models.specs()
            self.output.next_suggestion(specs["reasoning"], specs["domain"])

    def plan_text(self) -> str:
        """What Merge will do, in words (shown on the Save screen)."""
        cfg = self.build_config()
        problems = self.models.problems()
        lines = []
        for role in ROLES:
            lines.append(f"<b>{role.capitalize()} model:</b> {getattr(cfg, role) or '—'}")
        if cfg.needs_scores:
            lines.append(
                f"<b>Data:</b> {data_title(cfg.reasoning_data)} for reasoning, "
                f"{data_title(cfg.domain_data)} for the domain; "
                f"{cfg.samples} samples of up to {cfg.max_length} tokens each"
            )
        lines.append("<b>" + describe_value("method", cfg.method).replace(": ", ":</b> ", 1))
        if cfg.needs_scores:
            shown = {n: cfg.settings()[n].shown(getattr(cfg, n)) for n in ("reasoning_ratio", "domain_ratio")}
            lines.append(
                f"<b>Shares:</b> {shown['reasoning_ratio']:.2f} % reasoning, {shown['domain_ratio']:.2f} % "
                f"domain; strengths {cfg.reasoning_scale:g} and {cfg.domain_scale:g}"
            )
        if problems:
            lines.append("<span style='color:#a1122b'>⚠ " + " ".join(problems) + "</span>")
        return "<br>".join(lines)

    def use_demo(self) -> None:
        """The built-in demo trio and presets: every screen works in about a minute on a CPU."""
        try:
            trio = demo.ensure_demo()
        except Exception as exc:  # noqa: BLE001
            log.exception("building the demo failed")
            self.errors.show_error(exc, self.runner.last_traceback)
            return
        preset = demo.demo_preset()  # the trained demo's own data and benchmarked setting (engine decides)
        defaults = MergeConfig()
        specs = {r: str(p) for r, p in trio.items()}
        self.models.set_specs(specs)
        self.demo_preset = DemoPreset(specs, preset)  # after set_specs: its intermediate (mixed) trios must not drop it
        self.data.set_specs(
            preset.get("reasoning_data", defaults.reasoning_data), preset.get("domain_data", defaults.domain_data)
        )
        self.settings.apply(preset)
        self.settings.set_demo_values(bool(preset))
        self.status_text.setText("Demo models selected: press Merge to see every screen.")

    def on_models_changed(self) -> None:
        self.settings.set_base_info(self.models.infos.get("base"))
        self.update_tokenizer_source()
        self.leave_demo_preset()

    def leave_demo_preset(self) -> None:
        """Once a user picks their own models, the demo's tuned setting must not carry over to them.

        Settings and data the user has not changed since the demo go back to the recommended defaults
        (the demo's shares suit a 0.85 M-parameter model, not a 7 B one); anything they changed stays.
        """
        if not self.demo_preset.left_by(self.models.specs()):
            return
        data = self.data.specs()
        back = self.demo_preset.back_to_defaults({**self.settings.values(), **data})
        self.demo_preset = DemoPreset()
        self.settings.set_demo_values(False)
        self.settings.apply(back)
        self.data.set_specs(*(back.get(k, data[k]) for k in ("reasoning_data", "domain_data")))
        self.status_text.setText("Your own models: the settings the demo used are back to the recommended defaults.")

    def update_tokenizer_source(self) -> None:
        self.data.set_tokenizer_source(self.models.readable_spec(self.output.values()["tokenizer_source"]))
        if self.current_page() is self.data:
            self.data.refresh_previews()
