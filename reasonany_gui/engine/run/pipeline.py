"""The one pipeline behind the GUI, the CLI and the tests: check → identify → select → write.

Why stages on one object: the GUI runs identification once and then re-selects as the user moves a
ratio or scale (no new gradients: `backward_passes` stays put), and writes when they press Save; the
CLI simply calls `run()`. Every stage reports through events and checks the cancellation token between
samples and tensors; nothing is written under the final output name until the very end.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from ..core import layout
from ..core.devices import compute_dtype, resolve_device
from ..core.errors import WriteError
from ..core.events import CancelToken, Listener, Log, Progress, StageFinished, StageStarted, null_listener
from ..core.paths import cache_dir, run_files
from ..data import calibration
from ..io.checkpoints import Checkpoint
from ..io.finite import check_finite
from ..io.model_info import ModelInfo, info_of
from ..io.output_checks import bytes_needed, out_dtype_for, output_sizes, with_space
from ..io.scorecache import ScoreStore, cache_key, check_cache_root, map_bytes, temp_score_root
from ..io.tied import tied_aliases
from ..io.trio import same_model_warnings
from ..io.writer import check_free_space, check_output_target, clean_stale, register_temp_folder, write_error
from ..scoring import collectives
from ..scoring.plan import MAPS, needed_maps
from ..scoring.selection import Selection, empty_selection_warnings, mask_terms, select_masks
from ..settings.config import ROLES, MergeConfig
from .facts import TuneRecord, run_facts
from .identify import Scoring, load_for_scoring, score_map
from .inputs import check_data, check_tokenizer_source, open_models, prepare_data, renamed_note
from .preflight import memory_warnings
from .tensor_merge import merge_tensor_of

#: settings that only change selection or merging: re-tuning them needs no new gradients (each field's
#: Setting.retunable in config.py says so)
RETUNABLE = set(MergeConfig.fields_where(retunable=True))


def registry_path() -> Path:
    return cache_dir() / "temp-folders.json"


class Pipeline:
    def __init__(
        self,
        config: MergeConfig,
        listener: Listener | None = None,
        cancel: CancelToken | None = None,
        cache_root: Path | None = None,
    ) -> None:
        self.config = config
        self.listener = listener or null_listener
        self.cancel = cancel or CancelToken()
        self.backward_passes = 0
        self.ckpts: dict[str, Checkpoint] = {}
        self.infos: dict[str, ModelInfo] = {}
        self.device: torch.device | None = None
        self.calib: dict[str, calibration.CalibrationSet] = {}
        self.map_keys: dict[str, str] = {}
        self.selection: Selection | None = None
        self.timings: dict[str, float] = {}
        self.peak_device_bytes: dict[str, int] = {}
        self.pass_stats: dict[str, dict[str, Any]] = {}
        #: the tuner's result (measure.tune.TuneResult) when the setting was chosen by the tuner (workflows.merge)
        self.tune_result: TuneRecord | None = None
        #: token ids the tokenizer source names differently from the base: their embedding rows come from it whole
        self.renamed_tokens: dict[int, str] = {}
        self._tmp_root: Path | None = None
        root = Path(cache_root) if cache_root else cache_dir() / "scores"
        if not config.score_cache:  # named and registered like any temporary folder: a killed run's is cleaned later
            self._tmp_root = temp_score_root()  # on disk: the system temp folder is often RAM (tmpfs)
            register_temp_folder(registry_path(), self._tmp_root, add=True)
            root = self._tmp_root
        self.store = ScoreStore(root, registry_path())
        self._stage_index = 0
        self._run_started: float | None = None

    # ------------------------------------------------------------------ events
    def _emit(self, event: object) -> None:
        self.listener(event)

    def log(self, message: str, level: str = "info") -> None:
        self._emit(Log(level, message))

    def _stage(self, stage: str, title: str, total: int) -> float:
        # a re-tune or a save after the run continues the count: the plan grows, it never reads "stage 6/5"
        self._emit(StageStarted(stage, title, self._stage_index, max(total, self._stage_index + 1)))
        self._stage_index += 1
        return time.perf_counter()

    def _done(self, stage: str, start: float) -> None:
        seconds = time.perf_counter() - start
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds
        self._emit(StageFinished(stage, seconds))

    # ------------------------------------------------------------------ check
    def check(self) -> dict[str, ModelInfo]:
        """Validate settings, resolve and open the three models, check they fit, check the device."""
        cfg = self.config
        cfg.validate(need_out=False)
        start = self._stage("check", "Checking the models and settings", self._plan_size())
        removed = clean_stale(registry_path())
        for p in removed:
            self.log(f"Removed the leftovers of an interrupted run: {p}", "warning")
        self.store.warn = lambda message: self.log(message, "warning")  # a damaged cache entry is recomputed
        self.ckpts = open_models(cfg, self.cancel, lambda message: self.log(message, "warning"))
        self.infos = {r: info_of(c) for r, c in self.ckpts.items()}
        for message in same_model_warnings(self.ckpts):
            self.log(message, "warning")
        self.device = resolve_device(cfg.device)
        check_tokenizer_source(cfg, self.ckpts)
        if cfg.needs_scores:
            check_data(cfg)  # unreadable data is reported now, before any model is loaded
            for message in empty_selection_warnings(cfg, self.ckpts["base"], set(self.aliases())):
                self.log(message, "warning")
            if cfg.score_cache:  # known now, not when the scores are saved after hours of identification
                check_cache_root(self.store.root)

        def progress(fraction: float, message: str) -> None:
            self._emit(Progress("check", fraction, self._overall(fraction), message))

        check_finite(self.ckpts, self.cancel, progress)  # NaN/Inf weights, named, streamed, before any gradient
        self._find_renamed_tokens()
        if collectives.is_writer():
            self._preflight()
        self.cancel.check()
        self._done("check", start)
        return self.infos

    def _preflight(self, ram: int | None = None) -> None:
        """Warn before any model is loaded when the run needs more memory than is free (run.preflight)."""
        for message in memory_warnings(self.config, self.infos["base"], ram):
            self.log(message, "warning")

    def _find_renamed_tokens(self) -> None:
        from ..io.tokens import renamed_token_ids

        cfg = self.config
        self.renamed_tokens = renamed_token_ids(
            self.ckpts["base"].path, self.ckpts[cfg.tokenizer_source].path, self.ckpts["base"].embedding_rows
        )
        if note := renamed_note(self.renamed_tokens, cfg.tokenizer_source):
            self.log(note)

    def _plan_size(self) -> int:
        return 1 + (len(needed_maps(self.config)) + 1 if self.config.needs_scores else 0) + 1

    # ------------------------------------------------------------------ identify
    def identify(self, cfg: MergeConfig | None = None) -> None:
        """Compute (or find in the cache) every score map the method needs."""
        cfg = cfg or self.config
        if not cfg.needs_scores:
            if not self.ckpts:
                self.check()
            collectives.leave_group()
            return
        self.prepare(cfg)
        todo: dict[str, list[str]] = {}
        dtype = compute_dtype(cfg.compute_dtype, self._dev)
        for map_id in needed_maps(cfg):
            model_role, data_role = MAPS[map_id]
            key = cache_key(
                model=self.ckpts[model_role].fingerprint(),
                data=self.calib[data_role].fingerprint,
                score=cfg.score,
                dtype=str(dtype),
                device=self._dev.type,
                precision=cfg.score_precision,
            )
            self.map_keys[map_id] = key
            self.store.hold(key)  # in use until close(): `cache clear` elsewhere leaves it alone
            if self.store.has(key):
                self.log(f"Scores of the {model_role} model on the {data_role} data found in the cache: reused.")
            else:
                todo.setdefault(model_role, []).append(map_id)
        todo = collectives.agree(todo)  # rank 0's plan: every rank must join the same passes (collectives.py)
        if todo:  # before any model is loaded: the maps must fit on the cache's disk
            self.store.check_space(
                sum(map_bytes(self.ckpts[r].num_params, cfg.score_precision) * len(ids) for r, ids in todo.items()),
                sum(map(len, todo.values())),
                not cfg.score_cache,
            )
        total = self._plan_size()
        for model_role, map_ids in todo.items():
            model = load_for_scoring(self._scoring(cfg), self.ckpts[model_role], model_role, dtype)
            try:
                for map_id in map_ids:
                    self._score(model, model_role, map_id, cfg, total)
            finally:
                del model
                if self._dev.type == "cuda":
                    torch.cuda.empty_cache()
        collectives.leave_group()  # the job's only collective phase is over: rank 0 goes on alone

    def prepare(self, cfg: MergeConfig | None = None) -> dict[str, calibration.CalibrationSet]:
        """The calibration sets, tokenized by the tokenizer source (kept: identify and a re-tune reuse them)."""
        cfg = cfg or self.config
        if not self.ckpts:
            self.check()
        missing = [r for r in ("reasoning", "domain") if r not in self.calib]
        source = self.ckpts[cfg.tokenizer_source].path
        self.calib.update(prepare_data(cfg, missing, source, self.cancel, lambda w: self.log(w, "warning")))
        return self.calib

    def _score(self, model: torch.nn.Module, model_role: str, map_id: str, cfg: MergeConfig, total: int) -> None:
        """One score map as a stage of the run (run.identify computes it); the run keeps its record."""
        data_role = MAPS[map_id][1]
        stage = f"identify:{map_id}"
        start = self._stage(stage, f"Scoring the {model_role} model on the {data_role} data", total)
        record = score_map(
            self._scoring(cfg),
            model,
            self.ckpts[model_role],
            self.calib[data_role],
            map_id,
            self.map_keys[map_id],
            (model_role, data_role),
            stage,
        )
        self.backward_passes += record.backward_passes
        if record.peak_device_bytes is not None:
            self.peak_device_bytes[stage] = record.peak_device_bytes
        self.pass_stats[map_id] = record.stats
        self._done(stage, start)

    def _scoring(self, cfg: MergeConfig) -> Scoring:
        return Scoring(cfg, self._dev, self.store, self.listener, self.cancel, self.log, self._overall)

    def _overall(self, fraction: float) -> float:
        total = max(self._plan_size(), 1)
        return min(1.0, (max(self._stage_index - 1, 0) + fraction) / total)

    # ------------------------------------------------------------------ select
    def selectable_names(self, cfg: MergeConfig) -> list[str]:
        base = self.ckpts["base"]
        store = self.store.open(self.map_keys["reasoning@reasoning"])
        aliases = self.aliases(set(store.tensors))
        return [
            n
            for n in base.names
            if n in store.tensors and n not in aliases and (cfg.select_embeddings or not layout.is_embedding(n))
        ]

    def aliases(self, scored: set[str] | None = None) -> dict[str, str]:
        """A tied checkpoint that stores both the input embedding and lm_head.weight: {copy: primary} (io.tied),
        `scored` read from the reasoning scores when known; the copy is written with the primary's merged value."""
        if (
            scored is None
            and "reasoning@reasoning" in self.map_keys
            and self.store.has(self.map_keys["reasoning@reasoning"])
        ):
            scored = set(self.store.open(self.map_keys["reasoning@reasoning"]).tensors)
        return tied_aliases(self.ckpts["base"], scored)

    def select(self, config: MergeConfig | None = None, announce: bool = True) -> Selection | None:
        """Masks from the score maps; a config differing only in RETUNABLE settings needs no new gradients.

        `announce=False` (the tuner's many candidates) emits no stage, progress or summary events and adds no
        timing: the run's stage plan and the inspector stay those of the user's own run."""
        if config is not None:
            self._use_setting(config)
        cfg = self.config
        cfg.validate(need_out=False)
        self.selection = None  # a failed selection must not leave the previous masks looking current
        if not cfg.needs_scores:
            return None
        if any(m not in self.map_keys or not self.store.has(self.map_keys[m]) for m in needed_maps(cfg)):
            self.identify(cfg)
        start = (
            self._stage("select", "Selecting the reasoning and domain parameters", self._plan_size())
            if announce
            else time.perf_counter()
        )
        terms = mask_terms(cfg.method, cfg.reasoning_ratio, cfg.domain_ratio, cfg.intersect)
        maps = {m: self.store.open(self.map_keys[m]) for m in needed_maps(cfg)}
        names = self.selectable_names(cfg)

        def progress(fraction: float, message: str) -> None:
            if announce:
                self._emit(Progress("select", fraction, self._overall(fraction), message))

        masks, thresholds = select_masks(maps, names, terms, cfg.scope, cfg.granularity, self.cancel, progress)
        self.selection = Selection(masks, thresholds, maps, terms)
        if announce:
            self._emit(self.selection.summary)
            self._done("select", start)
        return self.selection

    def _use_setting(self, config: MergeConfig) -> None:
        """Take `config`, dropping what it invalidates: a change beyond the re-tunable settings forgets the data
        and the maps' cache keys, a change of models, download rules or device also the opened models."""
        old, new = self.config.to_dict(), config.to_dict()
        changed = {k for k in new if new[k] != old[k]}
        if changed - RETUNABLE - {"intersect"}:
            # data, score type, models...: the cached calibration sets and opened models no longer apply
            if changed & {"base", "reasoning", "domain", "allow_pickle", "allow_download", "device"}:
                self.ckpts = {}
            self.calib = {}
            self.map_keys = {}
        self.config = config

    # ------------------------------------------------------------------ write
    def output_sizes(self, out_dtype: torch.dtype) -> list[tuple[str, int]]:
        return output_sizes(self.ckpts["base"], out_dtype)

    def write(self, out: str | Path | None = None) -> Path:
        """Merge tensor by tensor into a temporary folder, write the report, rename to `out`."""
        cfg = self.config
        if out is not None:
            cfg = self.config = cfg.replace(out=str(out))
        cfg.validate(need_out=True)
        if not self.ckpts:
            self.check()
        if cfg.needs_scores and self.selection is None:
            self.select()
        final, needed = self.check_output()
        out_dtype = out_dtype_for(cfg.dtype, self.ckpts["base"].storage_dtype)
        sizes = self.output_sizes(out_dtype)
        try:
            written = self._write_into(final, sizes, out_dtype)
        except (OSError, SafetensorError) as exc:  # report files (masks: safetensors' own error on a full disk)
            raise with_space(write_error(exc, final), final, needed) from None
        except WriteError as exc:
            raise with_space(exc, final, needed) from None
        if written != final:
            self.log(
                f"The output folder {final} was filled by something else during the run; it was left as it is "
                f"and the merged model was saved to {written} instead.",
                "warning",
            )
        self.log(f"Merged model written to {written}")
        return written

    def check_output(self, out: str | Path | None = None) -> tuple[Path, int]:
        """Refuse a bad output folder and too little disk space, before hours of identification.

        Returns the resolved folder and the bytes the output needs (weights, plus masks for scored methods)."""
        cfg = self.config
        if not self.ckpts:
            self.check()
        target = out or cfg.out
        assert target is not None, "callers pass `out` or validate(need_out=True) first"
        final = check_output_target(Path(target), [c.path for c in self.ckpts.values()])
        sizes = self.output_sizes(out_dtype_for(cfg.dtype, self.ckpts["base"].storage_dtype))
        needed = bytes_needed(sizes, cfg.needs_scores)
        check_free_space(final, needed)
        return final, needed

    def _write_into(self, final: Path, sizes: list[tuple[str, int]], out_dtype: torch.dtype) -> Path:
        from ..io.writer import ShardedWriter, TempFolder
        from ..output import report

        cfg = self.config
        start = self._stage("write", "Merging and writing the output folder", self._plan_size())
        base, rsn, dom = (self.ckpts[r] for r in ROLES)
        aliases = self.aliases()
        sel = self.selection
        with TempFolder(final, registry_path()) as tmp:
            writer = ShardedWriter(tmp.path, sizes, cfg.shard_bytes, layouts=base.layouts(out_dtype))
            done_bytes, total_bytes = 0, max(sum(s for _, s in sizes), 1)
            try:
                for name, nbytes in sizes:
                    self.cancel.check()
                    writer.add(name, self.merge_one(aliases.get(name, name), base, rsn, dom, sel, out_dtype))
                    # each tensor goes to disk as it comes; unmap the inputs' pages it read (mapped pages count as
                    # the process's memory until unmapped): the stage holds one tensor, whatever the shard size
                    for ckpt in (base, rsn, dom):
                        ckpt.release_maps()
                    done_bytes += nbytes
                    frac = done_bytes / total_bytes
                    self._emit(Progress("write", frac, self._overall(frac), name))
                writer.close()
            finally:
                writer.abort()
            self.cancel.check()
            # the report records the write and total times: set them now (up to the report itself)
            self.timings["write"] = self.timings.get("write", 0.0) + time.perf_counter() - start
            if self._run_started is not None:
                self.timings["total"] = time.perf_counter() - self._run_started
            masks = sel.packed_tensors() if sel is not None else {}
            report.write_run_files(tmp.path, run_facts(self, out_dtype), masks)
            if self.tune_result is not None:
                self.tune_result.write(run_files(tmp.path))
            self.cancel.check()
            written = tmp.commit(elsewhere_if_taken=True)
        self._emit(StageFinished("write", time.perf_counter() - start))  # its timing is already recorded
        return written

    def merge_one(
        self,
        name: str,
        base: Checkpoint,
        rsn: Checkpoint,
        dom: Checkpoint,
        sel: Selection | None,
        out_dtype: torch.dtype,
    ) -> torch.Tensor:
        """Output tensor `name` under this run's setting (run.tensor_merge), for the writer and the live merge."""
        source = self.ckpts[self.config.tokenizer_source]
        return merge_tensor_of(self.config, name, (base, rsn, dom), sel, out_dtype, (self.renamed_tokens, source))

    # ------------------------------------------------------------------ all of it
    def run(self, keep_open: bool = False) -> Path:
        """check → identify → select → write, the plain run (workflows.merge adds the tuner between the stages).

        `keep_open`: a run that succeeds keeps its models and scores open (the app re-selects and re-tunes from
        them, then calls `close`); a run that fails is always closed, since nothing can be re-tuned from it.
        Returns the folder written (NAME-2 when NAME was filled during the run). report.json records the write
        and total times."""
        with self.running(keep_open):
            self.check()
            # refuse a bad output folder or a too small disk before hours of identification, not after
            self.check_output()
            self.identify()
            self.select()
            return self.write()

    @contextlib.contextmanager
    def running(self, keep_open: bool = False) -> Iterator[None]:
        """The frame of one whole run: validates the setting, times the run (report.json's total), and closes the
        models and scores afterwards unless the run succeeded with `keep_open`."""
        self.config.validate(need_out=True)
        self._run_started = time.perf_counter()
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            self._run_started = None  # a later save of a re-tuned version is no part of this run's total
            if not (keep_open and succeeded):
                self.close()

    def adopt(self, config: MergeConfig, tune_result: TuneRecord | None = None) -> None:
        """Take `config` as the run's setting (the tuner's recommendation, or the app's re-tuned one), with the
        tuner's record for tune.json and the report. The last selection is dropped: write() re-selects."""
        self._use_setting(config)
        self.selection = None
        self.tune_result = tune_result

    @contextlib.contextmanager
    def trial(self) -> Iterator[None]:
        """Changes to the setting, the masks and the tuner's record inside the block last only if it succeeds:
        failed or cancelled, the pipeline is put back as it was (the app still shows, and may save, that state)."""
        before = (self.config, self.selection, self.tune_result)
        try:
            yield
        except BaseException:
            self.config, self.selection, self.tune_result = before
            raise

    def report_to(self, listener: Listener, cancel: CancelToken) -> None:
        """Report to `listener` and obey `cancel` from now on: a pipeline kept open serves several jobs."""
        self.listener = listener
        self.cancel = cancel

    @property
    def _dev(self) -> torch.device:
        """The resolved device: check() sets it, and every stage that computes runs after check()."""
        assert self.device is not None, "check() resolves the device first"
        return self.device

    def close(self) -> None:
        for c in self.ckpts.values():
            c.close()
        self.store.release()
        if self._tmp_root is not None:
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            register_temp_folder(registry_path(), self._tmp_root, add=False)
