"""Tables and the plot of the quality benchmark (plain markdown and a hand-written SVG: no plotting library)."""

from __future__ import annotations

import html

from reasonany_gui.engine.methods.registry import TITLES  # the plot's labels: the registry's short titles

COLORS = {
    "reasonany": "#d62728",
    "led": "#9467bd",
    "task_arithmetic": "#1f77b4",
    "ties": "#2ca02c",
    "dare": "#ff7f0e",
    "linear": "#7f7f7f",
}
#: what a row must match to be "the app's default" / "the demo's preset" (the fields the grid varies)
SETTING_KEYS = (
    "method",
    "score",
    "response_only",
    "scope",
    "intersect",
    "select_embeddings",
    "reasoning_ratio",
    "domain_ratio",
    "reasoning_scale",
    "domain_scale",
)


def app_settings() -> dict[str, dict]:
    """The app's default setting and the demo's preset, read from the engine (never copied here by hand)."""
    from reasonany_gui.engine.data import demo
    from reasonany_gui.engine.settings.config import MergeConfig

    default = MergeConfig()
    preset = default.replace(**demo.demo_preset())
    return {
        "The app's default setting (for real models)": {k: getattr(default, k) for k in SETTING_KEYS},
        "The demo's preset (this benchmark's best ReasonAny row)": {k: getattr(preset, k) for k in SETTING_KEYS},
    }


def retention(row: dict, refs: dict) -> dict:
    """Fraction of each expert's own score that a merge keeps, and their mean."""
    kr = row["reasoning"] / refs["reasoning"]["reasoning"] if refs["reasoning"]["reasoning"] else 0.0
    kd = row["domain"] / refs["domain"]["domain"] if refs["domain"]["domain"] else 0.0
    return {"keep_reasoning": round(kr, 4), "keep_domain": round(kd, 4), "keep_mean": round((kr + kd) / 2, 4)}


def label(row: dict) -> str:
    m = row["method"]
    if m == "reasonany":
        return (
            f"reasonany {row['score']}{' reply-only' if row.get('response_only') else ''} {row['scope']} "
            f"{'∩base' if row['intersect'] else 'no-∩'}"
            f"{' +emb' if row.get('select_embeddings') else ''} p_r={row['reasoning_ratio']} p_d={row['domain_ratio']}"
            f" λ={row['reasoning_scale']}/{row['domain_scale']}"
        )
    if m == "led":
        return (
            f"led {row['score']}{' reply-only' if row.get('response_only') else ''} {row['scope']} "
            f"p={row['reasoning_ratio']}"
        )
    if m in ("ties", "dare"):
        return f"{m} density={row['reasoning_ratio']} λ={row['reasoning_scale']}/{row['domain_scale']}"
    return f"{m} λ={row['reasoning_scale']}/{row['domain_scale']}"


def matches(row: dict, setting: dict) -> bool:
    return bool(setting) and all(row.get(k) == v for k, v in setting.items())


def best_per_method(results: list[dict]) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for r in results:
        if r["method"] not in best or r["keep_mean"] > best[r["method"]]["keep_mean"]:
            best[r["method"]] = r
    return best


def _row(r: dict, name: str | None = None) -> str:
    return (
        f"| {name or label(r)} | {r['reasoning']:.2f} | {r['domain']:.2f} | {r['keep_reasoning']:.0%} | "
        f"{r['keep_domain']:.0%} | {r['keep_mean']:.0%} | {r.get('benign_helped', 0):.0%} |"
    )


HEAD = (
    "| merge | reasoning | domain | keeps reasoning | keeps domain | mean kept | benign helped |\n"
    "|---|---|---|---|---|---|---|"
)


