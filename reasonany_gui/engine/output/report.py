"""What a run leaves next to the merged weights: config/tokenizer files, model card, run.yaml,
report.json, report.html and the bit-packed masks (ALGORITHM.md §4) — and reading such a folder back.

Why self-contained: the people who use the app share the folder; report.html must open anywhere with
no network (inline SVG, no scripts), and report.json must carry everything a tool needs to audit the run.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core import layout
from ..core.errors import InputError
from ..core.paths import RUN_DIR
from ..io.writer import write_text
from ..methods.registry import FULL_TITLES
from ..scoring.selection import Selection, TensorMasks
from ..settings.config import ROLES, MergeConfig, settings

if TYPE_CHECKING:
    from ..data.calibration import CalibrationSet
    from ..io.checkpoints import ModelInfo

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)
#: the methods' full titles, live from the method registry (methods.REGISTRY)
METHOD_TITLES = FULL_TITLES


# ---------------------------------------------------------------------- writing
@dataclass(frozen=True)
class RunFacts:
    """What a finished run knows about itself: everything report.json records, and nothing else.

    Why a record and not the Pipeline: the report used to read about ten attributes off the live pipeline,
    untyped, so a renamed attribute broke the report only at the end of a run. `Pipeline.run_facts` builds this
    in one place, after the timings are complete."""

    config: MergeConfig
    out_dtype: torch.dtype
    #: the folder whose config.json and tokenizer files go next to the merged weights (the tokenizer source)
    tokenizer_dir: Path
    models: dict[str, ModelInfo]
    fingerprints: dict[str, str]
    calib: dict[str, CalibrationSet] = field(default_factory=dict)
    selection: Selection | None = None
    pass_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    peak_device_bytes: dict[str, int] = field(default_factory=dict)
    backward_passes: int = 0
    environment: dict[str, Any] = field(default_factory=dict)
    #: the tuner's report section (tune.TuneResult.report_section) when the setting was searched
    tune: dict[str, Any] | None = None


def write_run_files(folder: Path, facts: RunFacts, mask_tensors: dict[str, torch.Tensor]) -> dict:
    """Everything but the weight shards, into the (temporary) output folder. Returns the report."""
    from safetensors.torch import save_file

    _copy_model_files(facts.tokenizer_dir, folder, facts.out_dtype)
    run_dir = folder / RUN_DIR
    run_dir.mkdir(exist_ok=True)
    sel = facts.selection
    if sel is not None:
        save_file(mask_tensors, str(run_dir / "masks.safetensors"), metadata=_mask_metadata())
        conflicts = {f"conflicts/{n}": torch.from_numpy(sel.masks[n].conflicts) for n in sel.names}
        save_file(conflicts, str(run_dir / "conflicts.safetensors"), metadata=_mask_metadata())
        shapes = {n: list(sel.masks[n].shape) for n in sel.names}
        write_text(run_dir / "mask_shapes.json", json.dumps(shapes))
    report = build_report(facts)
    write_text(run_dir / "run.yaml", facts.config.to_yaml())
    write_text(run_dir / "report.json", json.dumps(report, indent=2))
    write_text(run_dir / "report.html", render_html(report))
    write_text(folder / "README.md", model_card(report))
    return report


def _mask_metadata() -> dict[str, str]:
    # one key only: safetensors stores metadata in hash order, and the files must be byte-identical across runs.
    # Packing (ALGORITHM.md §4): numpy.packbits(mask.ravel(), bitorder="little"), 8 elements per byte.
    return {"format": "reasonany-masks-v1"}


def _copy_model_files(source: Path, folder: Path, out_dtype: torch.dtype) -> None:
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    name = str(out_dtype).removeprefix("torch.")
    for key in ("dtype", "torch_dtype"):
        if key in config:
            config[key] = name
    config.setdefault("dtype" if "torch_dtype" not in config else "torch_dtype", name)
    write_text(folder / "config.json", json.dumps(config, indent=2))
    for fname in ("generation_config.json",) + TOKENIZER_FILES:
        if (source / fname).is_file():
            shutil.copyfile(source / fname, folder / fname)


def build_report(facts: RunFacts) -> dict:
    """report.json's content: the run's facts as plain JSON (paths and dtypes as strings)."""
    cfg = facts.config
    sel = facts.selection
    models = {}
    for role, info in facts.models.items():
        models[role] = {
            "spec": getattr(cfg, role),
            "path": str(info.path),
            "fingerprint": facts.fingerprints[role],
            "architecture": info.architecture,
            "num_params": info.num_params,
            "dtype": info.dtype,
            "size_bytes": info.size_bytes,
            "num_layers": info.num_layers,
            "hidden_size": info.hidden_size,
            "vocab_size": info.vocab_size,
            "tied_embeddings": info.tied_embeddings,
        }
    data = {}
    for role, cs in facts.calib.items():
        data[role] = {
            "spec": cs.spec,
            "path": str(cs.path),
            "fingerprint": cs.fingerprint,
            "available": cs.available,
            "requested": cs.requested,
            "used": cs.used,
            "truncated": cs.truncated,
            "dropped": cs.dropped,
            "tokens": cs.tokens,
            "warnings": list(cs.warnings),
        }
    per_tensor = {}
    if sel is not None:
        for n in sel.names:
            entry = dict(sel.counts[n])
            if sel.masks[n].thresholds:
                entry["thresholds"] = sel.masks[n].thresholds
            per_tensor[n] = entry
    totals = sel.summary.totals if sel is not None else {}
    return {
        "format": "reasonany-report-v1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "method": cfg.method,
        "config": cfg.to_dict(),
        "output_dtype": str(facts.out_dtype).removeprefix("torch."),
        "models": models,
        "data": data,
        "totals": totals,
        "thresholds": sel.thresholds if sel is not None else {},
        "per_tensor": per_tensor,
        "passes": facts.pass_stats,
        "timings_seconds": {k: round(v, 3) for k, v in facts.timings.items()},
        "peak_device_bytes": facts.peak_device_bytes,
        "backward_passes": facts.backward_passes,
        "environment": facts.environment,
        "tune": facts.tune,
    }


# ---------------------------------------------------------------------- model card
TOOL_URL = "https://pypi.org/project/reasonany-gui/"
PAPER_URL = "https://arxiv.org/abs/2601.05560"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_HF_CACHE_DIR = re.compile(r"(?:^|[\\/])models--([^\\/]+?)--([^\\/]+)(?:[\\/]|$)")


def hub_repo_id(spec: str, path: str | None = None) -> str | None:
    """The Hugging Face repo id a model came from, or None for a model that is only a local folder.

    A repo id typed by the user (`org/name`, not an existing folder) or a folder inside the HF cache
    (`…/models--org--name/snapshots/…`) names a Hub model; any other folder is private to this machine and must
    not appear in a card's metadata (the Hub rejects it, and it shows the user's folder names)."""
    for text in (str(spec or ""), str(path or "")):
        m = _HF_CACHE_DIR.search(text)
        if m:
            return f"{m.group(1)}/{m.group(2)}"
    text = str(spec or "").strip()
    if _REPO_ID.match(text) and not Path(text).expanduser().exists() and not text.startswith((".", "~")):
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


def setting_rows(cfg: dict) -> list[tuple[str, str, str]]:
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


def model_card(report: dict) -> str:
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
        f"Made with [ReasonAny GUI]({TOOL_URL}) by **{METHOD_TITLES.get(report['method'], report['method'])}**"
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


def _eval_markdown(ev: dict | None) -> list[str]:
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


# ---------------------------------------------------------------------- HTML
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


def render_html(report: dict) -> str:
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
<p>{esc(METHOD_TITLES.get(report["method"], report["method"]))}, {esc(report["created"])}.</p>
<h2>Models</h2><table><tr><th>role</th><th>model</th><th>architecture</th><th>parameters</th><th>dtype</th></tr>{models}</table>
<h2>Selection</h2>{summary}<div>{maps}</div>
{evaluation}
<h2>Settings</h2><table>{rows}</table>
<h2>Timings</h2><table>{timings}</table>
<p>Reproduce with <code>reasonany merge reasonany/run.yaml --out NEW_FOLDER</code>.
Machine-readable details: report.json.</p>
</body></html>"""


