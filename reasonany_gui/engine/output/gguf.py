"""A merged model folder as one GGUF file (llama.cpp, Ollama, LM Studio), and the Ollama Modelfile next to it.

Why the `gguf` package (llama.cpp's own): its GGUFWriter, HF → GGUF tensor names (gguf.tensor_mapping) and numpy
quantizers are what llama.cpp reads, kept in step with it; this module chooses the metadata and the order.
Why two passes: the tensor table (names, shapes, types) is written before the data, so it is planned from the
safetensors headers alone; then each tensor is read, converted and written in turn, so a 7 B export holds one
tensor (plus its quantized copy), never the model. Written to a hidden temp name and renamed at the end: a cancel,
a full disk or a crash leaves no half file under the real name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.events import CancelToken
from ..core.paths import run_files
from ..io.checkpoints import Checkpoint
from ..io.writer import TMP_MARK, check_free_space, write_error, write_text
from .card import hub_repo_id
from .gguf_vocab import Vocab, add_vocab, read_vocab

#: transformers architecture → llama.cpp architecture (Mistral is llama to llama.cpp, as its converter writes it)
FAMILIES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}
MODEL_TYPES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
SUPPORTED_SENTENCE = "GGUF export supports Llama, Mistral, Qwen2/Qwen2.5 and Qwen3 models"
#: the types the gguf package can write (its numpy quantizers); k-quants it can only read
TYPES = ("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0")
DEFAULT_TYPE = "q8_0"
#: what each type is for, in plain words (CLI help, the export dialog)
TYPE_HELP = {
    "f32": "full precision, largest file (4 bytes a weight)",
    "f16": "half precision, as good as the merge (2 bytes a weight)",
    "bf16": "half precision with float32's range (2 bytes a weight)",
    "q8_0": "8-bit, nearly as good as f16 at about half its size (recommended)",
    "q5_1": "5-bit, smaller, slightly less accurate",
    "q5_0": "5-bit, smaller, slightly less accurate",
    "q4_1": "4-bit, smallest here, noticeably less accurate on small models",
    "q4_0": "4-bit, smallest here, noticeably less accurate on small models",
}
MODELFILE = "Modelfile"
#: transformers' rotary buffers some old checkpoints saved: not weights, llama.cpp computes them
_NOT_WEIGHTS = re.compile(r"rotary_emb\.inv_freq$")


@dataclass(frozen=True)
class PlannedTensor:
    source: str  # name in the safetensors folder
    name: str  # GGUF name
    shape: tuple[int, ...]  # logical shape (rows, columns) as in PyTorch
    qtype: int  # gguf.GGMLQuantizationType
    nbytes: int


@dataclass
class Source:
    """A merged folder checked for export: its config, llama.cpp architecture and the tensors to write."""

    folder: Path
    config: dict[str, Any]
    arch: str
    tensors: list[PlannedTensor] = field(default_factory=list)
    ckpt: Checkpoint | None = None

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


def file_name(folder: Path, type_name: str) -> str:
    """The GGUF file's name: the output folder's name and the type, e.g. `my-merge-Q8_0.gguf` (llama.cpp's style)."""
    return f"{Path(folder).resolve().name}-{type_name.upper()}.gguf"


def family(config: dict[str, Any], where: Path) -> str:
    """The llama.cpp architecture of a model config, or one sentence naming the supported families."""
    names = config.get("architectures") or []
    model_type = str(config.get("model_type") or "unknown")
    # a config without `architectures` (some conversions write none) names its family by model_type alone
    arch = FAMILIES.get(str(names[0])) if names else MODEL_TYPES.get(model_type)
    if arch is None:
        raise InputError(f"{SUPPORTED_SENTENCE}; the model in {where} is {names[0] if names else model_type}.")
    return arch


def open_source(folder: Path, type_name: str) -> Source:
    """Check the folder and plan every tensor (names, shapes, types, bytes) from the headers; no weight is read."""
    folder = Path(folder)
    if type_name not in TYPES:
        raise InputError(f"GGUF type {type_name!r} is not one this app writes: pick one of {', '.join(TYPES)}.")
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is not a model folder (no config.json): pick a merge's output folder.")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    arch = family(config, folder)  # before opening any weights: a refused family costs nothing
    ckpt = Checkpoint(folder)
    source = Source(folder, config, arch, ckpt=ckpt)
    source.tensors = _plan(ckpt, arch, config, type_name)
    return source


def _plan(ckpt: Checkpoint, arch: str, config: dict[str, Any], type_name: str) -> list[PlannedTensor]:
    import gguf

    n_layers = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.upper()), n_layers)
    target = gguf.GGMLQuantizationType[type_name.upper()]
    planned = []
    for source in ckpt.names:
        if _NOT_WEIGHTS.search(source):
            continue
        name = names.get_name(source, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise InputError(
                f"Tensor {source} of {ckpt.path} has no place in a {arch} GGUF file: the model is not a plain "
                f"{arch} model. {SUPPORTED_SENTENCE}."
            )
        shape = ckpt.tensors[source].shape
        qtype = _tensor_type(name, shape, target)
        nbytes = int(np.prod(gguf.quant_shape_to_byte_shape(shape, qtype))) if _quantized(qtype) else 0
        if not nbytes:
            nbytes = int(np.prod(shape)) * (4 if qtype == gguf.GGMLQuantizationType.F32 else 2)
        planned.append(PlannedTensor(source, name, shape, int(qtype), nbytes))
    return planned


def _quantized(qtype: Any) -> bool:
    import gguf

    return qtype not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.BF16)


