"""Results ▸ Run summary: the key facts of report.json in words."""

from __future__ import annotations

from typing import Any

from reasonany_gui.engine.io.writer import human_bytes
from reasonany_gui.engine.methods.registry import TITLES
from reasonany_gui.engine.settings.config import MergeConfig

from ..texts import LABELS, human_seconds


def summary_html(report: dict[str, Any]) -> str:
    """The key facts of report.json in words."""
    cfg = report.get("config", {})
    rows = [("Method", TITLES.get(report.get("method", ""), report.get("method", "")))]
    for role, m in (report.get("models") or {}).items():
        rows.append(
            (
                f"{role.capitalize()} model",
                f"{m.get('spec')} ({m.get('architecture')}, {m.get('dtype')}, {human_bytes(m.get('size_bytes'))})",
            )
        )
    for role, d in (report.get("data") or {}).items():
        rows.append(
            (f"{role.capitalize()} data", f"{d.get('spec')}: {d.get('used')} samples, {d.get('tokens')} tokens")
        )
    for name in (
        "reasoning_ratio",
        "domain_ratio",
        "reasoning_scale",
        "domain_scale",
        "score",
        "scope",
        "samples",
        "max_length",
        "intersect",
    ):
        if name in cfg:
            v = cfg[name]
            meta = MergeConfig.settings()[name]
            v = f"{meta.shown(v):.2f} %" if meta.percent and isinstance(v, (int, float)) else v
            rows.append((LABELS.get(name, name), str(v)))
    t = report.get("timings_seconds") or {}
    if "total" in t:
        rows.append(("Time", human_seconds(t["total"])))
    rows.append(("Created", str(report.get("created", ""))))
    body = "".join(f"<tr><td style='color:#667085;padding-right:16px'>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table cellspacing='4'>{body}</table>"
