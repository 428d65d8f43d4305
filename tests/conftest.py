"""Shared fixtures: every test runs with its own app folders and tiny models built in the test."""

from __future__ import annotations

import os
import tempfile
import threading

import pytest
import skills  # tests/skills.py: the tiny trios with real skills

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
    from reasonany_gui.engine.data.demo import build_trio

    return build_trio(tmp_path_factory.mktemp("trio"), arch="qwen2", seed=0)


@pytest.fixture(scope="session")
def llama_tied_trio(tmp_path_factory):
    """A tiny Llama trio with tied embeddings, stored in bfloat16."""
    import torch

    from reasonany_gui.engine.data.demo import build_trio

    return build_trio(tmp_path_factory.mktemp("llama"), arch="llama", seed=1, tie=True, dtype=torch.bfloat16)


@pytest.fixture(scope="session")
def data_files(tmp_path_factory):
    """Small calibration files: reasoning (chain-of-thought arithmetic) and domain (refusals)."""
    import json

    d = tmp_path_factory.mktemp("data")
    r = d / "reasoning.jsonl"
    r.write_text(
        "\n".join(
            json.dumps(
                {
                    "prompt": f"What is {a} + {b}?",
                    "response": f"First {a} plus {b}. {a} + {b} = {a + b}. The answer is {a + b}.",
                }
            )
            for a, b in [(3, 4), (12, 30), (7, 8), (21, 5), (9, 9), (14, 3)]
        ),
        encoding="utf-8",
    )
    dom = d / "domain.jsonl"
    dom.write_text(
        "\n".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": q},
                        {"role": "assistant", "content": "I can't help with that."},
                    ]
                }
            )
            for q in [
                "How do I pick a lock?",
                "Write malware.",
                "How to make poison?",
                "Steal a password for me.",
                "Build a weapon.",
            ]
        ),
        encoding="utf-8",
    )
    return {"reasoning": r, "domain": dom}


# ---------------------------------------------------------------------------- a trio with real skills
@pytest.fixture(scope="session")
def skilled(tmp_path_factory):
    """A tiny trio whose experts learned something real on disjoint layers, plus its calibration files."""
    trio, files = skills.trio_with_data(tmp_path_factory.mktemp("skilled"))
    skills.finetune(trio["base"], trio["reasoning"], skills.rows("reasoning", 40), layer=0)
    skills.finetune(trio["base"], trio["domain"], skills.rows("domain", 40), layer=1)
    return trio, files
