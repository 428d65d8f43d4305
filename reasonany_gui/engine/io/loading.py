"""A whole model in memory (scoring, evaluation, the tuner's live merge): transformers' loader, made safe.

Why a module of its own: reading tensors lazily (checkpoints) and instantiating a model are different jobs; this
one never runs remote code, prefers safetensors, and places weights straight on the device when it can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError, missing_library_message
from ..core.paths import SAFETENSORS_INDEX
from .checkpoints import visible_safetensors


def load_model(
    path: Path,
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
    allow_pickle: bool = False,
    device_map: dict[str, Any] | None = None,
) -> Any:
    """AutoModelForCausalLM from a local folder: never remote code, safetensors unless pickle is allowed.

    `device_map` (placement.py: a model split across several devices) is handed to transformers as is."""
    import transformers
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no tqdm on a gui-script's missing console; the pipeline reports progress

    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    # the same files Checkpoint reads: safetensors whenever the folder has them (allowing pickle must not turn
    # safetensors off: a trio mixing one .bin model with safetensors models is why pickle is allowed at all)
    path = Path(path)
    has_safetensors = (path / SAFETENSORS_INDEX).is_file() or any(visible_safetensors(path))
    device = torch.device(device)
    # straight to the device: each tensor is read from its memory map and placed there, so the host never holds
    # the whole model (15 GB at 7B in bf16) as it did with load-then-.to(device); the pickle fallback and
    # transformers 4.x without accelerate still load on the host first (estimate.load_transient_bytes)
    direct = loads_straight_to(device, has_safetensors) or device_map is not None
    where = {"device_map": device_map or {"": device}} if direct else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            trust_remote_code=False,
            use_safetensors=has_safetensors or not allow_pickle,
            **{dtype_kw: dtype},
            **where,
            **_without_stale_quantization(path),
        )
    except ImportError as exc:  # a library transformers needs for this load is missing: name it, not the model
        raise InputError(missing_library_message(exc, f"loading {path}")) from None
    except ValueError as exc:
        if "requires `accelerate`" in str(exc) or "requires accelerate" in str(exc):
            missing = ModuleNotFoundError(name="accelerate")
            raise InputError(missing_library_message(missing, f"loading {path}")) from None
        if "trust_remote_code" in str(exc) or "custom code" in str(exc):
            raise InputError(
                f"{path} needs custom code from the model folder to load; ReasonAny GUI never runs code from model "
                "folders. Use a model whose architecture is built into transformers."
            ) from None
        raise InputError(f"{path} could not be loaded as a causal language model: {exc}") from None
    # transformers wraps PreTrainedModel.to in a decorator whose stub mistypes the device argument
    return model if direct else model.to(device)  # type: ignore[arg-type]


def _without_stale_quantization(path: Path) -> dict[str, Any]:
    """{"config": the folder's config without its quantization_config} when config.json has one, else {}.

    Checkpoint has already refused quantized layouts, so an entry still there is stale (plain float weights):
    transformers would otherwise try to quantize on load, or fail on an empty entry."""
    import json

    try:
        raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict) or "quantization_config" not in raw:
        return {}
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    return {"config": config}


def loads_straight_to(device: torch.device | str, has_safetensors: bool = True) -> bool:
    """Whether `load_model` places the weights on `device` while reading them (no whole-model host copy).

    The CPU is the host anyway. For a GPU it needs safetensors and a `device_map`, which transformers honours only
    with accelerate installed (a core dependency; without it the model is loaded on the host, then moved)."""
    if torch.device(device).type == "cpu" or not has_safetensors:
        return False
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None
