"""Remembers the user's choices between sessions: the last settings, recent models/data/runs, geometry.

Why an INI file under `paths.config_dir()`: one readable file per user on every OS (no registry on
Windows), and REASONANY_HOME redirects it for tests. QSettings returns INI values as strings, so every
read goes through `value(key, type=...)` here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import QByteArray, QSettings

from reasonany_gui.engine.core import paths
from reasonany_gui.engine.settings.config import MergeConfig

#: MergeConfig fields the app remembers (paths to data and models included; `out` is chosen per run)
REMEMBERED = tuple(f.name for f in dataclasses.fields(MergeConfig) if f.name not in ("out", "extra"))
MAX_RECENT = 10


@dataclass(frozen=True)
class TunePreferences:
    """The search options the user last chose: "tune automatically" on Merge, the budget, the checks file."""

    auto: bool
    budget: int
    checks: str = ""


def settings_path() -> Path:
    return paths.config_dir() / "reasonany-gui.ini"


class SettingsStore:
    """Typed access to the app's QSettings (INI)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or settings_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    # ---------------------------------------------------------------- merge settings
    def has_config(self) -> bool:
        return self.qs.contains("config/base")

    def load_config(self) -> MergeConfig:
        """The last used settings; the MergeConfig defaults for anything not stored (or stored badly)."""
        default = MergeConfig()
        values: dict[str, Any] = {}
        for name in REMEMBERED:
            key = f"config/{name}"
            if not self.qs.contains(key):
                continue
            current = getattr(default, name)
            try:
                if isinstance(current, bool):
                    values[name] = bool(self.qs.value(key, current, type=bool))
                elif isinstance(current, int):
                    values[name] = int(cast(int, self.qs.value(key, current, type=int)))
                elif isinstance(current, float):
                    values[name] = float(cast(float, self.qs.value(key, current, type=float)))
                else:
                    values[name] = str(self.qs.value(key, current, type=str))
            except (TypeError, ValueError):
                continue  # a hand-edited INI with a bad value falls back to the default
        return default.replace(**values)

    def save_config(self, config: MergeConfig) -> None:
        for name in REMEMBERED:
            self.qs.setValue(f"config/{name}", getattr(config, name))
        self.qs.sync()

    # ---------------------------------------------------------------- recent lists
    def recent(self, kind: str) -> list[str]:
        value = cast("list[object] | str", self.qs.value(f"recent/{kind}", [], type=list))
        if isinstance(value, str):  # a single-entry list comes back as a plain string from INI
            value = [value]
        return [str(v) for v in value if str(v).strip()]

    def add_recent(self, kind: str, item: str) -> None:
        item = str(item).strip()
        if not item:
            return
        items = [item] + [v for v in self.recent(kind) if v != item]
        self.qs.setValue(f"recent/{kind}", items[:MAX_RECENT])
        self.qs.sync()

    # ---------------------------------------------------------------- the search ("Find a good setting")
    def tune_preferences(self, default_budget: int) -> TunePreferences:
        """Whether Merge searches the setting first, and the search's options, as last chosen."""
        try:
            budget = int(cast(int, self.qs.value("tune/budget", default_budget, type=int)))
        except (TypeError, ValueError):  # a hand-edited INI
            budget = default_budget
        return TunePreferences(
            auto=bool(self.qs.value("tune/auto", False, type=bool)),
            budget=budget,
            checks=str(self.qs.value("tune/checks", "", type=str)),
        )

    def save_tune_preferences(self, prefs: TunePreferences) -> None:
        self.qs.setValue("tune/auto", prefs.auto)
        self.qs.setValue("tune/budget", prefs.budget)
        self.qs.setValue("tune/checks", prefs.checks or "")

    # ---------------------------------------------------------------- measured speed
    def speed_factors(self) -> dict[str, float]:
        """device type -> how much slower (>1) or faster than the nominal rates the last run here was."""
        out = {}
        for kind in ("cpu", "cuda"):
            text = str(self.qs.value(f"speed/{kind}", "", type=str))
            try:
                out[kind] = float(text) if text else None
            except ValueError:
                out[kind] = None
        return {k: v for k, v in out.items() if v}

    def set_speed_factor(self, device_type: str, factor: float) -> None:
        self.qs.setValue(f"speed/{device_type}", f"{float(factor):.4g}")

    # ---------------------------------------------------------------- window

    def geometry(self) -> QByteArray | None:
        value = self.qs.value("window/geometry", None, type=QByteArray)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_geometry(self, geometry: QByteArray) -> None:
        self.qs.setValue("window/geometry", geometry)

    def sync(self) -> None:
        self.qs.sync()
