"""The words the app shows for each setting: one label and one plain-language tooltip per field.

Why in one place: the settings form, the error dialogs ("Retry with these settings") and the run
summary all name settings the same way, in words a domain expert understands.
"""

from __future__ import annotations

LABELS: dict[str, str] = {
    "base": "Base model",
    "reasoning": "Reasoning model",
    "domain": "Domain model",
    "reasoning_data": "Reasoning data",
    "domain_data": "Domain data",
    "method": "Method",
    "reasoning_ratio": "Reasoning share",
    "domain_ratio": "Domain share",
    "reasoning_scale": "Reasoning strength",
    "domain_scale": "Domain strength",
    "score": "Importance score",
    "samples": "Samples per data set",
    "max_length": "Max tokens per sample",
    "scope": "Ranking scope",
    "intersect": "Agree with base model",
    "select_embeddings": "Include embeddings",
    "response_only": "Score answers only",
    "granularity": "Granularity",
    "device": "Device",
    "dtype": "Saved precision",
    "compute_dtype": "Working precision",
    "accumulators": "Score storage",
    "gradient_checkpointing": "Save memory on long samples",
    "seed": "Random seed",
    "tokenizer_source": "Tokenizer and chat template from",
    "shard_size": "File size per shard",
    "score_cache": "Keep scores for re-tuning",
    "score_precision": "Kept score precision",
}

TOOLTIPS: dict[str, str] = {
    "base": "The original model both experts were fine-tuned from.",
    "reasoning": "The model that thinks step by step (for example an R1-distilled model).",
    "domain": "The model that knows your field (safety, medicine, finance...).",
    "reasoning_data": "Example texts that show the reasoning skill; used to find where it lives in the model.",
    "domain_data": "Example texts from your field; used to find where the domain skill lives in the model.",
    "method": "How the models are combined. ReasonAny is recommended; the others are for comparison.",
    "reasoning_ratio": "Fraction of weights taken from the reasoning model (the least sensitive ones).",
    "domain_ratio": "Fraction of weights taken from the domain model (the most sensitive ones).",
    "reasoning_scale": "How strongly the reasoning changes are applied (1 = as learned).",
    "domain_scale": "How strongly the domain changes are applied (1 = as learned).",
    "score": "How the importance of each weight is measured: weight x gradient (recommended: it separated the "
             "skills best in our benchmark), gradient size as in the paper, or squared gradient.",
    "samples": "How many example texts are read from each data set. More is steadier but slower.",
    "max_length": "Longer texts are cut to this many tokens. Shorter is faster and uses less memory.",
    "scope": "Rank each weight matrix on its own (recommended) or all weights of the model together (global).",
    "intersect": "Keep a weight only if the base model rates it the same way as the expert does "
                 "(off by default: it lost skills in our benchmark).",
    "select_embeddings": "Allow the word-embedding tables to be merged too (usually left off).",
    "response_only": "For question/answer data, measure importance on the answers only.",
    "granularity": "Choose single weights (as in the paper) or whole matrices (older scripts; comparison only).",
    "device": "Where the work runs. A GPU is much faster; its free memory is shown.",
    "dtype": "Number format of the saved model. 'Same as base' keeps the size of the original.",
    "compute_dtype": "Number format while measuring importance. Lower precision is faster and uses less memory.",
    "accumulators": "Where importance scores are kept while they add up: on the GPU (fast) or in RAM (saves GPU memory).",
    "gradient_checkpointing": "Recompute parts of the model to use less GPU memory on long samples (slower).",
    "seed": "Makes the run repeatable: the same seed gives the same model.",
    "tokenizer_source": "The merged model uses this model's tokenizer and chat template.",
    "shard_size": "The model is saved in files of at most this size (e.g. 5GB).",
    "score_cache": "Keep the importance scores so changing shares or strengths later takes seconds, not a new run.",
    "score_precision": "Precision of the kept scores: lower takes half the disk space.",
}

#: the "strength follows share" link: its label and its one-sentence explanation
FOLLOW_LABEL = "Strength follows share (1 ÷ share)"
FOLLOW_HELP = ("A smaller share moves fewer weights, so each must be applied more strongly for the skill to "
               "survive; strength = 1 ÷ share keeps the expert's total change about the same (at most 10).")
