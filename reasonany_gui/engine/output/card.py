"""The model card (README.md) of a merged model: what it is made of, how, and how to reproduce it.

Why a module of its own: the card is shared on the Hub, so it names models the public way (repo ids, never local
paths) and leaves out private settings; report.py decides when it is written, this module what it says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..core.units import pct
from ..io.resolve import is_repo_id
from ..methods.registry import FULL_TITLES
from ..settings.config import ROLES, settings

TOOL_URL = "https://pypi.org/project/reasonany-gui/"
PAPER_URL = "https://arxiv.org/abs/2601.05560"
_HF_CACHE_DIR = re.compile(r"(?:^|[\\/])models--([^\\/]+?)--([^\\/]+)(?:[\\/]|$)")


def hub_repo_id(spec: str, path: str | None = None) -> str | None:
    """The Hugging Face repo id a model came from, or None for a model that is only a local folder.

    A repo id typed by the user (`org/name`, not an existing folder) or a folder inside the HF cache
    (`…/models--org--name/snapshots/…`) names a Hub model; any other folder is private to this machine and must
    not appear in a card's metadata (the Hub rejects it, and it shows the user's folder names)."""
    for text in (str(spec or ""), str(path or "")):
        m = _HF_CACHE_DIR.search(text)
        if m and is_repo_id(f"{m.group(1)}/{m.group(2)}"):
            return f"{m.group(1)}/{m.group(2)}"
    text = str(spec or "").strip()
    if is_repo_id(text) and not Path(text).expanduser().exists():
        return text
    return None


def public_name(spec: str, path: str | None = None) -> str:
    """How a model or data file is named in shared documents: its repo id, a built-in set, or the folder's or
    file's own name (never the full local path)."""
    repo = hub_repo_id(spec, path)
    if repo:
        return repo
    text = str(spec or "")
    if text.startswith("builtin:"):
        return text
    name = Path(text.rstrip("/\\")).name or text
    return f"local: {name}"


#: settings a shared document leaves out: the models' and the output's local paths, and free-form notes
_PRIVATE_SETTINGS = (*ROLES, "out", "extra")


