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

import csv
import hashlib
import io
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError
from ..core.paths import RESOURCES

BUILTIN_PREFIX = "builtin:"
RESOURCE_DIR = RESOURCES / "calibration"
EXTENSIONS = (".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".txt")
#: bump when the rendering or tokenization rules change, so cached scores keyed on the fingerprint go stale
FORMAT_VERSION = "calibration-v1"
IGNORE_INDEX = -100

TEXT_KEYS = ("text", "chosen")
PROMPT_KEYS = ("prompt", "question", "instruction", "input")
RESPONSE_KEYS = ("response", "answer", "output", "completion")
CHAT_KEYS = ("messages", "conversations")
ROLE_ALIASES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
    "tool": "tool",
}
ACCEPTED_FIELDS = (
    "text (or chosen); prompt + response (or question + answer, instruction + output, "
    "input + output); messages or conversations (a list of {role, content} or {from, value})"
)


# ============================================================================ presets
@dataclass(frozen=True)
class Preset:
    """A built-in calibration set shipped with the app (written by tools/make_calibration.py)."""

    name: str
    role: str  # "reasoning" or "domain": which slot of the GUI offers it
    title: str
    description: str
    path: Path


def _preset(name: str, role: str, title: str, description: str) -> Preset:
    return Preset(name, role, title, description, RESOURCE_DIR / f"{name}.jsonl")


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset(
            "reasoning",
            "reasoning",
            "Step-by-step math",
            "Math word problems and arithmetic, each solved step by step before a final answer.",
        ),
        _preset(
            "safety",
            "domain",
            "Safety (refusals)",
            "Harmful requests answered with a polite refusal and a safe alternative, plus everyday requests "
            "answered helpfully.",
        ),
        _preset(
            "biomedicine",
            "domain",
            "Biomedicine",
            "Short study abstracts with a yes/no/maybe question and a reasoned answer, plus clinical fact questions.",
        ),
        _preset(
            "finance",
            "domain",
            "Finance",
            "Financial analysis questions (ratios, interest, loans, valuation, accounting) with worked answers.",
        ),
    )
}


def resolve_spec(spec: str) -> Path:
    """`builtin:NAME` or a file path -> the file to read. InputError if the preset or file does not exist."""
    text = str(spec or "").strip()
    if not text:
        raise InputError(
            "No calibration data given: pick a built-in set (builtin:"
            + ", builtin:".join(PRESETS)
            + ") or a data file."
        )
    if text.lower().startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :].strip().lower()
        if name not in PRESETS:
            raise InputError(
                f"Unknown built-in calibration set {text!r}. Available: "
                + ", ".join(BUILTIN_PREFIX + n for n in PRESETS)
                + "."
            )
        path = PRESETS[name].path
        if not path.is_file():
            raise InputError(
                f"The built-in calibration set {text} is missing from the installation ({path}). "
                "Reinstall the app, or run tools/make_calibration.py in a source checkout."
            )
        return path
    path = Path(text).expanduser()
    if path.is_dir():
        raise InputError(f"Calibration data {path} is a folder; pick a file ({', '.join(EXTENSIONS)}).")
    from ..io.checkpoints import special_file_kind

    kind = special_file_kind(path)
    if kind is not None:
        raise InputError(
            f"Calibration data {path} is {kind}, not a regular file: reading it would hang. Pick a saved file."
        )
    if not path.is_file():
        hint = f" Did you mean builtin:{text}?" if text.lower() in PRESETS else " Check the path."
        raise InputError(f"Calibration data file {path} does not exist.{hint}")
    return path


