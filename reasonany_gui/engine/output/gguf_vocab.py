"""The merged model's tokenizer as GGUF metadata: tokens, their kinds, merges, special ids and the chat template.

Why from the folder's own tokenizer (transformers) and not the base model's: the merge speaks through the tokenizer
of the tokenizer-source model, whose renamed reasoning tokens (`<think>`, engine/io/tokens.py) must reach llama.cpp
as whole tokens, and whose chat template is the one the merged model answers to. gguf.SpecialVocab reads the merges,
special ids and the template exactly as llama.cpp's converter does; this module adds the token list and kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InputError

#: tokenizer.ggml.pre for a Split regex found in tokenizer.json (llama.cpp's names), matched by the regex itself
_PRE_NAMES = ("llama-bpe", "qwen2", "tekken", "gpt-4o", "smaug-bpe", "dbrx", "deepseek-r1-qwen")


@dataclass(frozen=True)
class Vocab:
    """What a GGUF file states about the tokenizer (tokenizer.ggml.*)."""

    model: str  # "gpt2" (byte-level BPE) or "llama" (sentencepiece-style BPE with byte fallback)
    pre: str
    tokens: list[str]
    types: list[int]  # gguf.TokenType values
    scores: list[float] | None
    stop_tokens: list[str]  # the tokens generation stops at (generation_config's eos ids), for the Modelfile


def _tokenizer_json(folder: Path) -> dict[str, Any]:
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise InputError(
            f"{folder} has no tokenizer.json: GGUF export needs the fast (tokenizers) form of the tokenizer. "
            "Re-run the merge with a tokenizer source that has one."
        )
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _split_regexes(pre: Any) -> list[str]:
    """Every Split pattern in a (possibly nested) tokenizer.json pre_tokenizer."""
    if not isinstance(pre, dict):
        return []
    found = []
    if pre.get("type") == "Split":
        pattern = pre.get("pattern") or {}
        found.append(str(pattern.get("Regex") or pattern.get("String") or ""))
    for child in pre.get("pretokenizers") or []:
        found += _split_regexes(child)
    return found


def pre_tokenizer_name(tok_json: dict[str, Any]) -> str:
    """llama.cpp's name for the way text is split before BPE ("default" when none is recognised).

    Why by regex and not llama.cpp's hash of a sample tokenization: the merge never changes the tokenizer, and
    the regex is the part that decides the split; transformers' GGUF reader maps these names back to the regex."""
    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS
    except ImportError:  # an older transformers: llama.cpp's default split still loads
        return "default"
    regexes = set(_split_regexes(tok_json.get("pre_tokenizer")))
    for name in _PRE_NAMES:
        if GGUF_PRE_TOKENIZER_SPLITS.get(name) in regexes:
            return name
    return "default"


def read_vocab(folder: Path, vocab_size: int) -> Vocab:
    """The tokenizer of `folder` as GGUF lists, padded to the model's `vocab_size` embedding rows.

    Special added tokens are CONTROL (matched whole, never printed), other added tokens (`<think>` in many reasoning
    models) USER_DEFINED (matched whole, printed): as llama.cpp's converter marks them."""
    from gguf import TokenType
    from transformers import AutoTokenizer

    tok_json = _tokenizer_json(folder)
    model = tok_json.get("model") or {}
    if model.get("type") != "BPE":
        raise InputError(
            f"The tokenizer in {folder} is a {model.get('type')} tokenizer; GGUF export supports BPE tokenizers "
            "(Llama, Mistral, Qwen). Export the safetensors folder with llama.cpp's converter instead."
        )
    sentencepiece = bool(model.get("byte_fallback"))
    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    if max(by_id, default=-1) >= vocab_size:
        raise InputError(
            f"The tokenizer in {folder} has token ids up to {max(by_id)}, but the model has only {vocab_size} "
            "embedding rows: the tokenizer does not belong to these weights."
        )
    added = {i: t for i, t in tokenizer.added_tokens_decoder.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        elif i in added:
            tokens.append(added[i].content)
            types.append(TokenType.CONTROL if added[i].special else TokenType.USER_DEFINED)
        else:
            text = by_id[i]
            tokens.append(text)
            is_byte = sentencepiece and len(text) == 6 and text.startswith("<0x") and text.endswith(">")
            types.append(TokenType.BYTE if is_byte else TokenType.NORMAL)
    if sentencepiece and tokenizer.unk_token_id is not None:
        types[tokenizer.unk_token_id] = TokenType.UNKNOWN
    # scores: sentencepiece ranks tokens by them; a BPE vocabulary without merges (a byte-only one, like the demo's)
    # needs them too, since GGUF cannot hold an empty merge list and readers then derive merges from the scores
    scores = [-float(i) for i in range(vocab_size)] if sentencepiece or not model.get("merges") else None
    return Vocab(
        model="llama" if sentencepiece else "gpt2",
        pre="default" if sentencepiece else pre_tokenizer_name(tok_json),
        tokens=tokens,
        types=[int(t) for t in types],
        scores=scores,
        stop_tokens=[tokens[i] for i in _stop_ids(folder, tokenizer) if 0 <= i < vocab_size],
    )


def _stop_ids(folder: Path, tokenizer: Any) -> list[int]:
    """generation_config.json's eos ids (a chat model often has two: end of turn and end of text), else the eos."""
    path = folder / "generation_config.json"
    ids: Any = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id") if path.is_file() else None
    if ids is None:
        ids = tokenizer.eos_token_id
    ids = ids if isinstance(ids, list) else [ids]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def add_vocab(writer: Any, folder: Path, vocab: Vocab) -> None:
    """Write the token list, kinds, merges, special ids and chat template into a gguf.GGUFWriter."""
    from gguf import SpecialVocab

    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    has_merges = bool((_tokenizer_json(folder).get("model") or {}).get("merges"))
    special = SpecialVocab(folder, load_merges=has_merges, n_vocab=len(vocab.tokens))
    special.add_to_gguf(writer, quiet=True)
    ends = [vocab.tokens.index(t) for t in vocab.stop_tokens]
    eos = special.special_token_ids.get("eos")
    turn_end = [i for i in ends if i != eos]
    if turn_end:  # e.g. <|im_end|> besides <|endoftext|>: llama.cpp stops at the end of a turn too
        writer.add_eot_token_id(turn_end[0])
