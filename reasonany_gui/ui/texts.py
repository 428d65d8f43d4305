"""The words the app shows for each setting: one label and one plain-language tooltip per field, and the words
for each choice.

Why in one place: the settings form, the error dialogs ("Retry with these settings") and the run
summary all name settings the same way, in words a domain expert understands. Labels and tooltips are written
on the MergeConfig fields themselves (settings.fields.Setting, shared with the CLI's help), and so are the words
for each choice (settings/choices.py; the method titles come from the method registry).
"""

from __future__ import annotations

from collections.abc import Mapping

from reasonany_gui.engine.io.writer import human_bytes  # noqa: F401 - the one byte formatter, for the screens
from reasonany_gui.engine.methods.registry import REGISTRY
from reasonany_gui.engine.settings.choices import ROLE_TITLES  # noqa: F401 - the models' names, for the screens
from reasonany_gui.engine.settings.config import MergeConfig

#: label and tooltip of every setting, from its Setting on MergeConfig (the one place they are written)
LABELS: dict[str, str] = {name: meta.label for name, meta in MergeConfig.settings().items()}
TOOLTIPS: dict[str, str] = {name: meta.tooltip for name, meta in MergeConfig.settings().items()}

#: the "strength follows share" link: its label and its one-sentence explanation
FOLLOW_LABEL = "Strength follows share (1 ÷ share)"
FOLLOW_HELP = (
    "A smaller share moves fewer weights, so each must be applied more strongly for the skill to "
    "survive; strength = 1 ÷ share keeps the expert's total change about the same (at most 10)."
)
#: shown next to the shares and strengths while the built-in demo's own setting is in use
DEMO_VALUES_NOTE = (
    "These shares and strengths are the <b>demo's own setting</b>, tuned for its tiny "
    "(0.85 M-parameter) models. Your own models start from the recommended 50 % and strength 2; "
    '"Find a good setting" checks them on your own models.'
)

#: the words for each choice of a setting with choices, from its Setting (engine/settings/choices.py; the
#: method's live from the method registry); a choice missing there is shown as it is written
CHOICE_TITLES: dict[str, Mapping[str, str]] = {
    name: meta.titles() for name, meta in MergeConfig.settings().items() if meta.choices is not None
}


def describe_value(field: str, value: object) -> str:
    """A setting and its value in words, e.g. 'Max tokens per sample: 256'."""
    label = LABELS.get(field, field.replace("_", " "))
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif field in CHOICE_TITLES:
        text = CHOICE_TITLES[field].get(str(value), str(value))
    elif field == "device":
        text = {"cpu": "the CPU (slow, but no GPU memory needed)", "auto": "automatic"}.get(str(value), str(value))
    elif field == "max_length":
        text = f"{value} tokens"
    else:
        text = str(value)
    return f"{label}: {text}"


def human_count(n: int | float | None) -> str:
    if n is None:
        return "unknown"
    n = float(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}".replace(".00", "")
    return f"{n:.0f}"


def human_seconds(s: float | None, rough: bool = False) -> str:
    """'42 s', '3 min 05 s', '2 h 10 min'; rough=True says 'under a minute' and rounds to minutes."""
    if s is None or s != s:
        return "estimating..."
    s = max(0.0, float(s))
    if rough:
        if s < 60:
            return "under a minute"
        if s < 3600:
            return f"about {round(s / 60):.0f} min"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s // 60:.0f} min {s % 60:02.0f} s"
    return f"{s // 3600:.0f} h {(s % 3600) // 60:02.0f} min"


def human_range(low: float, high: float) -> str:
    """A time estimate as a range: '10–30 s', '2–6 min', '1.5–3.0 h'; 'under a minute' when all of it is."""
    low, high = max(0.0, float(low)), max(0.0, float(high))
    if high < 60:
        return (
            f"{max(1, round(low)):.0f}–{max(1, round(high)):.0f} s"
            if round(high) > round(low)
            else f"about {round(high):.0f} s"
        )
    if high < 3600:
        a, b = max(1, round(low / 60)), max(1, round(high / 60))
        return f"about {b} min" if a == b else f"{a}–{b} min"
    hours_low, hours_high = low / 3600, high / 3600
    if f"{hours_low:.1f}" == f"{hours_high:.1f}":
        return f"about {hours_high:.1f} h"
    return f"{hours_low:.1f}–{hours_high:.1f} h"


def setting_words(setting: Mapping[str, object]) -> str:
    """A merge setting in the app's words, as its controls name it: 'ReasonAny · shares 20 % / 20 % · strengths
    2.24 / 2.24 · each weight matrix'. Only what the method reads is named (Task Arithmetic has no shares).

    Why not the engine's candidate labels ('p 0.2/0.2, λ 2.24/2.24'): the screens say share and strength; a
    search that spoke of p and λ read as another setting (issue 23)."""
    method = str(setting.get("method", ""))
    record = REGISTRY.get(method)
    parts = [record.title if record is not None else method]
    uses = record.uses if record is not None else ()
    if "reasoning_ratio" in setting and (record is None or record.needs_scores or "reasoning_ratio" in uses):
        parts.append(f"shares {_percent(setting['reasoning_ratio'])} / {_percent(setting.get('domain_ratio'))}")
    if "reasoning_scale" in setting:
        parts.append(f"strengths {_number(setting['reasoning_scale'])} / {_number(setting.get('domain_scale'))}")
    if record is not None and record.needs_scores and setting.get("scope"):
        parts.append(CHOICE_TITLES["scope"].get(str(setting["scope"]), str(setting["scope"])).lower())
    return " · ".join(parts)


def _percent(value: object) -> str:
    return f"{100 * float(str(value)):.3g} %"


def _number(value: object) -> str:
    return f"{float(str(value)):.3g}"


#: why a kept share can be over 100 % (shown wherever one is)
OVER_100_NOTE = (
    "Over 100 % means the merge did better on that skill's held-out text than the expert itself (the other "
    "expert's changes can help, and on a few rows the numbers are noisy); it counts as fully kept."
)
#: what the search's kept shares are (issue 21): estimates from a few rows, to be confirmed by Evaluate
ESTIMATE_NOTE = (
    "The kept shares are estimates from held-out rows of your calibration data (and your checks file, if you "
    "gave one): check the pick with Evaluate."
)
#: why the search's kept shares and Evaluate's can differ for the same setting
MEASURES_DIFFER_NOTE = (
    "The search measures on held-out rows of your calibration data (and your checks file); Evaluate measures on "
    "other held-out texts, so the two can give the same setting different shares."
)