def _eval_html(ev: dict | None) -> str:
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


def chosen_by_hand(tune: dict, config: dict) -> str | None:
    """Plain words when the folder's setting is not the tuner's recommendation (a point picked by the user, or a
    setting changed after the search); None when it is the recommendation."""
    best = next((c for c in tune["candidates"] if c["index"] == tune["recommended"]), None)
    if best is None or all(config.get(k) == v for k, v in best["setting"].items()):
        return None
    picked = next((c for c in tune["candidates"] if all(config.get(k) == v for k, v in c["setting"].items())), None)
    if picked is not None:
        return f"This folder holds another candidate of the search, picked by hand: {picked['label']}."
    return "This folder holds a setting changed by hand after the search; it was not measured by the tuner."


def tune_markdown(tune: dict | None, config: dict | None = None) -> list[str]:
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
        lines.append(f"| {c['label']}{mark} | {_pct(c['kept'].get('reasoning'))} | {_pct(c['kept'].get('domain'))} |")
    return lines


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f} %"


def _tune_html(tune: dict | None, config: dict | None = None) -> str:
    if not tune:
        return ""
    esc = html.escape
    by_hand = chosen_by_hand(tune, config or {})
    bold = ' style="font-weight:bold"'
    rows = "".join(
        f"<tr{bold if c['index'] == tune['recommended'] else ''}><td>{esc(c['label'])}</td>"
        f"<td>{_pct(c['kept'].get('reasoning'))}</td><td>{_pct(c['kept'].get('domain'))}</td></tr>"
        for c in tune["candidates"]
    )
    note = f"<p><b>{esc(by_hand)}</b></p>" if by_hand else ""
    return (
        f"<h2>How the setting was chosen</h2><p>{esc(tune['summary'])}</p>{note}<table><tr><th>candidate (bold: "
        "recommended)</th><th>reasoning kept</th><th>domain kept</th></tr>" + rows + "</table>"
    )


