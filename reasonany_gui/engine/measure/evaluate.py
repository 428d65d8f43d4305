"""Post-merge checks a user can run without writing code: perplexity on held-out texts and greedy replies.

Why these two: they are what a domain expert can judge after a merge. Perplexity of the base, both experts
and the merged model on held-out texts of each skill says, in one table, whether the merge kept what each
expert learned (the merged model should sit near the reasoning expert on reasoning text and near the domain
expert on domain text). A few greedy replies to the same prompts show it in words.

Choices:
- held-out texts: when a data set was the run's calibration data, the rows the seeded calibration choice
  used are skipped, and the last `max_samples` of the rest are taken (the calibration choice is reproduced
  with `calibration.choose_indices`); other data sets give their last `max_samples` rows;
- perplexity = exp(total negative log-likelihood / total predicted tokens), batch of one, no padding,
  texts rendered exactly as for calibration (chat template for chat and prompt/response rows);
- generation is greedy, with the chat template when the tokenizer has one, stopping at the model's end
  tokens (generation_config eos ids, the tokenizer's eos and <|im_end|> when it is a special token).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core.devices import resolve_device
from ..core.errors import InputError
from ..core.events import CancelToken, Listener, Log, Progress, StageFinished, StageStarted, null_listener
from ..core.paths import RUN_DIR
from ..data import calibration, demo
from ..data.presets import resolve_spec
from ..data.samples import Sample, load_samples
from ..io.checkpoints import Checkpoint
from ..io.loading import load_model
from ..io.resolve import resolve_model
from ..settings.config import ROLES, MergeConfig
from .live import eval_dtype
from .verdicts import VERDICT_WORDS, kept_level

EVAL_FILE = "eval.json"
#: the models a check measures: the three inputs, then the merge
EVAL_ROLES = (*ROLES, "merged")


# ============================================================================ loading
def load_for_eval(model_dir: Path, device: torch.device | str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode: safetensors only, never remote code."""
    device = resolve_device(str(device))
    model = load_model(Path(model_dir), eval_dtype(device), device)
    model.eval()
    return model, calibration.load_tokenizer(Path(model_dir))


def check_folders(models: dict[str, Path], allow_pickle: bool = False) -> None:
    """Open every model folder's config, index and weight headers before any work (InputError naming the file):
    a merged folder with a deleted shard used to fail with a raw FileNotFoundError after the other models had
    been measured (issue 22)."""
    for role, path in models.items():
        try:
            Checkpoint(path, allow_pickle).close()
        except InputError as exc:
            raise InputError(f"The {role} model: {exc}") from None


# ============================================================================ perplexity
def heldout_samples(spec: str, max_samples: int, exclude: set[int] | None = None) -> list[Sample]:
    """The last `max_samples` usable rows of `spec` that are not in `exclude` (file order kept)."""
    rows = load_samples(spec)
    keep = [s for i, s in enumerate(rows) if not exclude or i not in exclude]
    return keep[-max_samples:] if max_samples > 0 else []


def encode_sample(sample: Sample, tokenizer: Any, max_length: int) -> list[int]:
    """Token ids exactly as calibration renders the sample (chat template included), cut to max_length."""
    text, _, templated = calibration.render(sample, tokenizer)
    ids = tokenizer(text, add_special_tokens=not templated, verbose=False)["input_ids"]
    return list(ids)[:max_length]


@torch.no_grad()
def nll_sum(model: Any, ids: list[int]) -> tuple[float, int]:
    """Summed next-token negative log-likelihood (float64) and the number of predicted tokens."""
    if len(ids) < 2:
        return 0.0, 0
    device = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=device)
    logits = model(input_ids=x).logits[0, :-1].double()
    nll = torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum")
    return float(nll), len(ids) - 1


def perplexity_of(
    model: Any,
    tokenizer: Any,
    samples: list[Sample],
    max_length: int = 256,
    cancel: CancelToken | None = None,
    on_sample: Callable[[int, int], None] | None = None,
) -> float:
    """exp(total NLL / total predicted tokens) of a loaded model over the samples."""
    total, count = 0.0, 0
    for i, s in enumerate(samples):
        if cancel is not None:
            cancel.check()
        nll, n = nll_sum(model, encode_sample(s, tokenizer, max_length))
        total, count = total + nll, count + n
        if on_sample is not None:
            on_sample(i + 1, len(samples))
    if count == 0:
        raise InputError(
            "No held-out text has two or more tokens to measure perplexity on; use longer texts or raise max_length."
        )
    return math.exp(total / count)


