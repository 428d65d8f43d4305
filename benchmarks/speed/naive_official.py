"""A naive identification that does what the official ReasonAny scripts do, for speed and memory baselines.

Why it exists: issue 2 asks how much faster and leaner our pipeline is than the official approach on the
*same* models and samples. The official scripts cannot be run as a library (argparse `main`, parquet
inputs, a CUDA default), so this module re-implements their identification step — written for this
project, following the behaviour described in docs/FINDINGS.md, not copied:

- every model is loaded in bfloat16, whatever it is stored in;
- the base model and the expert being scored are resident together on the device;
- each text is tokenized with ``padding="max_length"`` to 512 tokens (pad = EOS), and the labels are the
  padded input ids, so the pads are in the loss (a bug we do not copy in the engine);
- scores accumulate in ``torch.zeros_like(param)``, i.e. in bfloat16;
- gradients of the whole model coexist after each backward (``model.zero_grad()`` before the pass);
- each Top/Bottom-k concatenates all scores into one tensor for ``torch.kthvalue``;
- a tensor is "selected" when any of its elements passes the threshold (tensor granularity).

`dtype` and `max_length` are parameters only so the benchmark can take the baseline apart (how much of the
gap is padding, how much is CPU bfloat16); their defaults are the official behaviour.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

OFFICIAL_MAX_LENGTH = 512


@dataclass
class NaiveResult:
    """What the naive identification selected and what it cost."""

    reasoning_names: set[str]
    domain_names: set[str]
    seconds: dict[str, float] = field(default_factory=dict)
    backward_passes: int = 0
    tokens_in_loss: int = 0  # pads included, as the official code trains on them
    real_tokens: int = 0


def load_bf16(path: str | Path, device: torch.device, dtype: torch.dtype = torch.bfloat16):
    """from_pretrained in the given dtype (official: bfloat16) and moved to the device."""
    import transformers
    from transformers import AutoModelForCausalLM

    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(str(path), **{key: dtype})
    return model.to(device)


def task_vector(base, expert) -> dict[str, torch.Tensor]:
    """expert − base per parameter, on the CPU (the official code computes it before scoring)."""
    b = dict(base.named_parameters())
    with torch.no_grad():
        return {n: (p.data - b[n].data).cpu() for n, p in expert.named_parameters() if n in b}


def importance(
    model,
    tokenizer,
    texts: list[str],
    device: torch.device,
    snip: bool = False,
    max_length: int = OFFICIAL_MAX_LENGTH,
    stats: NaiveResult | None = None,
) -> dict[str, torch.Tensor]:
    """Mean |g| (or |θ·g|) per element, accumulated in the parameter dtype, pads in the loss."""
    model.to(device)
    model.eval()
    scores = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    tokenizer.pad_token = tokenizer.eos_token
    for text in texts:
        enc = tokenizer(text, return_tensors="pt", max_length=max_length, truncation=True, padding="max_length").to(
            device
        )
        labels = enc["input_ids"]
        model.zero_grad()
        loss = model(**enc, labels=labels).loss
        loss.backward()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.grad is not None:
                    scores[n] += torch.abs(p.data * p.grad) if snip else torch.abs(p.grad)
        if stats is not None:
            stats.backward_passes += 1
            stats.tokens_in_loss += int(labels.numel()) - 1
            stats.real_tokens += int(enc["attention_mask"].sum())
    for n in scores:
        scores[n] /= len(texts)
    return scores


def selected_names(scores: dict[str, torch.Tensor], ratio: float, lowest: bool) -> set[str]:
    """Concatenate every score, kthvalue for the threshold, keep tensors with any element past it."""
    flat = torch.cat([v.flatten() for v in scores.values()])
    k = int(len(flat) * ratio)
    if k <= 0:
        return set()
    if lowest:
        threshold = torch.kthvalue(flat, k).values
        return {n for n, s in scores.items() if bool((s <= threshold).any())}
    threshold = torch.kthvalue(flat, len(flat) - k).values
    return {n for n, s in scores.items() if bool((s >= threshold).any())}


def identify(
    base_path: str | Path,
    reasoning_path: str | Path,
    domain_path: str | Path,
    reasoning_texts: list[str],
    domain_texts: list[str],
    reasoning_ratio: float = 0.05,
    domain_ratio: float = 0.05,
    device: str | torch.device = "cpu",
    intersect: bool = True,
    reasoning_lowest: bool = True,
    snip: bool = False,
    dtype: torch.dtype = torch.bfloat16,
    max_length: int = OFFICIAL_MAX_LENGTH,
) -> NaiveResult:
    """The official flow up to the disjoint step: domain expert first, then reasoning, base resident.

    Returns the disjoint sets of selected tensor names and per-phase wall times (load, task vectors,
    scoring, selection). `reasoning_lowest=True` is the paper's bottom-k for reasoning.
    """
    from transformers import AutoTokenizer

    device = torch.device(device)
    res = NaiveResult(set(), set())
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        res.seconds[name] = res.seconds.get(name, 0.0) + now - t
        t = now

    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    base = load_bf16(base_path, device, dtype)
    lap("load")
    picked: dict[str, set[str]] = {}
    for role, path, texts, ratio, lowest in (
        ("domain", domain_path, domain_texts, domain_ratio, False),
        ("reasoning", reasoning_path, reasoning_texts, reasoning_ratio, reasoning_lowest),
    ):
        expert = load_bf16(path, device, dtype)
        lap("load")
        tv = task_vector(base, expert)  # kept, as the official script keeps it for the merge
        lap("task_vectors")
        s_expert = importance(expert, tokenizer, texts, device, snip, max_length, res)
        s_base = importance(base, tokenizer, texts, device, snip, max_length, res)
        lap("scoring")
        names = selected_names(s_expert, ratio, lowest)
        if intersect:
            names &= selected_names(s_base, ratio, lowest)
        picked[role] = names
        lap("selection")
        del expert, s_expert, s_base, tv
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    res.domain_names = picked["domain"] - picked["reasoning"]
    res.reasoning_names = picked["reasoning"] - picked["domain"]
    lap("selection")
    res.seconds["total"] = sum(res.seconds.values())
    return res