def add_evaluation(out_dir: Path, evaluation: dict) -> None:
    """Merge a post-merge evaluation into report.json and re-render report.html."""
    add_section(out_dir, "evaluation", evaluation)


def add_section(out_dir: Path, key: str, value: dict) -> None:
    """Put `value` under `key` in report.json, then re-render report.html and the model card from it."""
    run_dir = Path(out_dir) / RUN_DIR
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    report[key] = value
    write_text(run_dir / "report.json", json.dumps(report, indent=2))
    write_text(run_dir / "report.html", render_html(report))
    write_text(Path(out_dir) / "README.md", model_card(report))


# ---------------------------------------------------------------------- reading a run back
class RunView(Selection):
    """An earlier output folder: its report and masks, with the same inspector methods as a live Selection."""

    def __init__(self, out_dir: Path, report: dict, masks: dict[str, TensorMasks]) -> None:
        self.out_dir = Path(out_dir)
        self.report = report
        super().__init__(masks, report.get("thresholds"))


def load_run(out_dir: str | Path) -> RunView:
    from safetensors.torch import load_file

    out = Path(out_dir)
    run_dir = out / RUN_DIR
    if not (run_dir / "report.json").is_file():
        raise InputError(
            f"{out} is not a ReasonAny output folder (no {RUN_DIR}/report.json). Pick the folder of a finished run."
        )
    try:
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{run_dir / 'report.json'} is damaged ({exc}).") from None
    masks: dict[str, TensorMasks] = {}
    if (run_dir / "masks.safetensors").is_file():
        packed = {k: v.numpy() for k, v in load_file(str(run_dir / "masks.safetensors")).items()}
        conflicts = {}
        if (run_dir / "conflicts.safetensors").is_file():
            conflicts = {k: v.numpy() for k, v in load_file(str(run_dir / "conflicts.safetensors")).items()}
        shapes = (
            json.loads((run_dir / "mask_shapes.json").read_text()) if (run_dir / "mask_shapes.json").is_file() else {}
        )
        for name, entry in report.get("per_tensor", {}).items():
            numel = entry["numel"]
            empty = np.zeros((numel + 7) // 8, dtype=np.uint8)
            masks[name] = TensorMasks(
                numel,
                tuple(shapes.get(name, [numel])),
                packed[f"reasoning/{name}"],
                packed[f"domain/{name}"],
                conflicts.get(f"conflicts/{name}", empty),
                entry.get("thresholds", {}),
            )
    return RunView(out, report, masks)
