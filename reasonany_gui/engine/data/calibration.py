"""Calibration data: read a user's file (or a built-in set), pick samples, tokenize them for scoring.

Why this module is strict and chatty: importance scores are only as good as the texts they are computed on,
and the people using the app are not programmers. So every file problem is an InputError that names the
file, the line or record, what was found and what is accepted; every silent adjustment (fewer samples than
asked, truncation, dropped samples) becomes a warning the GUI and the report show.

Choices that affect results (ALGORITHM.md §2, §4):
- samples are chosen with `random.Random(seed).sample(range(available), samples)`, then sorted, so a run is
  reproducible and the file order is kept (the official code takes the first rows, unshuffled);
- batch of one, never padded; a sample longer than `max_length` keeps its first `max_length` tokens;
- labels equal input_ids (the model shifts them); with `response_only` the prompt part is -100: for chat,
  everything up to and including the generation prompt of the last assistant turn;
- chat and prompt/response samples go through the tokenizer's chat template when it has one, so the texts
  look like what the model saw in fine-tuning; the rendered string is tokenized once, whole, so
  `response_only` changes only the labels, never the token ids.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError
from ..core.events import CancelToken
from .samples import Sample, load_samples, read_samples

#: bump when the rendering or tokenization rules change, so cached scores keyed on the fingerprint go stale
FORMAT_VERSION = "calibration-v1"
IGNORE_INDEX = -100


# ============================================================================ rendering
def has_chat_template(tokenizer: Any) -> bool:
    return bool(tokenizer is not None and getattr(tokenizer, "chat_template", None))


def _chat_of(sample: Sample) -> list[dict[str, Any]]:
    if sample.messages is not None:
        return sample.messages
    return [{"role": "user", "content": sample.prompt}, {"role": "assistant", "content": sample.response}]


def render(sample: Sample, tokenizer: Any = None) -> tuple[str, int, bool]:
    """The text the model reads, the character offset where scored text starts, and whether it is templated.

    The offset is 0 for text samples; for pair/chat samples it is the end of the prompt part: with a chat
    template, the longest common prefix of the full render and the render up to the last assistant turn
    with the generation prompt (templates like DeepSeek-R1's emit a generation prompt that is not a prefix
    of the rendered reply; the common prefix is still the right boundary).
    """
    if sample.kind == "text":
        return sample.text or "", 0, False
    messages = _chat_of(sample)
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if has_chat_template(tokenizer):
        full = _apply_template(tokenizer, messages, add_generation_prompt=False)
        if last is None:
            return full, len(full), True
        head = _apply_template(tokenizer, messages[:last], add_generation_prompt=True) if last else ""
        return full, _common_prefix(full, head), True
    if sample.kind == "pair":
        assert sample.response is not None, "a pair sample always has a response"
        head = f"{sample.prompt}\n\n"
        return head + sample.response, len(head), False
    full = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    if last is None:
        return full, len(full), False
    # boundary right after "assistant:", before the space: BPE tokenizers glue that space to the first word
    head = "".join(f"{m['role']}: {m['content']}\n" for m in messages[:last]) + "assistant:"
    return full, len(head), False


def _apply_template(tokenizer: Any, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
    try:
        out = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # jinja2 TemplateError / raise_exception() inside templates
        roles = "/".join(m["role"] for m in messages)
        raise InputError(
            f"The tokenizer's chat template rejected a sample with roles {roles}: {exc}. "
            "Some templates allow no system message or need user/assistant turns to alternate; "
            "adjust the data or pick another tokenizer source."
        ) from None
    return out if isinstance(out, str) else str(out)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _encode(tokenizer: Any, text: str, templated: bool, boundary: int) -> tuple[list[int], int]:
    """Token ids of the whole text and how many leading tokens belong to the prompt part (< boundary)."""
    add_special = not templated  # templates already contain BOS and friends
    try:
        enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=boundary > 0, verbose=False)
    except (NotImplementedError, ValueError):  # slow tokenizers have no offsets
        enc = tokenizer(text, add_special_tokens=add_special, verbose=False)
    ids = list(enc["input_ids"])
    if boundary <= 0:
        return ids, 0
    if boundary >= len(text):
        return ids, len(ids)
    offsets = enc.get("offset_mapping")
    if offsets is not None and len(offsets) == len(ids):
        # the prompt part ends at the first real token starting at or after the boundary; a token straddling it
        # counts as prompt; specials added by the tokenizer (BOS, EOS) have empty (0, 0) spans and are skipped
        for k, (start, end) in enumerate(offsets):
            if start >= boundary and end > start:
                return ids, k
        return ids, len(ids)
    head = tokenizer(text[:boundary], add_special_tokens=add_special, verbose=False)["input_ids"]
    return ids, min(len(head), len(ids))


#: a text is cut to max_length · CHARS_PER_TOKEN characters before it is tokenized (a 20 MB record once took
#: 7 GB and a minute to tokenize whole, only to be cut to 512 tokens); if the cut text gives fewer than
#: max_length + CUT_SLACK tokens, the cut is widened until it does or the whole text is used. Tokenizers are
#: local (a cut changes only the last few tokens), so the first max_length ids are those of the whole text.
CHARS_PER_TOKEN = 8
CUT_SLACK = 16


def _encode_cut(tokenizer: Any, text: str, templated: bool, boundary: int, max_length: int) -> tuple[list[int], int]:
    """_encode of the text's beginning: enough of it to give more than max_length tokens, or all of it."""
    limit = max_length * CHARS_PER_TOKEN + 64
    while len(text) > limit:
        ids, n_prompt = _encode(tokenizer, text[:limit], templated, boundary)
        if len(ids) > max_length + CUT_SLACK:
            return ids, n_prompt
        limit *= 4
    return _encode(tokenizer, text, templated, boundary)