#: shown next to the shares and strengths while the built-in demo's own setting is in use
DEMO_VALUES_NOTE = ("These shares and strengths are the <b>demo's own setting</b>, tuned for its tiny "
                    "(0.85 M-parameter) models. Your own models start from the recommended 50 % and strength 2; "
                    "\"Find a good setting\" checks them on your own models.")

METHOD_TITLES: dict[str, str] = {
    "reasonany": "ReasonAny (recommended)",
    "task_arithmetic": "Task Arithmetic (comparison)",
    "ties": "TIES (comparison)",
    "dare": "DARE (comparison)",
    "linear": "Linear average (comparison)",
    "led": "LED-Merging (comparison)",
}

SCORE_TITLES: dict[str, str] = {
    "gradient": "Gradient size (as in the paper)",
    "snip": "Weight x gradient (SNIP, recommended)",
    "fisher": "Squared gradient (Fisher)",
}

SCOPE_TITLES: dict[str, str] = {"global": "Whole model", "tensor": "Each weight matrix"}

DTYPE_TITLES: dict[str, str] = {
    "auto": "Automatic",
    "bfloat16": "bfloat16 (half size)",
    "float16": "float16 (half size)",
    "float32": "float32 (full size)",
}

ACCUMULATOR_TITLES: dict[str, str] = {"auto": "Automatic", "device": "On the GPU (fast)",
                                      "host": "In RAM (saves GPU memory)"}

ROLE_TITLES: dict[str, str] = {"base": "Base model", "reasoning": "Reasoning model", "domain": "Domain model"}


def describe_value(field: str, value: object) -> str:
    """A setting and its value in words, e.g. 'Max tokens per sample: 256'."""
    label = LABELS.get(field, field.replace("_", " "))
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif field == "method":
        text = METHOD_TITLES.get(str(value), str(value))
    elif field == "scope":
        text = SCOPE_TITLES.get(str(value), str(value))
    elif field in ("dtype", "compute_dtype"):
        text = DTYPE_TITLES.get(str(value), str(value))
    elif field == "accumulators":
        text = ACCUMULATOR_TITLES.get(str(value), str(value))
    elif field == "device":
        text = {"cpu": "the CPU (slow, but no GPU memory needed)", "auto": "automatic"}.get(str(value), str(value))
    elif field == "max_length":
        text = f"{value} tokens"
    else:
        text = str(value)
    return f"{label}: {text}"


def human_bytes(n: float | int | None) -> str:
    if n is None:
        return "unknown"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_count(n: int | float | None) -> str:
    if n is None:
        return "unknown"
    n = float(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}".replace(".00", "")
    return f"{n:.0f}"


def human_seconds(s: float | None, rough: bool = False) -> str:
    """'42 s', '3 min 05 s', '2 h 10 min'; rough=True says 'under a minute' and rounds to minutes."""
    if s is None or s != s:
        return "estimating..."
    s = max(0.0, float(s))
    if rough:
        if s < 60:
            return "under a minute"
        if s < 3600:
            return f"about {round(s / 60):.0f} min"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s // 60:.0f} min {s % 60:02.0f} s"
    return f"{s // 3600:.0f} h {(s % 3600) // 60:02.0f} min"


def human_range(low: float, high: float) -> str:
    """A time estimate as a range: '10–30 s', '2–6 min', '1.5–3.0 h'; 'under a minute' when all of it is."""
    low, high = max(0.0, float(low)), max(0.0, float(high))
    if high < 60:
        return f"{max(1, round(low)):.0f}–{max(1, round(high)):.0f} s" if round(high) > round(low) else f"about {round(high):.0f} s"
    if high < 3600:
        a, b = max(1, round(low / 60)), max(1, round(high / 60))
        return f"about {b} min" if a == b else f"{a}–{b} min"
    a, b = low / 3600, high / 3600
    return f"about {b:.1f} h" if f"{a:.1f}" == f"{b:.1f}" else f"{a:.1f}–{b:.1f} h"