# ============================================================================ reading
@dataclass
class Sample:
    """One calibration record, in exactly one of three shapes: text, prompt + response, or chat messages."""

    text: str | None = None
    prompt: str | None = None
    response: str | None = None
    messages: list[dict] | None = None
    #: a field held a number, used as its text (prepare() warns)
    had_number: bool = field(default=False, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "chat" if self.messages is not None else "pair" if self.prompt is not None else "text"


def load_samples(spec: str) -> list[Sample]:
    """Every usable record of the file, in file order. InputError if the file cannot give any."""
    return _load(spec)[0]


def _load(spec: str) -> tuple[list[Sample], int, Path]:
    """Samples, the number of records skipped because they were empty, and the resolved path."""
    path = resolve_spec(spec)
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise InputError(
            f"Calibration data {path}: unknown file type {ext or '(no extension)'!r}. "
            f"Use one of {', '.join(EXTENSIONS)}."
        )
    if path.stat().st_size == 0:
        raise InputError(f"Calibration data {path} is empty. Pick a file with at least one sample.")
    if ext == ".parquet":
        records: list[Any] = _read_parquet(path)
    else:
        text = _read_text(path)
        if not text.strip():
            raise InputError(f"Calibration data {path} is empty (only blank space). Pick a file with samples.")
        reader = {
            ".jsonl": _parse_jsonl,
            ".ndjson": _parse_jsonl,
            ".json": _parse_json,
            ".csv": _parse_csv,
            ".txt": _parse_txt,
        }[ext]
        records = reader(text, path)
    if not records:
        raise InputError(f"Calibration data {path} contains no records. Pick a file with at least one sample.")
    samples: list[Sample] = []
    skipped = 0
    for i, rec in enumerate(records, start=1):
        _NUMBERS_SEEN.clear()
        try:
            sample = _to_sample(rec, path, i)
        except NotText as exc:
            raise InputError(_not_text_message(path, i, rec, exc.value)) from None
        if sample is not None and _NUMBERS_SEEN:
            sample.had_number = True
        if sample is None:
            skipped += 1
        else:
            samples.append(sample)
    if not samples:
        raise InputError(_no_usable_field_message(path, records))
    return samples, skipped, path


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"Calibration data {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, byte offset "
            f"{exc.start}). Re-save it as UTF-8 (most editors offer this under 'Save as… / Encoding')."
        ) from None


def _read_parquet(path: Path) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"Reading {path} needs the pyarrow package, which is not installed. Run: pip install pyarrow "
            "(or convert the file to .jsonl)."
        ) from None
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types (ArrowInvalid, OSError) for a bad file
        raise InputError(f"Calibration data {path} is not a readable Parquet file: {exc}") from None


def _loads(text: str, where: str, line_known: bool, fix: str, deep: str) -> Any:
    """json.loads, with an error a user can act on: where the text broke, and what the file should look like."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if line_known else f"line {exc.lineno}, column {exc.colno}"
        raise InputError(f"{where}: not valid JSON ({exc.msg} at {at}). {fix}") from None
    except RecursionError:
        raise InputError(f"{where}: the JSON is nested too deeply. {deep}") from None


def _parse_jsonl(text: str, path: Path) -> list[Any]:
    return [
        _loads(
            line,
            f"Calibration data {path}, line {number}",
            True,
            "Each line of a .jsonl file must be one JSON object.",
            'Each line must be one flat object such as {"text": ...}.',
        )
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _parse_json(text: str, path: Path) -> list[Any]:
    data = _loads(
        text,
        f"Calibration data {path}",
        False,
        "If it has one object per line, rename it to .jsonl.",
        'Write a list of flat objects such as {"text": ...}.',
    )
    if isinstance(data, dict):
        for key in ("data", "samples", "rows"):
            if isinstance(data.get(key), list):
                return data[key]
        raise InputError(
            f'Calibration data {path}: the JSON object has no list of samples under "data", '
            f'"samples" or "rows" (keys found: {_keys(data)}). Put the samples in a list.'
        )
    if not isinstance(data, list):
        raise InputError(f"Calibration data {path}: expected a JSON list of samples, found a {type(data).__name__}.")
    return data


def _parse_csv(text: str, path: Path) -> list[Any]:
    csv.field_size_limit(1 << 30)  # long reasoning traces exceed the 128 KB default
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = [dict(row) for row in reader]
    except csv.Error as exc:
        raise InputError(f"Calibration data {path}, line {reader.line_num}: not valid CSV ({exc}).") from None
    if not rows:
        columns = ", ".join(reader.fieldnames or []) or "(none)"
        raise InputError(
            f"Calibration data {path} has a header row (columns: {columns}) but no data rows. The first "
            "line of a CSV file names the columns (e.g. text, or prompt,response); the samples follow it."
        )
    return rows


def _parse_txt(text: str, path: Path) -> list[Any]:
    return [{"text": block.strip()} for block in re.split(r"\n[ \t\r]*\n", text) if block.strip()]


# ============================================================================ records -> samples
def _keys(rec: Any) -> str:
    return ", ".join(sorted(map(str, rec))) if isinstance(rec, dict) and rec else "(none)"


def _no_usable_field_message(path: Path, records: list[Any]) -> str:
    found: list[str] = []
    for rec in records[:50]:
        if isinstance(rec, dict):
            found += [str(k) for k in rec if str(k) not in found]
    what = ", ".join(found) if found else f"no fields (records are {type(records[0]).__name__}s, not objects)"
    return (
        f"Calibration data {path}: no record has a usable field. Found: {what}. Accepted: {ACCEPTED_FIELDS}. "
        "Rename the columns/keys, or export the data in one of these shapes."
    )


class NotText(Exception):
    """A calibration field holds a number, a list or an object where text is expected."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