def markdown(out: dict) -> str:
    refs, res = out["references"], out["results"]
    tr = out.get("train", {})
    lines = [
        "# Quality benchmark results",
        "",
        f"Command: `{out['command']}`",
        "",
        f"Trio: {out['trio']} · torch {out['torch']} · total {out['seconds']} s · "
        f"identification (s per score type): {out['identification_seconds']}",
        "",
        "## References (held-out items, exact match)",
        "",
        "| model | reasoning | domain (refusals) | benign helped | benign refused | ‖τ‖/‖θ_b‖ |",
        "|---|---|---|---|---|---|",
    ]
    for role in ("base", "reasoning", "domain"):
        r = refs[role]
        tau = tr.get(role, {}).get("tau_over_theta_b", "")
        lines.append(
            f"| {role} | {r['reasoning']:.2f} | {r['domain']:.2f} | {r['benign_helped']:.0%} | "
            f"{r['benign_refused']:.0%} | {tau} |"
        )
    lines += ["", "## Best setting per method (by the mean of the two kept fractions)", "", HEAD]
    best = best_per_method(res)
    for m in sorted(best, key=lambda k: -best[k]["keep_mean"]):
        lines.append(_row(best[m]))
    for title, setting in app_settings().items():
        rows = [r for r in res if matches(r, setting)]
        if rows:
            lines += ["", f"## {title}", "", HEAD, _row(rows[0])]
    lines += ["", "## ReasonAny variants (best ratio per variant)", "", HEAD]
    variants: dict[tuple, dict] = {}
    for r in res:
        if r["method"] != "reasonany":
            continue
        key = (r["score"], bool(r.get("response_only")), r["scope"], r["intersect"], bool(r.get("select_embeddings")))
        if key not in variants or r["keep_mean"] > variants[key]["keep_mean"]:
            variants[key] = r
    for key in sorted(variants, key=lambda k: -variants[k]["keep_mean"]):
        lines.append(_row(variants[key]))
    lines += ["", "## Every merge", "", HEAD]
    lines += [_row(r) for r in sorted(res, key=lambda r: (r["method"], -r["keep_mean"]))]
    return "\n".join(lines) + "\n"


def pareto_svg(out: dict, width: int = 640, height: int = 520, title: str = "") -> str:
    """Reasoning score (x) vs domain score (y): every merge a dot, each method's best a ringed dot."""
    refs, res = out["references"], out["results"]
    left, right, top, bottom = 60, 170, 50 if title else 30, 50
    pw, ph = width - left - right, height - top - bottom

    def xy(r: float, d: float) -> tuple[float, float]:
        return left + r * pw, top + (1 - d) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        parts.append(
            f'<text x="{left + pw / 2}" y="{top - 26}" text-anchor="middle" font-weight="bold">'
            f"{html.escape(title)}</text>"
        )
    for i in range(6):
        v = i / 5
        x, _ = xy(v, 0)
        _, y = xy(0, v)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>')
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{v:.1f}</text>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">reasoning score (exact final '
        "answers, held-out 2- and 3-hop questions)</text>"
    )
    parts.append(
        f'<text x="16" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {top + ph / 2})">'
        "domain score (exact refusals, held-out requests)</text>"
    )
    best = best_per_method(res)
    for r in res:
        x, y = xy(r["reasoning"], r["domain"])
        c = COLORS.get(r["method"], "#000")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{c}" fill-opacity="0.35"><title>'
            f"{html.escape(label(r))}</title></circle>"
        )
    for m, r in best.items():
        x, y = xy(r["reasoning"], r["domain"])
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{COLORS.get(m, "#000")}" stroke="black">'
            f"<title>{html.escape(label(r))}</title></circle>"
        )
    for role, mark in (("base", "#000"), ("reasoning", "#444"), ("domain", "#444")):
        x, y = xy(refs[role]["reasoning"], refs[role]["domain"])
        parts.append(
            f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{mark}"/>'
            f'<text x="{x + 8:.1f}" y="{y - 8:.1f}">{role}</text>'
        )
    ly = top + 10
    for m in sorted(best, key=lambda k: -best[k]["keep_mean"]):
        parts.append(
            f'<circle cx="{left + pw + 20}" cy="{ly}" r="6" fill="{COLORS.get(m, "#000")}" stroke="black"/>'
            f'<text x="{left + pw + 32}" y="{ly + 4}">{TITLES.get(m, m)}</text>'
        )
        ly += 20
    parts.append(f'<text x="{left + pw + 14}" y="{ly + 10}" fill="#555">ringed: best per method</text>')
    parts.append(f'<text x="{left + pw + 14}" y="{ly + 26}" fill="#555">faint: every merge</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":  # regenerate results.md and pareto.svg from a results.json (no merging)
    import argparse
    import json
    from pathlib import Path

    ap = argparse.ArgumentParser(description="Rewrite results.md and pareto.svg of a run.py output folder.")
    ap.add_argument("folder", type=Path)
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    data = json.loads((a.folder / "results.json").read_text(encoding="utf-8"))
    (a.folder / "results.md").write_text(markdown(data), encoding="utf-8")
    (a.folder / "pareto.svg").write_text(pareto_svg(data, title=a.title), encoding="utf-8")
