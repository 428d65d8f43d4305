"""report.html: the run's report as one self-contained page (inline SVG heatmaps, no scripts, no network).

Why a module of its own: the page is drawn from report.json alone (so an opened run and a re-rendered report look
the same); report.py decides when it is written, this module how it looks."""

from __future__ import annotations

import html
import re
from typing import Any

from ..core import layout
from ..core.units import pct
from ..methods.registry import FULL_TITLES
from .card import chosen_by_hand, setting_rows


def _svg_heatmap(grid: list[list[float]], modules: list[str], title: str, color: str) -> str:
    """One heatmap as the app draws it: layers across (x), module types down (y), with a colour scale.

    grid is [layers][modules]. The title sits in the HTML caption (it wraps there instead of being cut off at
    the SVG's edge); the scale on the right maps the colour to a share of the cell's weights."""
    layers = len(grid)
    cell_w = max(8, min(26, 760 // max(layers, 1)))
    cell_h, left, top, scale_w = 20, 44, 6, 70
    w = left + cell_w * layers + 16 + scale_w
    h = top + cell_h * len(modules) + 30
    vmax = max([v for row in grid for v in row if v == v] + [1e-12])
    label = html.escape(title)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{label}">']
    for j, m in enumerate(modules):
        parts.append(
            f'<text x="{left - 4}" y="{top + j * cell_h + cell_h * 0.68}" font-size="10" '
            f'text-anchor="end">{html.escape(m)}</text>'
        )
    step = max(1, -(-layers // 16))  # at most ~16 layer numbers under the map
    for i in range(0, layers, step):
        parts.append(
            f'<text x="{left + i * cell_w + cell_w / 2}" y="{top + cell_h * len(modules) + 12}" '
            f'font-size="10" text-anchor="middle">{i}</text>'
        )
    parts.append(
        f'<text x="{left + cell_w * layers / 2}" y="{h - 2}" font-size="10" text-anchor="middle" '
        f'fill="#667085">layer</text>'
    )
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            op = 0 if v != v else 0.08 + 0.92 * v / vmax
            tip = "n/a" if v != v else f"{v:.3%}"
            parts.append(
                f'<rect x="{left + i * cell_w}" y="{top + j * cell_h}" width="{cell_w - 1}" '
                f'height="{cell_h - 1}" fill="{color}" fill-opacity="{op:.3f}">'
                f"<title>layer {i} {html.escape(modules[j])}: {tip}</title></rect>"
            )
    # colour scale: from 0 (white) at the bottom to the largest share at the top
    sx, sh = left + cell_w * layers + 16, cell_h * len(modules)
    gid = "g" + re.sub(r"\W", "", title)
    parts.append(
        f'<defs><linearGradient id="{gid}" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="{color}" '
        f'stop-opacity="0.08"/><stop offset="1" stop-color="{color}" stop-opacity="1"/></linearGradient></defs>'
    )
    parts.append(
        f'<rect x="{sx}" y="{top}" width="10" height="{sh}" fill="url(#{gid})" stroke="#98a2b3" stroke-width="0.5"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        y = top + sh * (1 - frac)
        parts.append(f'<text x="{sx + 14}" y="{y + 3.5}" font-size="10">{frac * vmax:.1%}</text>')
    parts.append("</svg>")
    return (
        f"<figure><figcaption>{label} — share of each cell's weights (darkest: {vmax:.2%})</figcaption>"
        + "".join(parts)
        + "</figure>"
    )


def render_html(report: dict[str, Any]) -> str:
    cfg = report["config"]
    t = report.get("totals") or {}
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(label)} <span class='key'>{esc(key)}</span></td><td>{esc(text)}</td></tr>"
        for label, key, text in setting_rows(cfg)
    )
    models = "".join(
        f"<tr><td>{r}</td><td><code>{esc(m['spec'])}</code></td><td>{m['architecture']}</td>"
        f"<td>{m['num_params']:,}</td><td>{m['dtype']}</td></tr>"
        for r, m in report["models"].items()
    )
    maps = ""
    if report.get("per_tensor"):
        names = list(report["per_tensor"])
        cells = layout.cells(names)
        layers = max(layout.num_layers(names), 0)
        for key, color, title in (
            ("reasoning", "#2f6fdf", "Reasoning mask"),
            ("domain", "#e0730f", "Domain mask"),
            ("conflicts", "#c0392b", "Conflicts (excluded)"),
        ):
            grid = [[float("nan")] * len(layout.MODULES) for _ in range(layers)]
            for (layer, module), members in cells.items():
                numel = sum(report["per_tensor"][n]["numel"] for n in members)
                grid[layer][layout.MODULES.index(module)] = sum(report["per_tensor"][n][key] for n in members) / numel
            maps += _svg_heatmap(grid, list(layout.MODULES), title, color)
    sel = max(t.get("selectable", 0), 1)
    summary = (
        (
            f"<p>Reasoning elements merged: <b>{t['reasoning']:,}</b> ({t['reasoning'] / sel:.2%}); domain: "
            f"<b>{t['domain']:,}</b> ({t['domain'] / sel:.2%}); conflicts excluded: <b>{t['conflicts']:,}</b> "
            f"({t['conflicts'] / sel:.2%}) of {t['selectable']:,} selectable elements.</p>"
        )
        if t
        else ""
    )
    # Task Arithmetic selects nothing: no totals, no maps, and an empty heading would read as a failed selection
    selection = f"<h2>Selection</h2>{summary}<div>{maps}</div>" if t or maps else ""
    timings = "".join(f"<tr><td>{esc(k)}</td><td>{v:.1f} s</td></tr>" for k, v in report["timings_seconds"].items())
    evaluation = _eval_html(report.get("evaluation")) + _tune_html(report.get("tune"), cfg)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ReasonAny run report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:13px}}h1{{font-size:22px}}
h2{{font-size:17px;margin-top:1.6em}}
svg{{vertical-align:top}}figure{{margin:0 0 18px 0}}figcaption{{font-weight:bold;font-size:13px;margin-bottom:4px}}
code{{font-size:12px}}.key{{color:#98a2b3;font-size:11px}}</style></head><body>
<h1>ReasonAny run report</h1>
<p>{esc(FULL_TITLES.get(report["method"], report["method"]))}, {esc(report["created"])}.</p>
<h2>Models</h2><table><tr><th>role</th><th>model</th><th>architecture</th><th>parameters</th><th>dtype</th></tr>{models}</table>
{selection}
{evaluation}
<h2>Settings</h2><table>{rows}</table>
<h2>Timings</h2><table>{timings}</table>
<p>Reproduce with <code>reasonany merge reasonany/run.yaml --out NEW_FOLDER</code>.
Machine-readable details: report.json.</p>
</body></html>"""


def _eval_html(ev: dict[str, Any] | None) -> str:
    if not ev:
        return ""
    esc = html.escape
    out = "<h2>Post-merge check</h2>"
    red = ' style="color:#b03a2e"'
    out += "".join(f"<p{red if line.startswith('Warning') else ''}>{esc(line)}</p>" for line in ev.get("verdict") or [])
    ppl = ev.get("perplexity") or {}
    if ppl:
        order = {"merged": 0, "base": 1, "reasoning": 2, "domain": 3}
        roles = sorted({r for v in ppl.values() for r in v}, key=lambda r: (order.get(r, 9), r))
        out += (
            "<p>Perplexity on held-out text of each data set: <b>lower is better</b>. The merge kept a skill when "
            "its number on that skill's text is close to the expert's.</p>"
        )
        out += (
            "<table><tr><th>data (perplexity, lower is better)</th>" + "".join(f"<th>{r}</th>" for r in roles) + "</tr>"
        )
        for data, vals in ppl.items():
            out += (
                f"<tr><td>{esc(data)}</td>"
                + "".join(f"<td>{vals.get(r, float('nan')):.2f}</td>" for r in roles)
                + "</tr>"
            )
        out += "</table>"
    for g in ev.get("generations") or []:
        out += f"<p><b>Prompt:</b> {esc(g['prompt'])}</p><table>"
        out += "".join(f"<tr><td>{esc(r)}</td><td><pre>{esc(t)}</pre></td></tr>" for r, t in g["outputs"].items())
        out += "</table>"
    return out


def _tune_html(tune: dict[str, Any] | None, config: dict[str, Any] | None = None) -> str:
    if not tune:
        return ""
    esc = html.escape
    by_hand = chosen_by_hand(tune, config or {})
    bold = ' style="font-weight:bold"'
    rows = "".join(
        f"<tr{bold if c['index'] == tune['recommended'] else ''}><td>{esc(c['label'])}</td>"
        f"<td>{pct(c['kept'].get('reasoning'))}</td><td>{pct(c['kept'].get('domain'))}</td></tr>"
        for c in tune["candidates"]
    )
    note = f"<p><b>{esc(by_hand)}</b></p>" if by_hand else ""
    return (
        f"<h2>How the setting was chosen</h2><p>{esc(tune['summary'])}</p>{note}<table><tr><th>candidate (bold: "
        "recommended)</th><th>reasoning kept</th><th>domain kept</th></tr>" + rows + "</table>"
    )
