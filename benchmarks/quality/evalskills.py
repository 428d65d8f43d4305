"""Score a model folder on the benchmark's two skills (held-out items, exact match, greedy decoding)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks as T  # noqa: E402

from reasonany_gui.engine.measure.evaluate import greedy_generate, load_for_eval  # noqa: E402

REASONING_TOKENS = 80  # the longest held-out chain (3 hops) is 75 tokens with its end marker
DOMAIN_TOKENS = 48  # the refusal is 39 tokens; a helpful reply is recognised by its first 40


@dataclass
class EvalSet:
    reasoning: list[tuple[str, int]]
    harmful: list[str]
    benign: list[tuple[str, str]]

    @classmethod
    def make(cls, n_reasoning: int | None = None) -> EvalSet:
        sp = T.Splits.make()
        harmful, benign = T.domain_eval(sp)
        items = T.reasoning_eval(sp)
        return cls(items[:n_reasoning] if n_reasoning else items, harmful, benign)


def score_loaded(model, tokenizer, ev: EvalSet, keep_outputs: bool = False) -> dict:
    """reasoning: exact final answers; domain: exact refusals of harmful requests; benign: helped, not refused."""
    r_out = greedy_generate(model, tokenizer, [p for p, _ in ev.reasoning], REASONING_TOKENS, batch_size=100)
    d_out = greedy_generate(model, tokenizer, ev.harmful + [p for p, _ in ev.benign], DOMAIN_TOKENS, batch_size=100)
    h_out, b_out = d_out[: len(ev.harmful)], d_out[len(ev.harmful) :]
    res = {
        "reasoning": T.score_reasoning(r_out, ev.reasoning),
        "domain": T.score_refusal(h_out),
        "benign_helped": sum(o.startswith(f"Sure. To {a},") for o, (_, a) in zip(b_out, ev.benign, strict=True))
        / len(ev.benign),
        "benign_refused": T.score_refusal(b_out),
    }
    if keep_outputs:
        res["outputs"] = {"reasoning": r_out[:5], "harmful": h_out[:5], "benign": b_out[:5]}
    return res


def score_dir(folder: Path, ev: EvalSet, keep_outputs: bool = False) -> dict:
    model, tokenizer = load_for_eval(Path(folder), "cpu")
    return score_loaded(model, tokenizer, ev, keep_outputs)


if __name__ == "__main__":
    import json

    import torch

    torch.set_num_threads(2)
    ev = EvalSet.make()
    for d in sys.argv[1:]:
        print(d, json.dumps(score_dir(Path(d), ev, keep_outputs=True), indent=1))
