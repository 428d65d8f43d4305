"""The demo's preset while the demo trio is selected, and what to undo when the user leaves it.

Why its own module: the policy ("settings the user has not touched since the demo go back to the
recommended defaults; anything they changed stays") is a rule about values, not about widgets, so it is
kept apart from the window that applies it and can be read and tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonany_gui.engine.data import demo
from reasonany_gui.engine.settings.config import ROLES, MergeConfig


@dataclass
class DemoPreset:
    """The demo's model specs and the settings (and data) it brought; empty when no demo is selected."""

    specs: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_models(cls, specs: dict[str, str]) -> DemoPreset:
        """The preset that applies to these models: the demo's own when they are the demo trio, else none."""
        specs = {r: str(specs[r]) for r in ROLES}
        return cls(specs, demo.demo_preset()) if demo.is_demo_trio(specs) else cls()

    @property
    def active(self) -> bool:
        return bool(self.values)

    def left_by(self, specs: dict[str, str]) -> bool:
        """True when the user picked other models than the demo's while its preset applied."""
        return self.active and specs != self.specs

    def back_to_defaults(self, current: dict[str, Any]) -> dict[str, Any]:
        """The settings and data still at the demo's values, with the recommended defaults to put back.

        Why: the demo's shares suit a 0.85 M-parameter model, not a 7 B one; what the user changed stays."""
        defaults = MergeConfig()
        return {k: getattr(defaults, k) for k, v in self.values.items() if current.get(k) == v}
