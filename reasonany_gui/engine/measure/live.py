"""Merges held in memory for measuring: one loaded model whose weights each candidate overwrites.

Why: the tuner and Evaluate's Task Arithmetic comparison measure many merges. Writing each to disk and loading
it back would cost a full write and load per candidate. Instead one model (the base's architecture, loaded once
on the run's device) receives each candidate's tensors, streamed one at a time from the memory-mapped inputs
through the same `Pipeline.merge_one` the writer uses, rounded to the dtype Save would store. So memory stays
at one model plus one tensor in flight, whatever the number of candidates, and a candidate measures exactly
what Save would write (up to the evaluation dtype).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..core.devices import resolve_device
from ..core.errors import InputError, OutOfMemoryError
from ..core.events import CancelToken
from ..data.calibration import load_tokenizer
from ..io.loading import load_model
from ..run.pipeline import Pipeline
from ..settings.config import MergeConfig


def eval_dtype(device: torch.device) -> torch.dtype:
    """float32 on the CPU (exact; CPU half precision is slow); bfloat16 on a GPU that has it (a 7B model fits)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


class LiveMerge:
    """One model instance that any merge of the pipeline's trio can be written into, in place."""

    def __init__(self, pipeline: Pipeline, device: torch.device | str | None = None) -> None:
        self.pipeline = pipeline
        if not pipeline.ckpts:
            pipeline.check()
        self.device = resolve_device(str(device)) if device is not None else (pipeline.device or torch.device("cpu"))
        self.dtype = eval_dtype(self.device)
        base = pipeline.ckpts["base"]
        try:
            self.model = load_model(base.path, self.dtype, self.device, allow_pickle=pipeline.config.allow_pickle)
        except torch.cuda.OutOfMemoryError:
            raise OutOfMemoryError(
                f"The model does not fit in the memory of {self.device} for the checks. Use the "
                "CPU for them (slower), or close other programs that use the GPU.",
                {"device": "cpu"},
            ) from None
        self.model.eval()
        state = self.model.state_dict()
        self.targets = {}
        aliases = pipeline.aliases()
        missing = []
        for name in base.names:
            if aliases.get(name) is not None:
                continue  # a tied head: the same storage as the embedding, written through it
            if name in state:
                self.targets[name] = state[name]
            elif base.tensors[name].is_float:
                missing.append(name)
        if missing:
            raise InputError(
                f"The loaded model has no parameter named {missing[0]} (and {len(missing) - 1} more), so "
                "merges cannot be measured in memory. The checkpoint's tensor names do not match its "
                "architecture in transformers."
            )

    def apply(self, cancel: CancelToken | None = None) -> float:
        """Write the pipeline's current merge (its config and selection) into the model.

        Returns ||θ − θ_b||², the size of the change to the base (the tuner's tie-break)."""
        from ..io.output_checks import out_dtype_for

        p = self.pipeline
        base, rsn, dom = (p.ckpts[r] for r in ("base", "reasoning", "domain"))
        store_dtype = out_dtype_for(p.config.dtype, base.storage_dtype)
        change = 0.0
        with torch.no_grad():
            for name, target in self.targets.items():
                if cancel is not None:
                    cancel.check()
                if not base.tensors[name].is_float:
                    continue
                merged = p.merge_one(name, base, rsn, dom, p.selection, store_dtype).float()
                change += float((merged - base.get(name).float()).pow(2).sum())
                target.copy_(merged.reshape(target.shape).to(device=self.device, dtype=target.dtype))
                del merged
        for ckpt in (base, rsn, dom):
            ckpt.release_maps()
        return change

    def close(self) -> None:
        del self.model
        self.targets = {}
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


@contextmanager
def task_arithmetic_merged(
    cfg: MergeConfig, device: torch.device | str, cancel: CancelToken
) -> Iterator[tuple[torch.nn.Module, Any]]:
    """θ_b + τ_r + τ_d (Task Arithmetic at strengths 1/1) merged in memory, and the tokenizer: the simple baseline
    that Evaluate and the app's own-question answers put next to a merge. Nothing is written; closed afterwards."""
    ta = cfg.replace(
        method="task_arithmetic", reasoning_scale=1.0, domain_scale=1.0, out=None, device=str(device), score_cache=True
    )
    pipe = Pipeline(ta, cancel=cancel)
    try:
        pipe.check()
        pipe.select(announce=False)
        live = LiveMerge(pipe, device)
        try:
            live.apply(cancel)
            yield live.model, load_tokenizer(pipe.ckpts[cfg.tokenizer_source].path)
        finally:
            live.close()
    finally:
        pipe.close()
