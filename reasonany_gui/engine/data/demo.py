"""Tiny model trios: the app's built-in demo and the test suite's models, from one builder.

Why here and not in tests/: the demo must work on a fresh install with no network, so the engine itself
knows how to make a small base / reasoning / domain trio (a byte-level tokenizer with a chat template and
a few-layer Qwen2 or Llama model). The trained trio of benchmarks/quality, when shipped in
resources/demo/, takes precedence over the perturbed one made here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ..core.paths import RESOURCES

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def make_tokenizer() -> Any:
    """A byte-level tokenizer (256 byte tokens + 3 specials): no training, no network, any text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=SPECIAL_TOKENS[0],
        pad_token=SPECIAL_TOKENS[0],
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_config(
    arch: str = "qwen2",
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int | None = None,
    vocab: int = 259,
    tie: bool = False,
    max_positions: int = 1024,
) -> Any:
    """A small Qwen2 or Llama config (the two families the paper and most merges use)."""
    from transformers import LlamaConfig, Qwen2Config

    cls = {"qwen2": Qwen2Config, "llama": LlamaConfig}[arch]
    return cls(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate or hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie,
        bos_token_id=0,
        eos_token_id=256,
        pad_token_id=256,
    )


def save_model(model: Any, tokenizer: Any, folder: Path, dtype: torch.dtype | None = None) -> Path:
    """Save in the Hugging Face layout with safetensors, as a user's model folder would look."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def build_trio(
    folder: str | Path,
    arch: str = "qwen2",
    seed: int = 0,
    perturb: float = 0.05,
    dtype: torch.dtype = torch.float32,
    **config_kwargs: Any,
) -> dict[str, Path]:
    """Make base/, reasoning/ and domain/ under `folder`: experts are the base plus seeded perturbations.

    Perturbations are relative to each tensor's scale, sparse-ish and different per expert, so task
    vectors, scores and masks are all non-trivial, which is what the engine tests need.
    """
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    torch.manual_seed(seed)
    config = make_config(arch, **config_kwargs)
    tokenizer = make_tokenizer()
    base = AutoModelForCausalLM.from_config(config)
    base.eval()
    paths = {"base": save_model(base, tokenizer, folder / "base", dtype)}
    for i, role in enumerate(("reasoning", "domain")):
        gen = torch.Generator().manual_seed(seed * 1000 + i + 1)
        expert = AutoModelForCausalLM.from_config(config)
        expert.load_state_dict(base.state_dict())
        with torch.no_grad():
            for p in expert.parameters():
                noise = torch.randn(p.shape, generator=gen) * (p.detach().float().std() + 1e-3) * perturb
                keep = torch.rand(p.shape, generator=gen) < 0.5
                p.add_((noise * keep).to(p.dtype))
        paths[role] = save_model(expert, tokenizer, folder / role, dtype)
    return paths


def shipped_demo_dir() -> Path:
    return RESOURCES / "demo"


#: in the shipped demo folder: the settings the trio was benchmarked with, and its own calibration data
PRESET_FILE = "demo.json"


def _read_preset_file(folder: Path | None) -> tuple[Path, dict[str, Any]]:
    """The demo folder and its demo.json ({} when there is none: the perturbed fallback has no preset)."""
    folder = Path(folder) if folder is not None else shipped_demo_dir()
    path = folder / PRESET_FILE
    return folder, (json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {})


def is_demo_trio(model_specs: dict[str, str], folder: Path | None = None) -> bool:
    """Whether base, reasoning and domain are exactly the shipped demo's three folders."""
    folder = Path(folder) if folder is not None else shipped_demo_dir()
    try:
        return all(Path(model_specs[r]).resolve() == (folder / r).resolve() for r in ("base", "reasoning", "domain"))
    except (KeyError, OSError, TypeError):
        return False


def demo_preset(folder: Path | None = None) -> dict[str, Any]:
    """MergeConfig overrides that go with the demo trio (empty for the perturbed fallback trio).

    Why a preset: the app's defaults are chosen for users' real models (see README, "Defaults"), but the
    shipped trio is 0.85 M parameters, where benchmarks/quality measured that a merge must keep most of
    each task vector. The demo therefore runs with the setting the benchmark found best for this very trio,
    on the calibration data it was trained alongside, so a first-time user sees a merge that works.
    """
    folder, preset = _read_preset_file(folder)
    settings = dict(preset.get("settings", {}))
    for key, rel in preset.get("data", {}).items():
        if key in ("reasoning_data", "domain_data"):
            settings[key] = str((folder / rel).resolve())
    return settings


def demo_prompts(model_specs: dict[str, str], folder: Path | None = None) -> list[str]:
    """Held-out prompts that show the demo's two skills (one of each kind), when these models are the demo.

    Why: Evaluate's default prompts are the first held-out rows of the calibration data, which for the demo may
    be a harmless request; these make sure a first-time user sees a chain of thought and a refusal.
    """
    if not is_demo_trio(model_specs, folder):
        return []
    return list(_read_preset_file(folder)[1].get("prompts", []))


def ensure_demo(cache_dir: Path | None = None) -> dict[str, Path]:
    """The demo trio: the trained one shipped in resources/demo/, else a perturbed one made once (seconds)."""
    shipped = shipped_demo_dir()
    if all((shipped / r / "config.json").is_file() for r in ("base", "reasoning", "domain")):
        return {r: shipped / r for r in ("base", "reasoning", "domain")}
    from ..core.paths import cache_dir as default_cache

    target = Path(cache_dir or default_cache()) / "demo-trio-v1"
    if not all((target / r / "config.json").is_file() for r in ("base", "reasoning", "domain")):
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        build_trio(tmp, arch="qwen2", seed=0)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return {r: target / r for r in ("base", "reasoning", "domain")}