def setting_rows(cfg: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, key, value in words) for each setting worth showing; data paths shortened to their names.

    The label and the percent conversion are the field's own (config.Setting.label, Setting.shown), the same as
    the GUI's, so a new setting is named in the report as it is on screen; a key this version does not know
    (a report of an older version) keeps its key in words."""
    known = settings()
    rows = []
    for k, v in cfg.items():
        if k in _PRIVATE_SETTINGS:
            continue
        meta = known.get(k)
        if meta is not None and meta.percent and isinstance(v, (int, float)) and not isinstance(v, bool):
            text = f"{meta.shown(v):.2f} %"
        elif meta is not None and meta.gui == "data":
            text = public_name(str(v))
        elif isinstance(v, bool):
            text = "on" if v else "off"
        else:
            text = str(v)
        rows.append((meta.label if meta is not None else k.replace("_", " ").capitalize(), k, text))
    return rows


def model_card(report: dict[str, Any]) -> str:
    cfg = report["config"]
    models = report["models"]
    repos = [hub_repo_id(models[r].get("spec"), models[r].get("path")) for r in ("base", "reasoning", "domain")]
    front = ["---", "library_name: transformers", "tags:", "- merge", "- reasonany", "- reasonany-gui"]
    hub = list(dict.fromkeys(r for r in repos if r))
    if hub:  # only Hub models: a local folder is meaningless (and private) on the Hub
        front += ["base_model:"] + [f"- {r}" for r in hub] + ["base_model_relation: merge"]
    front += ["---", ""]
    t = report.get("totals") or {}
    lines = [
        f"# Merged model: {Path(str(cfg.get('out') or 'merged')).name}",
        "",
        f"Made with [ReasonAny GUI]({TOOL_URL}) by **{FULL_TITLES.get(report['method'], report['method'])}**"
        f" ([paper]({PAPER_URL})), a training-free merge that adds the reasoning model's skill to the domain model.",
        "",
        "| role | model | parameters |",
        "| --- | --- | --- |",
    ]
    for r in ("base", "reasoning", "domain"):
        lines.append(
            f"| {r} | `{public_name(models[r].get('spec'), models[r].get('path'))}` | {models[r]['num_params']:,} |"
        )
    lines += ["", "## Settings", "", "| setting | value |", "| --- | --- |"]
    for label, key, text in setting_rows(cfg):
        lines.append(f"| {label} (`{key}`) | `{text}` |")
    if report.get("data"):
        lines += ["", "## Calibration data", ""]
        for role, d in report["data"].items():
            lines.append(
                f"- {role}: `{public_name(d['spec'])}` — {d['used']} samples, {d['tokens']} scored tokens"
                f" ({d['truncated']} truncated)"
            )
    if t:
        sel = max(t.get("selectable", 0), 1)
        lines += [
            "",
            "## Selection",
            "",
            f"- reasoning elements merged: {t['reasoning']:,} ({100 * t['reasoning'] / sel:.2f} % of selectable)",
            f"- domain elements merged: {t['domain']:,} ({100 * t['domain'] / sel:.2f} %)",
            f"- conflicts excluded from both: {t['conflicts']:,} ({100 * t['conflicts'] / sel:.2f} %)",
        ]
    lines += tune_markdown(report.get("tune"), report.get("config"))
    lines += _eval_markdown(report.get("evaluation"))
    env = report["environment"]
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        "reasonany merge reasonany/run.yaml --out NEW_FOLDER",
        "```",
        "",
        f"Versions: reasonany-gui {env['reasonany_gui']}, torch {env['torch']}, transformers {env['transformers']}."
        " Full details: `reasonany/report.json`, `reasonany/report.html`; masks: `reasonany/masks.safetensors`.",
        "",
    ]
    return "\n".join(front + lines)


def _eval_markdown(ev: dict[str, Any] | None) -> list[str]:
    """The card's evaluation section: perplexity per data set and model (lower is better)."""
    ppl = (ev or {}).get("perplexity") or {}
    if not ppl:
        return []
    roles = [r for r in ("merged", "base", "reasoning", "domain") if any(r in v for v in ppl.values())]
    lines = [
        "",
        "## Evaluation",
        "",
        "Perplexity on held-out text of each calibration set (lower is better):",
        "",
        "| data | " + " | ".join(roles) + " |",
        "|" + " --- |" * (len(roles) + 1),
    ]
    for data, vals in ppl.items():
        cells = [f"{vals[r]:.2f}" if isinstance(vals.get(r), (int, float)) else "–" for r in roles]
        lines.append(f"| {public_name(data)} | " + " | ".join(cells) + " |")
    return lines


def chosen_by_hand(tune: dict[str, Any], config: dict[str, Any]) -> str | None:
    """Plain words when the folder's setting is not the tuner's recommendation (a point picked by the user, or a
    setting changed after the search); None when it is the recommendation."""
    best = next((c for c in tune["candidates"] if c["index"] == tune["recommended"]), None)
    if best is None or all(config.get(k) == v for k, v in best["setting"].items()):
        return None
    picked = next((c for c in tune["candidates"] if all(config.get(k) == v for k, v in c["setting"].items())), None)
    if picked is not None:
        return f"This folder holds another candidate of the search, picked by hand: {picked['label']}."
    return "This folder holds a setting changed by hand after the search; it was not measured by the tuner."


def tune_markdown(tune: dict[str, Any] | None, config: dict[str, Any] | None = None) -> list[str]:
    """The model card's "How the setting was chosen" section (empty without a tuner run)."""
    if not tune:
        return []
    by_hand = chosen_by_hand(tune, config or {})
    lines = [
        "",
        "## How the setting was chosen",
        "",
        tune["summary"] + (f" **{by_hand}**" if by_hand else ""),
        "",
        f"The tuner measured {len(tune['candidates'])} candidate merges in memory on held-out rows of the "
        "calibration data that scoring never used (kept = share of each expert's loss improvement over the base "
        "that the merge keeps on its own data; 100 % = as good as the expert).",
        "",
        "| candidate | reasoning kept | domain kept |",
        "| --- | --- | --- |",
    ]
    for c in tune["candidates"]:
        mark = " **(recommended)**" if c["index"] == tune["recommended"] else ""
        lines.append(f"| {c['label']}{mark} | {pct(c['kept'].get('reasoning'))} | {pct(c['kept'].get('domain'))} |")
    return lines