def _tensor_type(name: str, shape: tuple[int, ...], target: Any) -> Any:
    """The type of one tensor, as llama.cpp chooses: norms and biases (1-D) stay F32; the embedding and output
    head of a 4/5-bit file get Q8_0 (they carry the most error per bit); a row that is not whole blocks gets F16."""
    import gguf

    q = gguf.GGMLQuantizationType
    if len(shape) < 2:
        return q.F32
    if target in (q.Q4_0, q.Q4_1, q.Q5_0, q.Q5_1) and name in ("token_embd.weight", "output.weight"):
        target = q.Q8_0
    block = gguf.GGML_QUANT_SIZES[target][0]
    return target if shape[-1] % block == 0 else q.F16


def _rope(config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(rope theta, scaling dict or {}) from either transformers 4 (rope_theta, rope_scaling) or 5 (rope_parameters)."""
    params = config.get("rope_parameters") or {}
    scaling = dict(config.get("rope_scaling") or params or {})
    theta = float(config.get("rope_theta") or params.get("rope_theta") or 10000.0)
    kind = str(scaling.get("rope_type") or scaling.get("type") or "default")
    return theta, ({} if kind == "default" else {**scaling, "rope_type": kind})


def head_dim(config: dict[str, Any]) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def llama3_rope_factors(config: dict[str, Any]) -> np.ndarray:
    """The per-frequency factors of Llama 3.1's rope scaling (llama.cpp reads them as the rope_freqs tensor)."""
    theta, s = _rope(config)
    dim = head_dim(config)
    factor, low, high = float(s.get("factor", 8.0)), float(s.get("low_freq_factor", 1.0)), s.get("high_freq_factor")
    old = float(s.get("original_max_position_embeddings", 8192))
    high = float(high if high is not None else 4.0)
    out = []
    for freq in 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim):
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def _add_architecture(writer: Any, src: Source) -> list[tuple[str, np.ndarray]]:
    """The architecture's keys; returns extra tensors llama.cpp needs besides the weights (Llama 3.1's rope_freqs)."""
    import gguf

    c = src.config
    writer.add_context_length(int(c.get("max_position_embeddings") or 4096))
    writer.add_embedding_length(int(c["hidden_size"]))
    writer.add_block_count(int(c["num_hidden_layers"]))
    writer.add_feed_forward_length(int(c["intermediate_size"]))
    writer.add_head_count(int(c["num_attention_heads"]))
    writer.add_head_count_kv(int(c.get("num_key_value_heads") or c["num_attention_heads"]))
    writer.add_layer_norm_rms_eps(float(c.get("rms_norm_eps") or 1e-6))
    writer.add_vocab_size(int(c["vocab_size"]))
    dim = head_dim(c)
    if dim != c["hidden_size"] // c["num_attention_heads"] or src.arch == "qwen3":
        writer.add_key_length(dim)
        writer.add_value_length(dim)
    writer.add_rope_dimension_count(dim)
    theta, scaling = _rope(c)
    writer.add_rope_freq_base(theta)
    kind = scaling.get("rope_type")
    if kind == "llama3":
        return [("rope_freqs.weight", llama3_rope_factors(c))]
    if kind in ("linear", "yarn"):
        writer.add_rope_scaling_type(gguf.RopeScalingType[kind.upper()])
        writer.add_rope_scaling_factor(float(scaling.get("factor", 1.0)))
        if kind == "yarn" and scaling.get("original_max_position_embeddings"):
            writer.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))
    elif kind:
        raise InputError(
            f"The model in {src.folder} uses rope scaling {kind!r}, which this export does not write yet; "
            "use llama.cpp's converter for it."
        )
    return []