def _as_text(value: Any) -> str | None:
    """A field value as text; None when missing or blank (so the record counts as empty).

    A list, an object or a boolean in a text field is a mistake in the file (a wrong column, a nested record),
    and turning it into its Python spelling would score the model on that spelling: refused. A number (a
    numeric answer) is used as its text, and the sample is flagged so that prepare() warns."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN: how pandas-made files spell an empty cell
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _NUMBERS_SEEN.append(value)  # a numeric answer ("answer": 4) is text enough; prepare() says so
        return str(value)
    if not isinstance(value, str):
        raise NotText(value)
    return value if value.strip() else None


_NUMBERS_SEEN: list = []  # numbers used as text while reading the current record (see _to_sample)


def _first(rec: dict, keys: Iterable[str]) -> tuple[str | None, str | None]:
    for key in keys:
        if key in rec:
            return key, _as_text(rec[key])
    return None, None


def _not_text_message(path: Path, number: int, rec: dict, value: Any) -> str:
    key = next((k for k, v in rec.items() if v is value), None) if isinstance(rec, dict) else None
    key = key or next((k for k in CHAT_KEYS if isinstance(rec, dict) and k in rec), "?")
    kind = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return (
        f"Calibration data {path}, record {number}: the field {key!r} is {kind} ({shown}), not text. "
        "Calibration texts must be strings: write the value in quotes, or pick the column that holds the text."
    )


def _to_sample(rec: Any, path: Path, number: int) -> Sample | None:
    """One record -> Sample; None when the record has a known field that is empty or has no known field."""
    if isinstance(rec, str):  # a JSON list of plain strings
        return Sample(text=rec) if rec.strip() else None
    if not isinstance(rec, dict):
        return None
    for key in CHAT_KEYS:
        if rec.get(key) is not None:
            messages = _messages(rec[key], path, number, key)
            return Sample(messages=messages) if messages else None
    p_key, prompt = _first(rec, PROMPT_KEYS)
    r_key, response = _first(rec, RESPONSE_KEYS)
    if r_key is not None and p_key is not None:
        if p_key == "instruction" and _as_text(rec.get("input")):  # Alpaca: instruction + optional input
            prompt = f"{prompt}\n\n{_as_text(rec['input'])}" if prompt else _as_text(rec["input"])
        if prompt is None or response is None:
            return None
        return Sample(prompt=prompt, response=response)
    t_key, text = _first(rec, TEXT_KEYS)
    if t_key is not None:
        return Sample(text=text) if text is not None else None
    return None


def _messages(value: Any, path: Path, number: int, key: str) -> list[dict] | None:
    """role/content or ShareGPT from/value -> [{'role', 'content'}]; InputError for a malformed list."""
    if isinstance(value, str):  # CSV cells hold the list as a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(
                f"Calibration data {path}, record {number}: {key!r} is text, not a list of messages. "
                'Write it as a JSON list of {"role": ..., "content": ...}.'
            ) from None
    if not isinstance(value, list):
        raise InputError(
            f"Calibration data {path}, record {number}: {key!r} must be a list of messages, "
            f"found a {type(value).__name__}."
        )
    out = []
    for j, msg in enumerate(value, start=1):
        if not isinstance(msg, dict):
            raise InputError(
                f"Calibration data {path}, record {number}, message {j}: expected an object with "
                f"role and content, found a {type(msg).__name__}."
            )
        raw_role = msg.get("role", msg.get("from"))
        content = msg.get("content", msg.get("value"))
        role = ROLE_ALIASES.get(str(raw_role).strip().lower()) if raw_role is not None else None
        if role is None:
            raise InputError(
                f"Calibration data {path}, record {number}, message {j}: unknown role {raw_role!r} "
                f"(fields: {_keys(msg)}). Use user/assistant/system (or human/gpt)."
            )
        if isinstance(content, list):  # OpenAI-style content parts: keep the text parts
            content = "".join(
                p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        text = _as_text(content) if content is not None and not isinstance(content, str) else content
        out.append({"role": role, "content": "" if text is None else text})
    if not any(m["content"].strip() for m in out):
        return None
    return out


# ============================================================================ rendering
def has_chat_template(tokenizer) -> bool:
    return bool(tokenizer is not None and getattr(tokenizer, "chat_template", None))


def _chat_of(sample: Sample) -> list[dict]:
    if sample.messages is not None:
        return sample.messages
    return [{"role": "user", "content": sample.prompt}, {"role": "assistant", "content": sample.response}]


def render(sample: Sample, tokenizer=None) -> tuple[str, int, bool]:
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


def _apply_template(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
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


def _encode(tokenizer, text: str, templated: bool, boundary: int) -> tuple[list[int], int]:
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


def _encode_cut(tokenizer, text: str, templated: bool, boundary: int, max_length: int) -> tuple[list[int], int]:
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


def _fingerprint(path: Path, samples: int, max_length: int, seed: int, response_only: bool, tokenizer) -> str:
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
    spec: str, tokenizer, samples: int, max_length: int, seed: int, response_only: bool = False, cancel=None
) -> CalibrationSet:
    """Load, choose, render and tokenize: the exact tensors the importance pass feeds the model.

    `cancel` (a CancelToken) is checked between samples."""
    if not isinstance(samples, int) or samples < 1:
        raise InputError(f"samples = {samples!r} must be a whole number of at least 1.")
    if not isinstance(max_length, int) or max_length < 2:
        raise InputError(f"max_length = {max_length!r} must be a whole number of at least 2.")
    records, skipped, path = _load(spec)
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


def preview(spec: str, tokenizer=None, n: int = 5, max_chars: int = PREVIEW_CHARS) -> list[tuple[str, int | None]]:
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


def load_tokenizer(model: str | Path):
    """The tokenizer of a model folder (or cached repo id); never runs code from the folder.

    The one loader for previews, scoring, the tuner and the evaluation. Why trust_remote_code=False spelled
    out: left at None, transformers asks on stdin (15 s alarm) whether to run a folder's custom tokenizer code,
    so a user who answers 'y' in the terminal would run it.
    """
    from transformers import AutoTokenizer

    from ..io.checkpoints import resolve_model

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


def check_tokenizer(path: Path, vocab_rows: int | None = None):
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