def perplexity(
    model_dir: Path,
    texts_spec: str,
    max_samples: int = 32,
    max_length: int = 256,
    device: str = "cpu",
    cancel: CancelToken | None = None,
) -> float:
    """Perplexity of the model in `model_dir` on the last `max_samples` rows of `texts_spec`."""
    samples = heldout_samples(texts_spec, max_samples)
    if not samples:
        raise InputError(f"max_samples = {max_samples} leaves no text of {texts_spec} to measure: use 1 or more.")
    model, tokenizer = load_for_eval(Path(model_dir), device)
    return perplexity_of(model, tokenizer, samples, max_length, cancel)


# ============================================================================ generation
def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends a reply: generation_config's eos, the tokenizer's eos, and <|im_end|> if special."""
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for v in [*(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]), tokenizer.eos_token_id]:
        if isinstance(v, int) and v not in ids:
            ids.append(v)
    for token in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        if token in getattr(tokenizer, "all_special_tokens", []) or token in getattr(
            tokenizer, "added_tokens_encoder", {}
        ):
            tid = tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid >= 0 and tid not in ids:
                ids.append(tid)
    return ids


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The user prompt as the model expects it: one user turn plus the generation prompt, or the raw text."""
    if calibration.has_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(prompt)["input_ids"])


class _CancelEachToken:
    """A transformers stopping criterion that checks the cancel token at every generated token (it raises
    CancelledError out of `generate`). Why: a batch of 64 long replies took 100 s before a cancel took effect."""

    def __init__(self, cancel: CancelToken) -> None:
        self.cancel = cancel

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_kw: Any) -> torch.Tensor:
        self.cancel.check()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