def add_general(writer: Any, folder: Path, type_name: str) -> None:
    """general.*: the merge's name, the tool and method, the source models (repo ids where they came from the Hub)."""
    import gguf

    report_path = run_files(folder) / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    name = Path(folder).resolve().name
    writer.add_name(name)
    writer.add_type(gguf.GGUFType.MODEL)
    method = str(report.get("method") or (report.get("config") or {}).get("method") or "unknown")
    writer.add_description(f"{name}: merged with ReasonAny GUI (method {method}), exported to {type_name.upper()}.")
    writer.add_tags(["merge", "reasonany"])
    writer.add_string("reasonany.method", method)
    models = report.get("models") or {}
    for i, role in enumerate(r for r in ("base", "reasoning", "domain") if r in models):
        spec = str(models[role].get("spec") or "")
        repo = hub_repo_id(spec, models[role].get("path"))
        writer.add_base_model_name(i, f"{role}: {repo or Path(spec).name}")
        if repo:
            writer.add_base_model_repo_url(i, f"https://huggingface.co/{repo}")
    writer.add_base_model_count(len([r for r in ("base", "reasoning", "domain") if r in models]))


#: weights converted at a time (64 MB as float32): a 7 B model's embedding (up to 0.5 G weights) is never held
#: whole in float32 next to its quantizer's temporaries, only in its stored type and its converted copy
CHUNK_WEIGHTS = 1 << 24


def _permuted(src: Source, t: PlannedTensor) -> bool:
    """Llama-architecture q/k weights: llama.cpp's rope wants each head's two halves interleaved."""
    return src.arch == "llama" and t.name.endswith(("attn_q.weight", "attn_k.weight"))