# ============================================================================ preparing
@dataclass
class TokenizedSample:
    input_ids: torch.Tensor  # [1, T] int64
    labels: torch.Tensor  # [1, T] int64; -100 where not scored
    truncated: bool

    @property
    def scored_tokens(self) -> int:
        """Tokens that enter the loss: labels are shifted by one, so position 0 is never a target."""
        return int((self.labels[0, 1:] != IGNORE_INDEX).sum())


@dataclass
class CalibrationSet:
    spec: str
    path: Path
    samples: list[TokenizedSample]
    available: int
    requested: int
    used: int
    truncated: int
    dropped: int  # too short, or no scored token left
    tokens: int  # scored tokens in total
    fingerprint: str
    warnings: list[str] = field(default_factory=list)


def file_fingerprint(path: Path) -> str:
    """sha256 of the file's bytes (streamed: calibration parquet files can be large)."""
    from ..io.scorecache import file_sha256

    return file_sha256(path)


def _fingerprint(path: Path, samples: int, max_length: int, seed: int, response_only: bool, tokenizer: Any) -> str:
    settings = {
        "format": FORMAT_VERSION,
        "samples": samples,
        "max_length": max_length,
        "seed": seed,
        "response_only": bool(response_only),
        "vocab_size": len(tokenizer),
        "chat_template": getattr(tokenizer, "chat_template", None) or "",
    }
    h = hashlib.sha256(file_fingerprint(path).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


def choose_indices(available: int, samples: int, seed: int) -> list[int]:
    """The records used: all when there are not more than asked, else a seeded sample kept in file order."""
    if samples >= available:
        return list(range(available))
    return sorted(random.Random(seed).sample(range(available), samples))


def prepare(
    spec: str,
    tokenizer: Any,
    samples: int,
    max_length: int,
    seed: int,
    response_only: bool = False,
    cancel: CancelToken | None = None,
) -> CalibrationSet:
    """Load, choose, render and tokenize: the exact tensors the importance pass feeds the model.

    `cancel` (a CancelToken) is checked between samples."""
    if not isinstance(samples, int) or samples < 1:
        raise InputError(f"samples = {samples!r} must be a whole number of at least 1.")
    if not isinstance(max_length, int) or max_length < 2:
        raise InputError(f"max_length = {max_length!r} must be a whole number of at least 2.")
    records, skipped, path = read_samples(spec)
    available = len(records)
    warnings: list[str] = []
    if skipped:
        warnings.append(f"{skipped} empty or unrecognised record(s) in {path.name} were skipped.")
    if samples > available:
        warnings.append(f"Only {available} samples in {path.name}, {samples} asked: using {available}.")
    chosen = choose_indices(available, samples, seed)
    out: list[TokenizedSample] = []
    truncated = dropped = cut_response = altered = 0
    numbers = sum(records[idx].had_number for idx in chosen)
    if numbers:
        warnings.append(
            f"{numbers} sample(s) in {path.name} have a number where text is expected (e.g. "
            '"answer": 4); the number was used as text.'
        )
    for idx in chosen:
        if cancel is not None:
            cancel.check()
        sample = records[idx]
        text, boundary, templated = render(sample, tokenizer)
        if templated and _template_altered(sample, text):
            altered += 1
        ids, n_prompt = _encode_cut(tokenizer, text, templated, boundary if response_only else 0, max_length)
        was_cut = len(ids) > max_length
        ids = ids[:max_length]
        labels = list(ids)
        if response_only:
            labels[: min(n_prompt, len(labels))] = [IGNORE_INDEX] * min(n_prompt, len(labels))
        item = TokenizedSample(torch.tensor([ids], dtype=torch.long), torch.tensor([labels], dtype=torch.long), was_cut)
        if len(ids) < 2 or item.scored_tokens == 0:
            dropped += 1
            cut_response += int(was_cut and response_only and len(ids) >= 2 and n_prompt >= max_length)
            continue
        truncated += int(was_cut)
        out.append(item)
    if truncated:
        warnings.append(
            f"{truncated} of {len(chosen)} samples were longer than max_length = {max_length} tokens "
            "and were cut to their first tokens."
        )
    if dropped:
        why = (
            f" ({cut_response} because max_length cut off the whole response: raise max_length)" if cut_response else ""
        )
        warnings.append(f"{dropped} sample(s) were dropped: fewer than 2 tokens or no scored token{why}.")
    if altered:
        warnings.append(
            f"The chat template changed the assistant text of {altered} sample(s) (for example by "
            "removing <think> reasoning), so part of it is not scored."
        )
    if not out:
        raise InputError(
            f"No usable calibration sample in {path}: all {len(chosen)} chosen samples were dropped "
            f"(fewer than 2 tokens, or no response token within max_length = {max_length}"
            f"{' with response_only' if response_only else ''}). Raise max_length or use other data."
        )
    return CalibrationSet(
        spec=str(spec),
        path=path,
        samples=out,
        available=available,
        requested=samples,
        used=len(out),
        truncated=truncated,
        dropped=dropped,
        tokens=sum(s.scored_tokens for s in out),
        fingerprint=_fingerprint(path, samples, max_length, seed, response_only, tokenizer),
        warnings=warnings,
    )


def _template_altered(sample: Sample, rendered: str) -> bool:
    """True when an assistant reply is not in the rendered text verbatim (templates that strip <think>)."""
    return any(
        m["role"] == "assistant" and m["content"].strip() and m["content"].strip() not in rendered
        for m in _chat_of(sample)
    )


PREVIEW_CHARS = 20_000


def preview(
    spec: str, tokenizer: Any = None, n: int = 5, max_chars: int = PREVIEW_CHARS
) -> list[tuple[str, int | None]]:
    """The first n samples as the model will read them, with their token counts (None without a tokenizer).

    A text longer than `max_chars` is shown cut, with a note of its length, and the count is that of the part
    shown: a 5 MB record must not be tokenized (seconds, gigabytes) to fill a preview."""
    out: list[tuple[str, int | None]] = []
    for sample in load_samples(spec)[: max(0, n)]:
        text, _, templated = render(sample, tokenizer)
        cut = len(text) > max_chars
        shown = text[:max_chars]
        count = None if tokenizer is None else len(_encode(tokenizer, shown, templated, 0)[0])
        if cut:
            shown += f"\n… [cut for the preview: {len(text):,} characters in all]"
        out.append((shown, count))
    return out


def load_tokenizer(model: str | Path) -> Any:
    """The tokenizer of a model folder (or cached repo id); never runs code from the folder.

    The one loader for previews, scoring, the tuner and the evaluation. Why trust_remote_code=False spelled
    out: left at None, transformers asks on stdin (15 s alarm) whether to run a folder's custom tokenizer code,
    so a user who answers 'y' in the terminal would run it.
    """
    from transformers import AutoTokenizer

    from ..io.resolve import resolve_model

    path = Path(model) if isinstance(model, Path) and model.is_dir() else resolve_model(str(model))
    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except Exception as exc:  # custom code refused, missing or broken tokenizer files
        raise InputError(
            f"The tokenizer in {path} could not be loaded ({exc}). The folder needs its tokenizer "
            "files (tokenizer.json or tokenizer.model and tokenizer_config.json); ReasonAny GUI never "
            "runs custom tokenizer code from a model folder."
        ) from None


TOKENIZER_MARKERS = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "tokenizer.tiktoken",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def check_tokenizer(path: Path, vocab_rows: int | None = None) -> Any:
    """The tokenizer of a model folder, refused when it cannot serve a merge: files missing (transformers then
    builds an empty tokenizer that turns every text into no tokens), no ids for plain text, or ids beyond the
    model's embedding rows (an IndexError deep inside the first forward pass). Returns the tokenizer."""
    from transformers import AutoTokenizer

    path = Path(path)
    found = [m for m in TOKENIZER_MARKERS if (path / m).is_file()]
    if not found:
        raise InputError(
            f"{path} has no tokenizer files ({', '.join(TOKENIZER_MARKERS[:3])}, …), so it cannot "
            "tokenize the calibration data, and the merged model would have no tokenizer."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except Exception as exc:
        raise InputError(
            f"The tokenizer in {path} could not be loaded ({exc}). The folder needs its tokenizer "
            "files; ReasonAny GUI never runs custom tokenizer code from a model folder."
        ) from None
    try:
        ids = tokenizer("The answer is 42.", add_special_tokens=False)["input_ids"]
    except Exception as exc:
        raise InputError(f"The tokenizer in {path} cannot encode text ({exc}).") from None
    if not ids:
        raise InputError(f"The tokenizer in {path} turns text into no tokens: its files are incomplete.")
    if vocab_rows is not None and len(tokenizer) > vocab_rows:
        raise InputError(
            f"The tokenizer in {path} has {len(tokenizer)} tokens, but the models have embeddings for "
            f"only {vocab_rows}: token ids beyond that cannot be scored. The tokenizer does not belong "
            "to these models."
        )
    return tokenizer
