"""What a run leaves next to the merged weights: config/tokenizer files, model card, run.yaml,
report.json, report.html and the bit-packed masks (ALGORITHM.md §4) — and reading such a folder back.

Why self-contained: the people who use the app share the folder; report.html must open anywhere with
no network (inline SVG, no scripts), and report.json must carry everything a tool needs to audit the run.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.paths import RUN_DIR
from ..io.writer import write_text
from ..scoring.selection import Selection, TensorMasks
from ..settings.config import MergeConfig
from .card import model_card
from .report_html import render_html

if TYPE_CHECKING:
    from ..data.calibration import CalibrationSet
    from ..io.model_info import ModelInfo

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


# ---------------------------------------------------------------------- writing
@dataclass(frozen=True)
class RunFacts:
    """What a finished run knows about itself: everything report.json records, and nothing else.

    Why a record and not the Pipeline: the report used to read about ten attributes off the live pipeline,
    untyped, so a renamed attribute broke the report only at the end of a run. `run.facts.run_facts` builds this
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


def write_run_files(folder: Path, facts: RunFacts, mask_tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
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
    config.pop("quantization_config", None)  # the merge is plain floating point (a stale entry: Checkpoint notes)
    name = str(out_dtype).removeprefix("torch.")
    for key in ("dtype", "torch_dtype"):
        if key in config:
            config[key] = name
    config.setdefault("dtype" if "torch_dtype" not in config else "torch_dtype", name)
    write_text(folder / "config.json", json.dumps(config, indent=2))
    for fname in ("generation_config.json",) + TOKENIZER_FILES:
        if (source / fname).is_file():
            shutil.copyfile(source / fname, folder / fname)


def build_report(facts: RunFacts) -> dict[str, Any]:
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
            "notes": list(info.notes),
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


def add_evaluation(out_dir: Path, evaluation: dict[str, Any]) -> None:
    """Merge a post-merge evaluation into report.json and re-render report.html."""
    add_section(out_dir, "evaluation", evaluation)


def add_section(out_dir: Path, key: str, value: dict[str, Any]) -> None:
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

    def __init__(self, out_dir: Path, report: dict[str, Any], masks: dict[str, TensorMasks]) -> None:
        self.out_dir = Path(out_dir)
        self.report = report
        super().__init__(masks, report.get("thresholds"))


def read_report(out_dir: str | Path) -> dict[str, Any]:
    """A finished run's report.json; InputError naming the folder when it is not a run or the file is damaged."""
    out = Path(out_dir)
    path = out / RUN_DIR / "report.json"
    if not path.is_file():
        raise InputError(
            f"{out} is not a ReasonAny output folder (no {RUN_DIR}/report.json). Pick the folder of a finished run."
        )
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is damaged ({exc}).") from None
    return report


def load_run(out_dir: str | Path) -> RunView:
    from safetensors.torch import load_file

    out = Path(out_dir)
    run_dir = out / RUN_DIR
    report = read_report(out)
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
