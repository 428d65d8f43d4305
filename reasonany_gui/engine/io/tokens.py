"""Token rows a merge must take whole from the model that introduced them (e.g. R1-style `<think>`).

Why: ReasonAny leaves embeddings and the output head at the base by default (rows of tokens absent from the
calibration data get zero gradient and would swallow a selection budget). But the merged model speaks through the
tokenizer of the tokenizer-source model (the reasoning model by default), and a reasoning model often gives
special tokens the base never used a meaning of their own: same ids, same shapes, new rows (DeepSeek-R1-Distill
puts `<think>` into rows Qwen2.5 kept as padding). With the base's rows for them the merged model never writes
`<think>`, or reads it as noise. So the rows of every token id that the source tokenizer names differently from
the base tokenizer are copied from the source model whole; all other rows follow the method.
"""

from __future__ import annotations

from pathlib import Path


def renamed_token_ids(base_dir: Path, source_dir: Path, rows: int | None) -> dict[int, str]:
    """{token id: source token} for ids below `rows` whose token differs from the base tokenizer's (or that the
    base tokenizer lacks). Empty when either folder has no loadable tokenizer, or they are the same folder."""
    if Path(base_dir).resolve() == Path(source_dir).resolve():
        return {}
    base_vocab, source_vocab = _id_to_token(base_dir), _id_to_token(source_dir)
    if base_vocab is None or source_vocab is None:
        return {}
    limit = rows if rows is not None else max(source_vocab, default=-1) + 1
    return {i: tok for i, tok in sorted(source_vocab.items()) if i < limit and base_vocab.get(i) != tok}


def _id_to_token(folder: Path) -> dict[int, str] | None:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except Exception:  # noqa: BLE001 - a folder without a tokenizer simply has no renamed tokens to report
        return None
    return {i: t for t, i in tok.get_vocab().items()}
