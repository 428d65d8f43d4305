"""The facts of a run that report.json records, gathered in one place from the pipeline's state.

Why a Protocol for the state: this module stands below the pipeline (which calls it when it writes), so it names
only the attributes it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from ..core.environment import environment
from ..data.calibration import CalibrationSet
from ..io.checkpoints import Checkpoint
from ..io.model_info import ModelInfo
from ..io.scorecache import ScoreStore
from ..output.report import RunFacts
from ..scoring import collectives
from ..scoring.selection import Selection
from ..settings.config import MergeConfig


class TuneRecord(Protocol):
    """What the pipeline keeps of a tuner's result (measure.tune.TuneResult): its report section and tune.json.

    A Protocol: the tuner stands above the pipeline (it merges candidates with the pipeline's stages)."""

    def report_section(self) -> dict[str, Any]: ...

    def write(self, folder: Path) -> Path: ...


class RunState(Protocol):
    """The pipeline's state that the facts come from (run.pipeline.Pipeline has these attributes)."""

    config: MergeConfig
    ckpts: dict[str, Checkpoint]
    infos: dict[str, ModelInfo]
    calib: dict[str, CalibrationSet]
    selection: Selection | None
    pass_stats: dict[str, dict[str, Any]]
    timings: dict[str, float]
    peak_device_bytes: dict[str, int]
    backward_passes: int
    device: torch.device | None
    map_keys: dict[str, str]
    store: ScoreStore
    tune_result: TuneRecord | None


def run_facts(state: RunState, out_dtype: torch.dtype) -> RunFacts:
    """The run's facts for report.json: called by the write stage once the timings are complete."""
    return RunFacts(
        config=state.config,
        out_dtype=out_dtype,
        tokenizer_dir=state.ckpts[state.config.tokenizer_source].path,
        models=dict(state.infos),
        fingerprints={r: c.fingerprint() for r, c in state.ckpts.items()},
        calib=dict(state.calib),
        selection=state.selection,
        pass_stats=dict(state.pass_stats),
        timings=dict(state.timings),
        peak_device_bytes=dict(state.peak_device_bytes),
        backward_passes=state.backward_passes,
        environment=run_environment(state),
        tune=state.tune_result.report_section() if state.tune_result is not None else None,
    )


def run_environment(state: RunState) -> dict[str, Any]:
    """The software and machine (core.environment), this process's thread and process counts, and the counts
    that summed each score map used (`score_maps`, from its cache entry: a reused entry keeps its own)."""
    return {**environment(state.device), **collectives.summation_order(), "score_maps": _map_origins(state)}


def _map_origins(state: RunState) -> dict[str, dict[str, Any]]:
    origins = {}
    for map_id, key in sorted(state.map_keys.items()):
        try:
            meta = state.store.meta(key)
        except (OSError, ValueError):
            meta = {}
        origins[map_id] = {k: meta.get(k) for k in ("threads", "processes")}
    return origins
