"""The one pipeline behind the GUI, the CLI and the tests: check → identify → select → write.

Why stages on one object: the GUI runs identification once and then re-selects as the user moves a
ratio or scale (no new gradients: `backward_passes` stays put), and writes when they press Save; the
CLI simply calls `run()`. Every stage reports through events and checks the cancellation token between
samples and tensors; nothing is written under the final output name until the very end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from ..core import layout
from ..core.devices import compute_dtype, free_device_bytes, resolve_device
from ..core.errors import InputError, OutOfMemoryError, WriteError
from ..core.events import CancelToken, Log, Progress, SensitivityUpdate, StageFinished, StageStarted, null_listener
from ..core.paths import cache_dir, run_files
from ..data import calibration
from ..data.calibration import load_tokenizer
from ..io.checkpoints import (
    Checkpoint,
    ModelInfo,
    check_finite,
    check_trio,
    info_of,
    load_model,
    resolve_model,
    same_model_warnings,
)
from ..io.scorecache import ScoreStore, cache_key, check_cache_root, map_bytes, temp_score_root
from ..io.writer import (
    TMP_MARK,
    check_free_space,
    check_output_target,
    clean_stale,
    existing_parent,
    human_bytes,
    register_temp_folder,
    write_error,
)
from ..scoring import collectives, placement
from ..scoring.collectives import score_pass
from ..scoring.importance import enable_checkpointing, parameter_names, tensor_groups
from ..scoring.plan import MAPS, needed_maps
from ..scoring.selection import Selection, empty_selection_warnings, mask_terms, select_masks
from ..settings.config import ROLES, MergeConfig

if TYPE_CHECKING:
    from ..output.report import RunFacts

#: settings that only change selection or merging: re-tuning them needs no new gradients (each field's
#: Setting.retunable in config.py says so)
RETUNABLE = set(MergeConfig.fields_where(retunable=True))


def registry_path() -> Path:
    return cache_dir() / "temp-folders.json"


class TuneRecord(Protocol):
    """What the pipeline keeps of a tuner's result (measure.tune.TuneResult): its report section and tune.json.

    A Protocol: the tuner stands above the pipeline (it merges candidates with the pipeline's stages)."""

    def report_section(self) -> dict[str, Any]: ...

    def write(self, folder: Path) -> Path: ...


class Pipeline:
    def __init__(
        self, config: MergeConfig, listener=None, cancel: CancelToken | None = None, cache_root: Path | None = None
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
        self.pass_stats: dict[str, dict] = {}
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
    def _emit(self, event) -> None:
        self.listener(event)

    def log(self, message: str, level: str = "info") -> None:
        self._emit(Log(level, message))

    def _stage(self, stage: str, title: str, total: int):
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
        self.ckpts = {}
        for role in ROLES:
            self.cancel.check()
            try:
                path = resolve_model(getattr(cfg, role), cfg.allow_download, cfg.allow_pickle)
                self.ckpts[role] = Checkpoint(path, allow_pickle=cfg.allow_pickle)
            except InputError as exc:
                raise InputError(f"The {role} model: {exc}") from None
            for f in self.ckpts[role].ignored_files:
                self.log(
                    f"The {role} model: {f} is not read: the folder has no index, and transformers loads "
                    "model.safetensors alone.",
                    "warning",
                )
        check_trio(self.ckpts)
        self.infos = {r: info_of(c) for r, c in self.ckpts.items()}
        for message in same_model_warnings(self.ckpts):
            self.log(message, "warning")
        self.device = resolve_device(cfg.device)
        try:  # the scoring passes and the output both need it; missing files used to be blamed on the data
            calibration.check_tokenizer(self.ckpts[cfg.tokenizer_source].path, self.ckpts["base"].embedding_rows)
        except InputError as exc:
            raise InputError(
                f"The tokenizer source (the {cfg.tokenizer_source} model): {exc} Pick another "
                "tokenizer source (--tokenizer-source), or copy the tokenizer files into that "
                "folder."
            ) from None
        if cfg.needs_scores:
            for role, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
                try:  # unreadable data is reported now, before any model is loaded
                    calibration.load_samples(spec)
                except InputError as exc:
                    raise InputError(f"The {role} calibration data: {exc}") from None
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
        """Warn before any model is loaded when the run needs more host memory than is free (and say how many
        score passes would fit: the low-RAM mode), or when a model split across GPUs does not fit them.

        Why a warning and not an automatic change: `score_groups` is recorded in run.yaml, and a run re-done
        from it must do what it says; the app's settings screen offers the same change before the run."""
        from ..scoring.estimate import estimate_run, low_ram_offer

        cfg = self.config
        if not cfg.needs_scores:
            return
        info = self.infos["base"]
        try:
            est = estimate_run(cfg, info)
            if ram is None:
                import psutil

                ram = int(psutil.virtual_memory().available)
            offer = low_ram_offer(cfg, info, ram)
        except Exception as exc:  # noqa: BLE001 - an estimate is a courtesy, never a blocker
            self.log(f"No memory estimate: {exc}", "warning")
            return
        if offer is not None:
            self.log(
                offer.message(
                    f" Set --score-groups {offer.groups} (the app: Scoring passes per model, under "
                    "Advanced settings); the scores are the same."
                ),
                "warning",
            )
        elif est.host_bytes > ram:
            self.log(
                f"This merge needs about {human_bytes(est.host_bytes)} of memory; {human_bytes(ram)} is free. "
                "Close other programs, or see docs/SCALING.md.",
                "warning",
            )
        if est.split is not None and not est.split.fits:
            self.log(f"The model split across {cfg.devices}: {est.split.message}", "warning")

    def _find_renamed_tokens(self) -> None:
        from ..io.tokens import renamed_token_ids

        cfg = self.config
        self.renamed_tokens = renamed_token_ids(
            self.ckpts["base"].path, self.ckpts[cfg.tokenizer_source].path, self.ckpts["base"].embedding_rows
        )
        if self.renamed_tokens:
            shown = ", ".join(list(self.renamed_tokens.values())[:4])
            more = f" and {len(self.renamed_tokens) - 4} more" if len(self.renamed_tokens) > 4 else ""
            self.log(
                f"The {cfg.tokenizer_source} model's tokenizer gives {len(self.renamed_tokens)} token id(s) a "
                f"meaning the base does not have ({shown}{more}): their embedding and output rows are taken "
                f"from the {cfg.tokenizer_source} model whole."
            )

    def _plan_size(self) -> int:
        return 1 + (len(needed_maps(self.config)) + 1 if self.config.needs_scores else 0) + 1

    # ------------------------------------------------------------------ identify
    def identify(self, cfg: MergeConfig | None = None) -> None:
        """Compute (or find in the cache) every score map the method needs."""
        cfg = cfg or self.config
        if not self.ckpts:
            self.check()
        if not cfg.needs_scores:
            return
        source = self.ckpts[cfg.tokenizer_source].path
        tokenizer = load_tokenizer(source)
        for data_role, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
            if data_role not in self.calib:
                cs = calibration.prepare(
                    spec, tokenizer, cfg.samples, cfg.max_length, cfg.seed, cfg.response_only, cancel=self.cancel
                )
                for w in cs.warnings:
                    self.log(w, "warning")
                self.calib[data_role] = cs
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
            model = self._load_for_scoring(model_role, dtype, cfg)
            try:
                for map_id in map_ids:
                    self._score(model, model_role, map_id, cfg, total)
            finally:
                del model
                if self._dev.type == "cuda":
                    torch.cuda.empty_cache()

    def _load_for_scoring(self, role: str, dtype: torch.dtype, cfg: MergeConfig):
        self.log(f"Loading the {role} model on {self.device} ({str(dtype).removeprefix('torch.')}).")
        self.cancel.check()
        group = collectives.rank_devices(cfg.devices)  # '+' joins GPUs that hold one model (placement.py)
        try:
            if len(group) > 1:
                model = placement.load_split(
                    self.ckpts[role].path,
                    dtype,
                    group,
                    allow_pickle=cfg.allow_pickle,
                    accumulators_on_device=cfg.accumulators != "host",
                )
            else:
                model = load_model(self.ckpts[role].path, dtype, self._dev, allow_pickle=cfg.allow_pickle)
        except torch.cuda.OutOfMemoryError:
            fewer = {"compute_dtype": "bfloat16"} if dtype == torch.float32 else {"device": "cpu"}
            raise OutOfMemoryError(
                f"The {role} model's weights do not fit in the memory of {self.device}. Compute in bfloat16, close "
                "other programs that use the GPU, or use the CPU (much slower).",
                fewer,
            ) from None
        if cfg.gradient_checkpointing:
            enable_checkpointing(model)
        return model

    def _accumulate_on(self, cfg: MergeConfig, model, num_params: int | None = None) -> torch.device:
        """Where the accumulators of one pass go; `num_params` is the pass's share (one group in low-RAM mode)."""
        if self._dev.type == "cpu" or cfg.accumulators == "device":
            return self._dev
        if cfg.accumulators == "host":
            return torch.device("cpu")
        n = num_params if num_params is not None else sum(p.numel() for p in model.parameters())
        return self._dev if free_device_bytes(self._dev) > 4 * n * 1.3 + 2e9 else torch.device("cpu")

    def _score(self, model, model_role: str, map_id: str, cfg: MergeConfig, total: int) -> None:
        """One score map: one pass over the samples, or `score_groups` passes over groups of tensors (low-RAM
        mode), each group's maps written to the cache entry and its accumulators freed before the next pass."""
        data_role = MAPS[map_id][1]
        title = f"Scoring the {model_role} model on the {data_role} data"
        stage = f"identify:{map_id}"
        start = self._stage(stage, title, total)
        cs = self.calib[data_role]
        ckpt = self.ckpts[model_role]
        params = parameter_names(model, set(ckpt.tensors))
        groups = tensor_groups({n: p.numel() for n, p in params.items()}, cfg.score_groups)
        largest = max(sum(params[n].numel() for n in g) for g in groups)
        acc_on = (
            placement.accumulate_on(params, cfg.accumulators)
            if placement.is_split(model)
            else self._accumulate_on(cfg, model, largest)
        )
        if len(groups) > 1:
            self.log(
                f"Low-RAM mode: the {model_role} model's {len(params)} tensors are scored in {len(groups)} "
                f"passes, at most {human_bytes(4 * largest)} of score sums at a time instead of "
                f"{human_bytes(4 * sum(p.numel() for p in params.values()))}."
            )
        if self._dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        n_samples = len(cs.samples)
        done_before = 0  # samples of the finished groups (all ranks)

        def on_sample(i: int, n: int) -> None:
            done, todo = done_before + i, n * len(groups)
            elapsed = time.perf_counter() - t0
            eta = elapsed / done * (todo - done)
            part = f", pass {done_before // max(n, 1) + 1}/{len(groups)}" if len(groups) > 1 else ""
            self._emit(Progress(stage, done / todo, self._overall(done / todo), f"sample {i}/{n}{part}", eta))

        plot = _GroupedPlot(self.listener, len(groups), n_samples)
        meta: dict = {"map": map_id, "model": str(ckpt.path), "data": cs.spec, "score": cfg.score}
        stats = {"samples": 0, "tokens": 0, "seconds": 0.0}
        with contextlib.ExitStack() as stack:
            # rank 0 alone holds the reduced scores and writes them; the entry is renamed into place only when
            # every group is in (the block raising removes the half-written entry)
            entry = (
                stack.enter_context(
                    self.store.writer(
                        self.map_keys[map_id], {n: p.numel() for n, p in params.items()}, cfg.score_precision, meta
                    )
                )
                if collectives.is_writer()
                else None
            )
            for k, group in enumerate(groups):
                plot.group = k
                try:
                    result = score_pass(
                        model,
                        {n: params[n] for n in group},
                        cs.samples,
                        cfg.score,
                        acc_on,
                        map_id,
                        model_role,
                        data_role,
                        plot,
                        self.cancel,
                        on_sample=on_sample,
                    )
                except (torch.cuda.OutOfMemoryError, OutOfMemoryError):
                    raise oom_error(cfg, title.lower()) from None
                self.backward_passes += result.backward_passes
                stats = {
                    "samples": result.samples,
                    "tokens": result.tokens,
                    "seconds": stats["seconds"] + result.seconds,
                }
                self.cancel.check()
                if entry is not None:
                    entry.add(result.scores)
                del result  # this group's float32 sums go before the next group's are made
                done_before += n_samples
            meta.update(stats)  # read when the entry is finished, at the end of the block
        if self._dev.type == "cuda":
            self.peak_device_bytes[stage] = int(torch.cuda.max_memory_allocated(self.device))
        self.pass_stats[map_id] = {
            "samples": stats["samples"],
            "tokens": stats["tokens"],
            "seconds": round(stats["seconds"], 3),
            "tokens_per_second": round(stats["tokens"] / max(stats["seconds"], 1e-9), 1),
            "accumulators": placement.describe(acc_on),
        }
        if len(groups) > 1:
            self.pass_stats[map_id]["groups"] = len(groups)
        self._done(stage, start)

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
        """A tied checkpoint that stores both the embedding and lm_head.weight: {copy: primary}. The primary is
        the name the tied weight was scored under (importance stores it once, under the first stored name in
        sorted order: lm_head.weight), so it can be selected; the copy is written with the primary's merged value."""
        base = self.ckpts["base"]
        if not base.tied_embeddings or "lm_head.weight" not in base.tensors:
            return {}
        embed = [n for n in base.names if n.endswith("embed_tokens.weight")]
        if not embed:
            return {}
        if (
            scored is None
            and "reasoning@reasoning" in self.map_keys
            and self.store.has(self.map_keys["reasoning@reasoning"])
        ):
            scored = set(self.store.open(self.map_keys["reasoning@reasoning"]).tensors)
        pair = sorted(["lm_head.weight", embed[0]])
        primary = next((n for n in pair if scored is not None and n in scored), pair[0])
        return {n: primary for n in pair if n != primary}

    def select(self, config: MergeConfig | None = None, announce: bool = True) -> Selection | None:
        """Masks from the score maps; a config differing only in RETUNABLE settings needs no new gradients.

        `announce=False` (the tuner's many candidates) emits no stage, progress or summary events and adds no
        timing: the run's stage plan and the inspector stay those of the user's own run."""
        if config is not None:
            self._adopt(config)
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

    def _adopt(self, config: MergeConfig) -> None:
        old = self.config.to_dict()
        new = config.to_dict()
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
        base = self.ckpts["base"]
        sizes = []
        for n in base.names:
            meta = base.tensors[n]
            item = out_dtype.itemsize if meta.is_float else getattr(torch, meta.dtype).itemsize
            sizes.append((n, meta.numel * item))
        return sizes

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
        except OSError as exc:  # report files, copies: the shard writer already turns its own into WriteError
            raise self._with_space(write_error(exc, final), final, needed) from None
        except WriteError as exc:
            raise self._with_space(exc, final, needed) from None
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
        needed = sum(s for _, s in sizes) + (sum(s for _, s in sizes) // 8 if cfg.needs_scores else 0)
        check_free_space(final, needed)
        return final, needed

    @staticmethod
    def _with_space(exc: WriteError, final: Path, needed: int) -> WriteError:
        try:
            free = human_bytes(shutil.disk_usage(existing_parent(final)).free)
        except OSError:
            free = "unknown"
        # the temporary folder is gone: name the file under the output folder the user chose
        temp = re.escape(str(final.parent / f".{final.name}{TMP_MARK}")) + r"[\w-]+"
        message = re.sub(temp, lambda _m: str(final), str(exc))
        return WriteError(
            f"{message} The output needs about {human_bytes(needed)}; {free} free now. Nothing was "
            "written and the input models are untouched."
        )

    def _write_into(self, final: Path, sizes: list[tuple[str, int]], out_dtype: torch.dtype) -> Path:
        from ..io.writer import ShardedWriter, TempFolder
        from ..output import report

        cfg = self.config
        start = self._stage("write", "Merging and writing the output folder", self._plan_size())
        base, rsn, dom = (self.ckpts[r] for r in ROLES)
        aliases = self.aliases()
        sel = self.selection
        mask_tensors: dict[str, torch.Tensor] = {}
        with TempFolder(final, registry_path()) as tmp:
            writer = ShardedWriter(tmp.path, sizes, cfg.shard_bytes)
            done_bytes, total_bytes = 0, max(sum(s for _, s in sizes), 1)
            for name, nbytes in sizes:
                self.cancel.check()
                merged = self.merge_one(aliases.get(name, name), base, rsn, dom, sel, out_dtype)
                flushed = writer.add(name, merged)
                if flushed:  # drop the inputs' memory maps with each shard: host memory stays near one shard
                    for ckpt in (base, rsn, dom):
                        ckpt.release_maps()
                done_bytes += nbytes
                frac = done_bytes / total_bytes
                self._emit(Progress("write", frac, self._overall(frac), name))
            writer.close()
            if sel is not None:
                for name in sel.names:
                    m = sel.masks[name]
                    mask_tensors[f"reasoning/{name}"] = torch.from_numpy(m.reasoning)
                    mask_tensors[f"domain/{name}"] = torch.from_numpy(m.domain)
            self.cancel.check()
            # the report records the write and total times: set them now (up to the report itself)
            self.timings["write"] = self.timings.get("write", 0.0) + time.perf_counter() - start
            if self._run_started is not None:
                self.timings["total"] = time.perf_counter() - self._run_started
            report.write_run_files(tmp.path, self.run_facts(out_dtype), mask_tensors)
            if self.tune_result is not None:
                self.tune_result.write(run_files(tmp.path))
            self.cancel.check()
            written = tmp.commit(elsewhere_if_taken=True)
        self._emit(StageFinished("write", time.perf_counter() - start))  # its timing is already recorded
        return written

    def merge_one(self, name: str, base, rsn, dom, sel: Selection | None, out_dtype: torch.dtype) -> torch.Tensor:
        from ..methods.registry import merge_tensor

        b = base.get(name)
        if not b.is_floating_point():
            return b
        cfg = self.config
        if cfg.needs_scores:
            if sel is None or name not in sel.masks:
                out = b.to(out_dtype)
            else:
                m_r, m_d = sel.bool_masks(name)
                out = merge_tensor(cfg.method, name, b, rsn.get(name), dom.get(name), cfg, m_r, m_d).to(out_dtype)
            out = self._renamed_rows(name, out, b)
            # the tied head is written twice from this one memory-mapped tensor (safetensors returns the same
            # tensor for the same name), and save_file refuses tensors that share memory: copy it
            return out.clone() if layout.is_embedding(name) and out.data_ptr() == b.data_ptr() else out
        return merge_tensor(cfg.method, name, b, rsn.get(name), dom.get(name), cfg).to(out_dtype)

    def _renamed_rows(self, name: str, out: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Embedding/output rows of renamed tokens (tokens.py) come whole from the tokenizer-source model."""
        if not self.renamed_tokens or not layout.is_embedding(name) or out.dim() != 2:
            return out
        rows = torch.tensor([i for i in self.renamed_tokens if i < out.shape[0]], dtype=torch.long)
        if out.data_ptr() == base.data_ptr():
            out = out.clone()  # never write into a memory-mapped input
        out[rows] = self.ckpts[self.config.tokenizer_source].get(name)[rows].to(out.dtype)
        return out

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
        self._adopt(config)
        self.selection = None
        self.tune_result = tune_result

    @property
    def _dev(self) -> torch.device:
        """The resolved device: check() sets it, and every stage that computes runs after check()."""
        assert self.device is not None, "check() resolves the device first"
        return self.device

    def close(self) -> None:
        for c in self.ckpts.values():
            c.close()
        if self._tmp_root is not None:
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            register_temp_folder(registry_path(), self._tmp_root, add=False)

    # ------------------------------------------------------------------ facts for the report
    def run_facts(self, out_dtype: torch.dtype) -> RunFacts:
        """The run's facts for report.json, in one place: called by `write` once the timings are complete."""
        from ..output.report import RunFacts

        return RunFacts(
            config=self.config,
            out_dtype=out_dtype,
            tokenizer_dir=self.ckpts[self.config.tokenizer_source].path,
            models=dict(self.infos),
            fingerprints={r: c.fingerprint() for r, c in self.ckpts.items()},
            calib=dict(self.calib),
            selection=self.selection,
            pass_stats=dict(self.pass_stats),
            timings=dict(self.timings),
            peak_device_bytes=dict(self.peak_device_bytes),
            backward_passes=self.backward_passes,
            environment=self.environment(),
            tune=self.tune_result.report_section() if self.tune_result is not None else None,
        )

    def environment(self) -> dict:
        import numpy
        import safetensors
        import transformers

        from ... import __version__

        peak_rss = peak_rss_bytes()
        return {
            "reasonany_gui": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": numpy.__version__,
            "platform": platform.platform(),
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device)
            if self.device is not None and self.device.type == "cuda"
            else platform.processor() or "cpu",
            "peak_host_rss_bytes": int(peak_rss),
        }


class _GroupedPlot:
    """The live plot of a map scored in several groups (low-RAM mode): one plot that fills in group by group.

    Each group's pass reports a grid with only its own cells (NaN elsewhere, and only as many layers as it
    reaches); the cells of the finished groups keep their final values, and the sample count runs over all the
    passes. Cells are never split between groups (importance.tensor_groups cuts between modules), so every
    value shown is a whole cell's mean. Every other event goes through unchanged."""

    def __init__(self, listener, groups: int, samples: int) -> None:
        self.listener = listener
        self.groups = groups
        self.samples = samples
        self.group = 0
        self._done: np.ndarray | None = None  # the finished groups' cells
        self._last: np.ndarray | None = None  # the latest grid of group `_last_group`
        self._last_group = -1

    def __call__(self, event) -> None:
        if self.groups <= 1 or not isinstance(event, SensitivityUpdate):
            self.listener(event)
            return
        grid = np.asarray(event.grid, dtype=float)
        if self._last is not None and self._last_group != self.group:  # a group finished: keep its cells
            self._done = _overlay(self._done, self._last)
        self._last, self._last_group = grid, self.group
        shown = _overlay(self._done, grid)
        self.listener(
            dataclasses.replace(
                event,
                samples_done=self.group * self.samples + event.samples_done,
                samples_total=self.groups * self.samples,
                grid=shown,
            )
        )


def _overlay(under: np.ndarray | None, over: np.ndarray) -> np.ndarray:
    """`over`'s cells where it has values, `under`'s elsewhere (grids padded with NaN to the larger shape)."""
    if under is None:
        return over
    rows = max(under.shape[0], over.shape[0])
    cols = max(under.shape[1] if under.ndim == 2 else 0, over.shape[1] if over.ndim == 2 else 0)
    out = np.full((rows, cols), np.nan)
    out[: under.shape[0], : under.shape[1]] = under
    top = np.full((rows, cols), np.nan)
    top[: over.shape[0], : over.shape[1]] = over
    return np.where(np.isnan(top), out, top)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (ru_maxrss on Unix, peak working set on Windows)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    except ImportError:
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0))


def oom_error(cfg: MergeConfig, while_doing: str) -> OutOfMemoryError:
    """The out-of-memory message, with the next settings that lower peak memory and are not already on.

    Why in this order: host accumulators free 4 B/param of device memory at a small speed cost; gradient
    checkpointing frees most activations for ~30 % more time; a shorter max length cuts activations but
    changes the scores. Fewer samples save time, not memory (batch of one), so they are never suggested.
    """
    fixes: dict[str, object] = {}
    if cfg.accumulators != "host":
        fixes["accumulators"] = "host"
    if not cfg.gradient_checkpointing:
        fixes["gradient_checkpointing"] = True
    if not fixes and cfg.max_length > 64:
        fixes["max_length"] = max(64, cfg.max_length // 2)
    if not fixes:
        fixes["device"] = "cpu"
    return OutOfMemoryError(
        f"The GPU ran out of memory while {while_doing}. Keep the score accumulators in host memory, turn on "
        f"gradient checkpointing, or use a shorter maximum length (now {cfg.max_length} tokens; samples are cut "
        "to it). Close other programs that use the GPU.",
        fixes,
    )


def out_dtype_for(setting: str, base_dtype: str) -> torch.dtype:
    """The saved weights' dtype for the `dtype` setting ("auto": the base's own float type, else float32).

    Public: the live merge of the tuner and the evaluation stores its weights the way the saved model will."""
    name = base_dtype if setting == "auto" else setting
    return getattr(torch, name) if name in ("float32", "float16", "bfloat16") else torch.float32
