"""The model card a merge writes (OUT/README.md) and report.html: Hub-valid metadata without local paths, the
tool linked, evaluation included, readable settings and a colour legend."""

from __future__ import annotations

import re

import pytest

from reasonany_gui.engine.output import card as cards
from reasonany_gui.engine.output import report

HOME = "/home/alice/private-project"


def fake_report(**models) -> dict:
    specs = {
        "base": "Qwen/Qwen2.5-7B",
        "reasoning": f"{HOME}/hf/hub/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-7B/snapshots/abc123",
        "domain": f"{HOME}/my-safety-model",
        **models,
    }
    per_tensor = {
        f"model.layers.{i}.self_attn.q_proj.weight": {"numel": 100, "reasoning": 5 + i, "domain": 4, "conflicts": 1}
        for i in range(3)
    }
    return {
        "created": "2026-01-05T14:12:00+0000",
        "method": "reasonany",
        "config": {
            "base": specs["base"],
            "reasoning": specs["reasoning"],
            "domain": specs["domain"],
            "reasoning_data": "builtin:reasoning",
            "domain_data": f"{HOME}/data/safety.jsonl",
            "reasoning_ratio": 0.05,
            "domain_ratio": 0.05,
            "reasoning_scale": 1.0,
            "domain_scale": 1.0,
            "scope": "tensor",
            "intersect": False,
            "out": f"{HOME}/merges/qwen-safety-reasoning",
        },
        "models": {
            r: {
                "spec": s,
                "path": s,
                "num_params": 7_615_616_512,
                "architecture": "Qwen2ForCausalLM",
                "dtype": "bfloat16",
            }
            for r, s in specs.items()
        },
        "data": {"domain": {"spec": f"{HOME}/data/safety.jsonl", "used": 100, "tokens": 20000, "truncated": 3}},
        "totals": {"reasoning": 15, "domain": 12, "conflicts": 3, "selectable": 300},
        "per_tensor": per_tensor,
        "timings_seconds": {"check": 1.0, "write": 2.0},
        "environment": {"reasonany_gui": "0.1.0", "torch": "2.13.0", "transformers": "4.57.0"},
        "evaluation": {
            "perplexity": {"builtin:reasoning": {"merged": 3.1, "base": 4.0, "reasoning": 3.0, "domain": 4.2}},
            "generations": [{"prompt": "Hi", "outputs": {"merged": "Hello"}}],
        },
    }


def test_card_metadata_is_hub_valid_and_private_paths_stay_private():
    hf = pytest.importorskip("huggingface_hub")
    from huggingface_hub.utils import validate_repo_id

    text = cards.model_card(fake_report())
    card = hf.ModelCard(text)  # parses the YAML front matter the way the Hub does
    data = card.data.to_dict()
    assert data["base_model"] == ["Qwen/Qwen2.5-7B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"]
    for repo in data["base_model"]:
        validate_repo_id(repo)  # raises on anything the Hub would reject
    assert data["base_model_relation"] == "merge" and data["library_name"] == "transformers"
    assert HOME not in text  # no local folder anywhere in the card (metadata, tables, settings)
    assert "local: my-safety-model" in text and "local: safety.jsonl" in text
    assert cards.TOOL_URL in text and cards.PAPER_URL in text  # the tool is linked, not only the paper
    assert "## Evaluation" in text and "lower is better" in text and "3.10" in text
    assert "Reasoning share (`reasoning_ratio`) | `5.00 %`" in text


def test_a_card_of_local_models_only_has_no_base_model_key():
    hf = pytest.importorskip("huggingface_hub")
    local = {r: f"{HOME}/{r}" for r in ("base", "reasoning", "domain")}
    card = hf.ModelCard(cards.model_card(fake_report(**local)))
    assert "base_model" not in card.data.to_dict()


@pytest.mark.parametrize(
    "spec, repo",
    [
        ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B"),
        ("/x/hub/models--org--name.v2/snapshots/0123", "org/name.v2"),
        ("C:\\Users\\a\\.cache\\huggingface\\hub\\models--org--m\\snapshots\\1", "org/m"),
        ("/home/alice/models/base", None),
        ("./base", None),
        ("builtin:reasoning", None),
    ],
)
def test_hub_repo_id(spec, repo):
    assert cards.hub_repo_id(spec) == repo


def test_report_html_reads_like_the_app():
    page = report.render_html(fake_report())
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert len(captions) == 3 and all("share of each cell" in c for c in captions)  # titles outside the SVG
    assert page.count("linearGradient") >= 3  # a colour legend per map
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert ">layer<" in svg and ">q<" in svg  # layers across, modules down, as in the app
    assert "Reasoning share" in page and "5.00 %" in page  # settings in words
    assert "lower is better" in page
