"""Tiny trios for the tests: the rows the experts learn, a fine-tune that teaches them, and the one way to turn a
trio and its calibration files into a MergeConfig or a `reasonany merge` command line.

A module of its own (not conftest.py) so that test files can import it by name: pytest puts every conftest
folder on sys.path, and two files both named conftest shadow each other."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

HARMFUL = [
    "pick a lock",
    "make poison",
    "steal a car",
    "write malware",
    "forge a passport",
    "hurt someone",
    "break into a house",
    "make a weapon",
]


def rows(kind: str, n: int) -> list[dict]:
    if kind == "reasoning":
        return [
            {"prompt": f"What is {a} + {b}?", "response": f"{a} + {b} = {a + b}. Answer: {a + b}"}
            for a, b in ((3 + i % 7, 11 + (5 * i) % 13) for i in range(n))
        ]
    asks = ("How do I {}?", "Tell me how to {}.", "Explain how to {}.", "Help me {}.", "I want to {}.")
    return [
        {
            "prompt": asks[i // len(HARMFUL) % len(asks)].format(HARMFUL[i % len(HARMFUL)]),
            "response": "I can't help with that.",
        }
        for i in range(n)
    ]  # no digits: see the noisy-rows test


def encoded(rows, tok) -> list[tuple[list[int], int]]:
    from reasonany_gui.engine.data.calibration import Sample
    from reasonany_gui.engine.measure.heldout import encode_reply

    return [encode_reply(Sample(prompt=r["prompt"], response=r["response"]), tok, 128) for r in rows]


def reply_loss(model, ids: list[int], start: int):
    import torch

    x = torch.tensor([ids])
    labels = x.clone()
    labels[0, :start] = -100
    return model(input_ids=x, labels=labels).loss


def snip(model, rows, tok) -> dict:
    """Σ |θ ⊙ ∇L| per element over the rows' reply tokens (what the engine's snip score measures)."""
    import torch

    for p in model.parameters():
        p.requires_grad_(True)
    acc = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for ids, start in encoded(rows, tok):
        model.zero_grad()
        reply_loss(model, ids, start).backward()
        for n, p in model.named_parameters():
            acc[n] += (p.grad * p.detach()).abs()
    model.zero_grad()
    return acc


def finetune(base_dir, out_dir, rows, layer: int, steps: int = 40, half: str | None = None):
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
        scores = snip(model, rows, tok)
        for n in names:
            flat = scores[n].reshape(-1)
            idx = torch.topk(flat, flat.numel() // 2, largest=half == "top").indices
            keep[n] = torch.zeros(flat.numel(), dtype=torch.bool).index_fill_(0, idx, True).reshape(scores[n].shape)
    params = dict(model.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n in names)
    opt = torch.optim.Adam([params[n] for n in names], lr=3e-3)
    data = encoded(rows, tok)
    for step in range(steps):
        ids, start = data[step % len(data)]
        reply_loss(model, ids, start).backward()
        for n, m in keep.items():
            params[n].grad *= m
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return model


def trio_with_data(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """A tiny random Qwen2 trio under `root` (the experts still equal to the base: fine-tune them) and 40
    calibration rows per skill as prompt/response JSONL."""
    import json

    from reasonany_gui.engine.data import demo

    trio = demo.build_trio(root / "trio", arch="qwen2", seed=3)
    files = {}
    for kind in ("reasoning", "domain"):
        files[kind] = root / f"{kind}.jsonl"
        files[kind].write_text("".join(json.dumps(r) + "\n" for r in rows(kind, 40)), encoding="utf-8")
    return trio, files


def trio_config(models: Mapping[str, Any], data: Mapping[str, Any], out: Path | str | None = None, **kw: Any):
    """The MergeConfig of three model folders (or repo ids) and two calibration files; `kw` sets the rest."""
    from reasonany_gui.engine.settings.config import MergeConfig

    roles = {role: str(models[role]) for role in ("base", "reasoning", "domain")}
    data_files = {"reasoning_data": str(data["reasoning"]), "domain_data": str(data["domain"])}
    return MergeConfig(**{**roles, **data_files, "out": str(out) if out is not None else None, **kw})


def merge_argv(models: Mapping[str, Any], data: Mapping[str, Any], out: Path | str, *extra: str) -> list[str]:
    """`reasonany merge` with three models, two calibration files and an output folder, then `extra` flags."""
    argv = ["merge"]
    for role in ("base", "reasoning", "domain"):
        argv += [f"--{role}", str(models[role])]
    argv += ["--reasoning-data", str(data["reasoning"]), "--domain-data", str(data["domain"])]
    return [*argv, "--out", str(out), *extra]
