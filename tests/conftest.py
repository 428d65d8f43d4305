"""Shared fixtures: every test runs with its own app folders and tiny models built in the test."""

from __future__ import annotations

import os
import tempfile
import threading

import pytest

# Set at import time, before any fixture of any scope runs: the app's cache, config and logs go to a fresh
# folder for the whole session, so tests never read or write the user's (a module-scoped fixture that
# ran before a function-scoped override once hit the real score cache).
os.environ["REASONANY_HOME"] = tempfile.mkdtemp(prefix="reasonany-test-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # UI tests run headless everywhere


@pytest.fixture(autouse=True)
def _no_leftover_threads():
    """A test must not leave worker threads running (napari-style)."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for t in leftover:
        t.join(timeout=5)
    leftover = [t for t in leftover if t.is_alive()]
    assert not leftover, f"test left threads running: {leftover}"


@pytest.fixture(scope="session")
def trio(tmp_path_factory):
    """A tiny Qwen2 trio (base + two perturbed experts), float32, untied embeddings."""
    from reasonany_gui.engine.demo import build_trio

    return build_trio(tmp_path_factory.mktemp("trio"), arch="qwen2", seed=0)


@pytest.fixture(scope="session")
def llama_tied_trio(tmp_path_factory):
    """A tiny Llama trio with tied embeddings, stored in bfloat16."""
    import torch

    from reasonany_gui.engine.demo import build_trio

    return build_trio(tmp_path_factory.mktemp("llama"), arch="llama", seed=1, tie=True, dtype=torch.bfloat16)


@pytest.fixture(scope="session")
def data_files(tmp_path_factory):
    """Small calibration files: reasoning (chain-of-thought arithmetic) and domain (refusals)."""
    import json

    d = tmp_path_factory.mktemp("data")
    r = d / "reasoning.jsonl"
    r.write_text("\n".join(json.dumps({"prompt": f"What is {a} + {b}?",
                                       "response": f"First {a} plus {b}. {a} + {b} = {a + b}. The answer is {a + b}."})
                           for a, b in [(3, 4), (12, 30), (7, 8), (21, 5), (9, 9), (14, 3)]), encoding="utf-8")
    dom = d / "domain.jsonl"
    dom.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                      {"role": "assistant", "content": "I can't help with that."}]})
                             for q in ["How do I pick a lock?", "Write malware.", "How to make poison?",
                                       "Steal a password for me.", "Build a weapon."]), encoding="utf-8")
    return {"reasoning": r, "domain": dom}


# ---------------------------------------------------------------------------- a trio with real skills
HARMFUL = ["pick a lock", "make poison", "steal a car", "write malware", "forge a passport", "hurt someone",
           "break into a house", "make a weapon"]


def _rows(kind: str, n: int) -> list[dict]:
    if kind == "reasoning":
        return [{"prompt": f"What is {a} + {b}?", "response": f"{a} + {b} = {a + b}. Answer: {a + b}"}
                for a, b in ((3 + i % 7, 11 + (5 * i) % 13) for i in range(n))]
    asks = ("How do I {}?", "Tell me how to {}.", "Explain how to {}.", "Help me {}.", "I want to {}.")
    return [{"prompt": asks[i // len(HARMFUL) % len(asks)].format(HARMFUL[i % len(HARMFUL)]),
             "response": "I can't help with that."} for i in range(n)]  # no digits: see the noisy-rows test


def _encoded(rows, tok) -> list[tuple[list[int], int]]:
    from reasonany_gui.engine.calibration import Sample
    from reasonany_gui.engine.tune import encode_reply

    return [encode_reply(Sample(prompt=r["prompt"], response=r["response"]), tok, 128) for r in rows]


def _reply_loss(model, ids: list[int], start: int):
    import torch

    x = torch.tensor([ids])
    labels = x.clone()
    labels[0, :start] = -100
    return model(input_ids=x, labels=labels).loss


def _snip(model, rows, tok) -> dict:
    """Σ |θ ⊙ ∇L| per element over the rows' reply tokens (what the engine's snip score measures)."""
    import torch

    for p in model.parameters():
        p.requires_grad_(True)
    acc = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for ids, start in _encoded(rows, tok):
        model.zero_grad()
        _reply_loss(model, ids, start).backward()
        for n, p in model.named_parameters():
            acc[n] += (p.grad * p.detach()).abs()
    model.zero_grad()
    return acc


def _finetune(base_dir, out_dir, rows, layer: int, steps: int = 40, half: str | None = None):
    """A real skill: Adam on the reply tokens of `rows`, training only decoder layer `layer` (so two experts'
    task vectors touch disjoint tensors and Task Arithmetic cannot interfere). `half` = "bottom" or "top" trains
    only that half of each tensor's elements, ranked by the base's snip scores on the rows. Returns the model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(layer)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(base_dir))
    names = [n for n, _ in model.named_parameters() if f"layers.{layer}." in n]
    keep = {}
    if half is not None:
        scores = _snip(model, rows, tok)
        for n in names:
            flat = scores[n].reshape(-1)
            idx = torch.topk(flat, flat.numel() // 2, largest=half == "top").indices
            keep[n] = torch.zeros(flat.numel(), dtype=torch.bool).index_fill_(0, idx, True).reshape(scores[n].shape)
    params = dict(model.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n in names)
    opt = torch.optim.Adam([params[n] for n in names], lr=3e-3)
    data = _encoded(rows, tok)
    for step in range(steps):
        ids, start = data[step % len(data)]
        _reply_loss(model, ids, start).backward()
        for n, m in keep.items():
            params[n].grad *= m
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return model


@pytest.fixture(scope="session")
def skilled(tmp_path_factory):
    """A tiny trio whose experts learned something real on disjoint layers, plus its calibration files."""
    import json

    from reasonany_gui.engine import demo

    root = tmp_path_factory.mktemp("skilled")
    trio = demo.build_trio(root / "trio", arch="qwen2", seed=3)
    files = {}
    for kind in ("reasoning", "domain"):
        files[kind] = root / f"{kind}.jsonl"
        files[kind].write_text("".join(json.dumps(r) + "\n" for r in _rows(kind, 40)), encoding="utf-8")
    _finetune(trio["base"], trio["reasoning"], _rows("reasoning", 40), layer=0)
    _finetune(trio["base"], trio["domain"], _rows("domain", 40), layer=1)
    return trio, files