def _permute(w: np.ndarray, src: Source, t: PlannedTensor) -> np.ndarray:
    heads = int(src.config["num_attention_heads"])
    if t.name.endswith("attn_k.weight"):
        heads = int(src.config.get("num_key_value_heads") or heads)
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensor_data(src: Source, t: PlannedTensor) -> np.ndarray:
    """One tensor in its GGUF type, converted in row chunks of CHUNK_WEIGHTS (q/k, which are small, whole)."""
    assert src.ckpt is not None
    tensor = src.ckpt.get(t.source)  # stored type, memory-mapped
    if _permuted(src, t):
        return _encoded(_permute(tensor.float().numpy(), src, t), t.qtype)
    if tensor.dim() < 2:
        return _encoded(tensor.float().numpy(), t.qtype)
    rows = max(1, CHUNK_WEIGHTS // max(1, tensor[0].numel()))
    parts = [_encoded(tensor[i : i + rows].float().numpy(), t.qtype) for i in range(0, tensor.shape[0], rows)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def _encoded(w: np.ndarray, qtype: int) -> np.ndarray:
    import gguf

    q = gguf.GGMLQuantizationType(qtype)
    if q == q.F32:
        return np.ascontiguousarray(w, dtype=np.float32)
    if q == q.F16:
        return np.ascontiguousarray(w, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(w, dtype=np.float32), q)


def write_gguf(
    src: Source,
    dest: Path,
    type_name: str,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write `src` to `dest` (a .gguf file) tensor by tensor; progress(done, total, tensor name) after each.

    The file appears under its name only when complete (temp name, then rename); a cancel or an error removes
    the temp file. Returns `dest`."""
    import gguf

    dest = Path(dest)
    assert src.ckpt is not None, "open_source() makes the Source"
    check_free_space(dest.parent, src.total_bytes)
    vocab: Vocab = read_vocab(src.folder, int(src.config["vocab_size"]))
    tmp = dest.with_name(f".{dest.name}{TMP_MARK}{os.getpid()}")
    writer = gguf.GGUFWriter(tmp, src.arch)
    try:
        extra = _add_architecture(writer, src)
        add_general(writer, src.folder, type_name)
        writer.add_file_type(gguf.LlamaFileType[f"MOSTLY_{type_name.upper()}"] if type_name != "f32" else 0)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        add_vocab(writer, src.folder, vocab)
        for name, data in extra:
            writer.add_tensor_info(name, data.shape, np.dtype(np.float32), data.nbytes)
        for t in src.tensors:
            qtype = gguf.GGMLQuantizationType(t.qtype)
            writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _name, data in extra:
            writer.write_tensor_data(data)
        for i, t in enumerate(src.tensors):
            if cancel is not None:
                cancel.check()
            writer.write_tensor_data(_tensor_data(src, t))
            src.ckpt.release_maps()  # unmap what was read: mapped pages count as the process's memory until then
            if progress is not None:
                progress(i + 1, len(src.tensors), t.name)
        writer.close()
        os.replace(tmp, dest)
    except BaseException as exc:
        writer.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise write_error(exc, dest) from None
        raise
    finally:
        if src.ckpt is not None:
            src.ckpt.close()
    return dest


# ---------------------------------------------------------------------------------------------- Ollama Modelfile
#: Ollama's Go template for ChatML (Qwen and the demo): Ollama reads a GGUF's Jinja template only for models it knows
_CHATML = "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
_LLAMA3 = (
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def modelfile_text(gguf_name: str, stop_tokens: list[str], chat_template: str | None) -> str:
    """An Ollama Modelfile: FROM the GGUF next to it, its stop tokens, and a TEMPLATE where Ollama needs one."""
    lines = [f"# Load into Ollama:  ollama create {Path(gguf_name).stem.lower()} -f Modelfile", f"FROM ./{gguf_name}"]
    template = chat_template or ""
    if "<|im_start|>" in template:
        lines.append(f'TEMPLATE """{_CHATML}"""')
    elif "<|start_header_id|>" in template:
        lines.append(f'TEMPLATE """{_LLAMA3}"""')
    elif template:
        lines.append("# The chat template is in the GGUF file; Ollama uses it for the model families it knows.")
    lines += [f'PARAMETER stop "{t}"' for t in stop_tokens]
    return "\n".join(lines) + "\n"


def write_modelfile(folder: Path, gguf_path: Path) -> Path:
    """The Modelfile next to the GGUF file (in the output folder), from the folder's tokenizer and template."""
    from gguf import SpecialVocab

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    vocab = read_vocab(Path(folder), int(config["vocab_size"]))
    template = SpecialVocab(Path(folder)).chat_template
    path = Path(gguf_path).parent / MODELFILE
    write_text(
        path, modelfile_text(Path(gguf_path).name, vocab.stop_tokens, template if isinstance(template, str) else None)
    )
    return path