@torch.no_grad()
def greedy_ids(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    max_new_tokens: int = 64,
    batch_size: int = 64,
    cancel: CancelToken | None = None,
) -> list[list[int]]:
    """Greedy reply token ids per prompt, up to and including the first stop token; batched with left padding.
    `cancel` is checked before each batch and at every generated token.

    Why batched by hand-checked left padding: the benchmark scores thousands of replies on a CPU; HF
    `generate` derives position ids from the attention mask, so padded rows give the same tokens as
    unpadded ones (tests/test_evaluate.py checks it).
    """
    if not prompts:
        return []
    from transformers import StoppingCriteriaList

    stopping = StoppingCriteriaList([_CancelEachToken(cancel)]) if cancel is not None else None
    device = next(model.parameters()).device
    stops = stop_token_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0] if stops else 0
    outputs: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        if cancel is not None:
            cancel.check()
        batch = [prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
        width = max(len(b) for b in batch)
        x = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, ids in enumerate(batch):
            x[r, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[r, width - len(ids) :] = 1
        out = model.generate(
            input_ids=x.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stops or None,
            pad_token_id=pad,
            temperature=None,
            top_p=None,
            top_k=None,
            stopping_criteria=stopping,
        )
        for row in out[:, width:].tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
            outputs.append(row[:cut])
    return outputs


def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    max_new_tokens: int = 64,
    batch_size: int = 64,
    skip_special_tokens: bool = True,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Greedy replies (greedy_ids), decoded without the stop token (and other special tokens unless asked), stripped."""
    stops = set(stop_token_ids(model, tokenizer))
    return [
        tokenizer.decode(ids[:-1] if ids and ids[-1] in stops else ids, skip_special_tokens=skip_special_tokens).strip()
        for ids in greedy_ids(model, tokenizer, prompts, max_new_tokens, batch_size, cancel)
    ]


def generate(model_dir: Path, prompts: list[str], max_new_tokens: int = 64, device: str = "cpu") -> list[str]:
    """Greedy replies of the model in `model_dir` to each prompt (chat template if the tokenizer has one)."""
    model, tokenizer = load_for_eval(Path(model_dir), device)
    return greedy_generate(model, tokenizer, list(prompts), max_new_tokens)


# ============================================================================ a whole run
def _run_config(out_dir: Path) -> MergeConfig:
    path = Path(out_dir) / RUN_DIR / "run.yaml"
    if not path.is_file():
        raise InputError(
            f"{out_dir} is not a ReasonAny output folder: {path} is missing. Pick the folder a merge "
            "wrote (it holds reasonany/run.yaml)."
        )
    return MergeConfig.from_yaml(path)


def calibration_rows(cfg: MergeConfig, spec: str) -> set[int]:
    """Row indices the run's seeded calibration choice used from `spec` (empty when it was not calibration data)."""
    used: set[int] = set()
    if not cfg.needs_scores:
        return used
    for calib in (cfg.reasoning_data, cfg.domain_data):
        if _same_data(calib, spec):
            available = len(load_samples(calib))
            used |= set(calibration.choose_indices(available, cfg.samples, cfg.seed))
    return used


def _same_data(a: str, b: str) -> bool:
    try:
        return resolve_spec(a).resolve() == resolve_spec(b).resolve()
    except InputError:
        return False


def default_prompts(samples_by_spec: dict[str, list[Sample]], per_spec: int = 1) -> list[str]:
    """The user turn of the first held-out prompt/response or chat row of each data set."""
    prompts: list[str] = []
    for samples in samples_by_spec.values():
        found = 0
        for s in samples:
            user = (
                s.prompt
                if s.kind == "pair"
                else next((m["content"] for m in s.messages or [] if m.get("role") == "user"), None)
            )
            if user and user not in prompts:
                prompts.append(user)
                found += 1
                if found >= per_spec:
                    break
    return prompts


def evaluate_run(
    out_dir: Path,
    data: list[str],
    prompts: list[str] | None = None,
    max_samples: int = 32,
    max_length: int = 256,
    device: str = "auto",
    listener: Listener | None = None,
    cancel: CancelToken | None = None,
    max_new_tokens: int = 64,
    compare: bool = True,
) -> dict[str, Any]:
    """Perplexity of base, reasoning, domain and merged on held-out texts of each data set, plus greedy replies.

    Writes OUT/reasonany/eval.json and returns the same dict:
    {"perplexity": {data: {role: ppl}}, "generations": [{"prompt", "outputs": {role: text}}],
     "heldout": {data: {"samples", "excluded_calibration_rows"}}, "models": {role: path}, "warnings",
     "kept": {"merged"|"task_arithmetic": {skill: fraction}}, "verdict": [plain-words lines], ...}.
    With `compare`, Task Arithmetic at λ 1/1 is merged in memory and measured on the same texts (perplexity key
    "task_arithmetic"): a merge that the simplest baseline beats is called out. The report and model card of the
    output folder are updated too (one code path for the CLI and the app).
    """
    listener = listener or null_listener
    cancel = cancel or CancelToken()
    out_dir = Path(out_dir)
    cfg = _run_config(out_dir)
    if not data:
        raise InputError("No evaluation data given: pass at least one data file or built-in set (builtin:NAME).")
    started = time.perf_counter()
    dev = resolve_device(device)
    models = {role: resolve_model(getattr(cfg, role), cfg.allow_download) for role in ROLES}
    models["merged"] = out_dir
    check_folders(models, cfg.allow_pickle)
    warnings: list[str] = []
    held: dict[str, list[Sample]] = {}
    heldout_info: dict[str, dict[str, Any]] = {}
    for spec in data:
        exclude = calibration_rows(cfg, spec)
        samples = heldout_samples(spec, max_samples, exclude)
        if not samples:
            samples = heldout_samples(spec, max_samples)
            warnings.append(
                f"Every row of {spec} was used for calibration: its perplexity is measured on "
                "calibration texts, not held-out ones. Pass a separate test file for a fair check."
            )
        held[spec] = samples
        heldout_info[spec] = {"samples": len(samples), "excluded_calibration_rows": len(exclude)}
    if prompts is None:
        prompts = demo.demo_prompts({r: getattr(cfg, r) for r in ROLES}) or default_prompts(held)
    result: dict[str, Any] = {
        "perplexity": {spec: {} for spec in data},
        "generations": [{"prompt": p, "outputs": {}} for p in prompts],
        "heldout": heldout_info,
        "models": {r: str(p) for r, p in models.items()},
        "max_samples": max_samples,
        "max_length": max_length,
        "max_new_tokens": max_new_tokens,
        "device": str(dev),
        "warnings": warnings,
    }
    for w in warnings:
        listener(Log("warning", w))
    per_model = sum(len(s) for s in held.values()) + len(prompts)
    for index, role in enumerate(EVAL_ROLES):
        stage = f"eval:{role}"
        listener(StageStarted(stage, f"Evaluating the {role} model", index, len(EVAL_ROLES)))
        t0 = time.perf_counter()
        cancel.check()
        model, tokenizer = load_for_eval(models[role], dev)
        done = 0
        for spec, samples in held.items():

            def tick(
                i: int, n: int, _base: int = done, _stage: str = stage, _index: int = index, _spec: str = spec
            ) -> None:
                frac = (_base + i) / max(per_model, 1)
                listener(Progress(_stage, frac, (_index + frac) / len(EVAL_ROLES), f"{_spec}: text {i}/{n}"))

            result["perplexity"][spec][role] = perplexity_of(model, tokenizer, samples, max_length, cancel, tick)
            done += len(samples)
        cancel.check()
        replies = greedy_generate(model, tokenizer, prompts, max_new_tokens, cancel=cancel)
        for g, text in zip(result["generations"], replies, strict=True):
            g["outputs"][role] = text
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        listener(StageFinished(stage, time.perf_counter() - t0))
    if compare:
        cancel.check()
        stage = "eval:task_arithmetic"
        listener(
            StageStarted(
                stage, "Evaluating Task Arithmetic (strengths 1/1) for comparison", len(EVAL_ROLES), len(EVAL_ROLES) + 1
            )
        )
        t0 = time.perf_counter()
        try:
            ta = task_arithmetic_perplexity(cfg, held, max_length, dev, cancel)
        except InputError as exc:  # the input models moved or changed since the run
            warnings.append(f"Task Arithmetic could not be measured for comparison: {exc}")
        else:
            for spec, value in ta.items():
                result["perplexity"][spec]["task_arithmetic"] = value
        listener(StageFinished(stage, time.perf_counter() - t0))
    result["kept"] = kept_fractions(cfg, result["perplexity"])
    verdict = verdict_lines(result["kept"])
    result["verdict"] = verdict
    for line in verdict:
        listener(Log("warning" if line.startswith("Warning") else "info", line))
    result["seconds"] = round(time.perf_counter() - started, 3)
    path = out_dir / RUN_DIR / EVAL_FILE
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    from ..output import report

    if (out_dir / RUN_DIR / "report.json").is_file():  # one code path for the CLI and the app
        report.add_evaluation(out_dir, result)
    return result


def task_arithmetic_perplexity(
    cfg: MergeConfig,
    held: dict[str, list[Sample]],
    max_length: int,
    device: torch.device,
    cancel: CancelToken,
) -> dict[str, float]:
    """Perplexity of θ_b + τ_r + τ_d on the same held-out texts: merged in memory (live.LiveMerge), not written."""
    from .live import task_arithmetic_merged

    with task_arithmetic_merged(cfg, device, cancel) as (model, tokenizer):
        return {spec: perplexity_of(model, tokenizer, samples, max_length, cancel) for spec, samples in held.items()}


def kept_fractions(cfg: MergeConfig, ppl: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Share of each expert's improvement over the base that a merge keeps, on that expert's own held-out data.

    kept = (log ppl_base − log ppl_model) / (log ppl_base − log ppl_expert), i.e. on the mean per-token loss;
    1 = as good as the expert, 0 = no better than the base. Only for data that is the run's reasoning or
    domain data, and only where the expert is better than the base there."""
    out: dict[str, dict[str, float]] = {}
    for skill, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
        vals = next((v for s, v in ppl.items() if _same_data(s, spec)), None)
        if not vals or skill not in vals or "base" not in vals:
            continue
        gain = math.log(vals["base"]) - math.log(vals[skill])
        if gain <= 0:
            continue
        for model in ("merged", "task_arithmetic"):
            if model in vals:
                out.setdefault(model, {})[skill] = round((math.log(vals["base"]) - math.log(vals[model])) / gain, 4)
    return out


def verdict_lines(kept: dict[str, dict[str, float]]) -> list[str]:
    """Plain words, the app's (strengths, not λ: shown as is on screen, in report.html and the card): did the
    merge keep each skill, and how does it compare with Task Arithmetic at strengths 1/1?"""
    merged, ta = kept.get("merged", {}), kept.get("task_arithmetic", {})
    lines = []
    for skill, v in merged.items():
        word = VERDICT_WORDS[kept_level(v)]
        lines.append(
            f"The merged model {word} the {skill} skill: it keeps {100 * v:.0f} % of the {skill} model's gain "
            f"on held-out {skill} data."
        )
        if v <= 0:
            lines.append(
                f"Warning: the merged model kept {100 * max(v, 0):.0f} % of the {skill} gain: on {skill} data "
                "it is no better than the base model."
            )
    shared = [s for s in merged if s in ta]
    if shared:
        m_mean = sum(merged[s] for s in shared) / len(shared)
        t_mean = sum(ta[s] for s in shared) / len(shared)
        both = ", ".join(f"{100 * ta[s]:.0f} % of the {s} gain" for s in shared)
        lines.append(f"Task Arithmetic (strengths 1/1) on the same data keeps {both}.")  # the app's word, not λ
        if t_mean > m_mean + 0.05:
            lines.append(
                "Warning: plain Task Arithmetic keeps more of the two skills than this merge. Run "
                '"Find a good setting" (reasonany tune) before you use this merge.'
            )
    return lines
