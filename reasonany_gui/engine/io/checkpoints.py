"""Model folders: read tensors lazily, describe a model, and say whether three models' configs fit.

Why lazy: a 7B model is 15 GB; the merge streams one tensor at a time from memory-mapped safetensors
(`safe_open`), so host memory stays near one output shard. Why strict: every later stage assumes the
three models share names and shapes, so all mismatches are found and reported here, in one message,
before any heavy work starts. Safe by default: safetensors only; pickle files only when the user allows
it (then with `weights_only=True`); `trust_remote_code` is never turned on.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core import layout
from ..core.errors import InputError
from ..core.paths import SAFETENSORS_INDEX

INDEX_PICKLE = "pytorch_model.bin.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_DTYPE_NAMES = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F64": "float64",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def cached_repo_ids() -> list[str]:
    """Model repos in the local Hugging Face cache that carry a config.json (offered in the GUI's pickers)."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:
        return []
    out = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        if any(f.file_name == "config.json" for rev in repo.revisions for f in rev.files):
            out.append(repo.repo_id)
    return sorted(out)


@dataclass(frozen=True)
class TensorMeta:
    file: Path
    shape: tuple[int, ...]
    dtype: str  # torch dtype name, e.g. "bfloat16"

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def is_float(self) -> bool:
        return self.dtype in ("float32", "float16", "bfloat16", "float64")


class TensorFiles:
    """Tensors spread over safetensors (or, if allowed, pickle) files, read lazily one at a time."""

    def __init__(self, files: list[Path], is_pickle: bool = False) -> None:
        self.is_pickle = is_pickle
        self.tensors: dict[str, TensorMeta] = {}
        self._pickle_cache: dict[Path, dict[str, torch.Tensor]] = {}
        self._open: dict[Path, Any] = {}  # safetensors safe_open handles (untyped)
        for f in files:
            self._read_header(f)

    @classmethod
    def from_folder(cls, folder: Path) -> TensorFiles:
        """A folder written by writer.ShardedWriter (index + shards), e.g. a score map."""
        return cls(_files_from_index(Path(folder), SAFETENSORS_INDEX))

    def _read_header(self, f: Path) -> None:
        if self.is_pickle:
            for name, t in self._load_pickle(f).items():
                self.tensors[name] = TensorMeta(f, tuple(t.shape), str(t.dtype).removeprefix("torch."))
            return
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(f), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 - safe_open has keys() and no iteration
                    sl = handle.get_slice(name)
                    dtype = _DTYPE_NAMES.get(sl.get_dtype(), sl.get_dtype().lower())
                    self.tensors[name] = TensorMeta(f, tuple(sl.get_shape()), dtype)
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(
                f"{f} is not a readable safetensors file ({exc}). The file is truncated or corrupted: "
                "download it again."
            ) from None

    def _load_pickle(self, f: Path) -> dict[str, torch.Tensor]:
        if f not in self._pickle_cache:
            try:
                try:
                    data = torch.load(str(f), map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as exc:  # files saved before torch 1.6 (not zip) cannot be memory-mapped
                    if "mmap" not in str(exc):
                        raise
                    data = torch.load(str(f), map_location="cpu", weights_only=True)
            except Exception as exc:
                lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
                code_marks = ("GLOBAL", "Unsupported global", "Unsupported class")  # objects, not tensors
                why = next((ln for ln in lines if any(m in ln for m in code_marks)), None)
                if why is None:  # not a code problem: a damaged or foreign file
                    raise InputError(
                        f"{f} is not a readable PyTorch weight file ({lines[0] if lines else exc}). "
                        "The file is truncated or corrupted: download it again."
                    ) from None
                raise InputError(
                    f"{f} could not be loaded safely (weights_only=True): it holds more than tensors, and loading it "
                    f"could run code ({why}). Use a safetensors copy of the model instead."
                ) from None
            if not isinstance(data, dict):
                raise InputError(f"{f} does not hold a state dict of tensors.")
            self._pickle_cache[f] = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
        return self._pickle_cache[f]

    @property
    def names(self) -> list[str]:
        """Tensor names in canonical order (sorted), the order ties are broken in."""
        return sorted(self.tensors)

    def get(self, name: str) -> torch.Tensor:
        """One tensor, read from disk (memory-mapped), on the CPU, in its stored dtype."""
        meta = self.tensors[name]
        if self.is_pickle:
            return self._load_pickle(meta.file)[name]
        from safetensors import safe_open

        handle = self._open.get(meta.file)
        if handle is None:
            handle = safe_open(str(meta.file), framework="pt")
            self._open[meta.file] = handle
        try:
            return handle.get_tensor(name)
        except Exception as exc:
            raise InputError(f"Reading tensor {name} from {meta.file} failed ({exc}): the file is damaged.") from None

    def layouts(self, float_dtype: torch.dtype) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
        """Each tensor's (dtype, shape) with floats as `float_dtype`: the merged output's layout, known before it is
        computed (writer.ShardedWriter streams each tensor to its offset with it)."""
        return {n: (float_dtype if m.is_float else getattr(torch, m.dtype), m.shape) for n, m in self.tensors.items()}

    def release_maps(self) -> None:
        """Drop the open safetensors handles (and their memory maps); they reopen lazily on the next get()."""
        self._open.clear()

    def close(self) -> None:
        self.release_maps()
        self._pickle_cache.clear()

    @property
    def weight_files(self) -> list[Path]:
        return sorted({m.file for m in self.tensors.values()})


class Checkpoint(TensorFiles):
    """A model folder opened lazily: config, tensor metadata, and one tensor at a time on request."""

    def __init__(self, path: Path, allow_pickle: bool = False) -> None:
        self.path = Path(path)
        _refuse_special_files(self.path)
        self.config = _read_config(self.path)
        if not isinstance(self.config.get("model_type"), str) or not self.config["model_type"].strip():
            raise InputError(
                f'{self.path / "config.json"} has no "model_type", so transformers can load neither this '
                "model nor a merge of it. Re-download the model (its config.json is incomplete)."
            )
        self.is_pickle = False
        #: weight files in the folder that are not read (transformers ignores them too), for a warning
        self.ignored_files: list[Path] = []
        files = self._weight_files(allow_pickle)
        super().__init__(files, self.is_pickle)
        if not self.tensors:
            raise InputError(f"{self.path}: the weight files hold no tensors. Re-download or re-save the model.")
        if not self.is_pickle and not (self.path / SAFETENSORS_INDEX).is_file():
            self._refuse_duplicates(files + self.ignored_files)
        #: what a run should note about this model (the report keeps it): e.g. a stale quantization_config
        self.notes: list[str] = _judge_quantized(self.path, self.config, self.tensors)

    def _weight_files(self, allow_pickle: bool) -> list[Path]:
        p = self.path
        if (p / SAFETENSORS_INDEX).is_file():
            return _files_from_index(p, SAFETENSORS_INDEX)
        safes = visible_safetensors(p)
        if len(safes) > 1 and (p / "model.safetensors") in safes:
            # no index: transformers loads model.safetensors alone, so scoring and merging must read it alone;
            # files that repeat its tensors are refused after the headers are read (_refuse_duplicates)
            self.ignored_files = [f for f in safes if f.name != "model.safetensors"]
            return [p / "model.safetensors"]
        if safes:
            return safes
        pickles = [f for f in sorted(p.iterdir()) if f.suffix in PICKLE_SUFFIXES and f.is_file()]
        if pickles or (p / INDEX_PICKLE).is_file():
            if not allow_pickle:
                raise InputError(
                    f"{p} has only pickle weight files ({', '.join(f.name for f in pickles[:3]) or INDEX_PICKLE}). "
                    "Pickle "
                    "files can run code when loaded, so they are refused. Convert the model to safetensors, or, if you "
                    "trust its source, allow pickle files (--allow-pickle; they are then loaded with "
                    "weights_only=True)."
                )
            self.is_pickle = True
            return _files_from_index(p, INDEX_PICKLE) if (p / INDEX_PICKLE).is_file() else pickles
        raise InputError(f"{p} has a config.json but no weight files (*.safetensors). Is the download complete?")

    def _refuse_duplicates(self, files: list[Path]) -> None:
        """Several safetensors files without an index that store the same tensor: which one is the model?"""
        if len(files) < 2:
            return
        seen: dict[str, Path] = {}
        for f in files:
            for name in _safetensors_names(f):
                if name in seen:
                    raise _ambiguous(self.path, [seen[name], f], name)
                seen[name] = f

    @property
    def tied_embeddings(self) -> bool:
        return bool(self.config.get("tie_word_embeddings", _tie_default(self.config)))

    @property
    def embedding_rows(self) -> int | None:
        """Rows of the input embedding (the token ids the model accepts); None when no tensor looks like one."""
        shapes = [m.shape for n, m in self.tensors.items() if layout.is_input_embedding(n) and len(m.shape) == 2]
        return shapes[0][0] if shapes else None

    @property
    def num_params(self) -> int:
        return sum(m.numel for m in self.tensors.values() if m.is_float)

    @property
    def storage_dtype(self) -> str:
        counts = Counter(m.dtype for m in self.tensors.values() if m.is_float)
        return counts.most_common(1)[0][0] if counts else "float32"

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.weight_files)

    def fingerprint(self) -> str:
        """Content fingerprint: headers, sizes and 16 spread samples of 64 KiB per file (seconds even for 15 GB).

        Why not a full hash: hashing 15 GB costs ~30 s per model on every run; two different fine-tunes
        differ in every sampled block, and the headers pin names, shapes and dtypes.
        """
        h = hashlib.blake2b(digest_size=16)
        for f in self.weight_files:
            size = f.stat().st_size
            h.update(f.name.encode() + str(size).encode())
            with open(f, "rb") as fh:
                for i in range(17):
                    fh.seek(min(size - 1, (size * i) // 16) if size else 0)
                    h.update(fh.read(65536))
        return h.hexdigest()


def _read_config(path: Path) -> dict[str, Any]:
    cfg = path / "config.json"
    if not path.is_dir():
        raise InputError(f"Model folder {path} does not exist. Check the path.")
    if not cfg.is_file():
        raise InputError(
            f"{path} is not a model folder: it has no config.json. Pick the folder that holds config.json and the "
            "*.safetensors files."
        )
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InputError(f"{cfg} is not valid JSON ({why}). Re-download the model.") from None
    if not isinstance(data, dict):
        raise InputError(f"{cfg} does not hold a JSON object.")
    text = data.get("text_config")
    if text is not None and not isinstance(text, dict):
        raise InputError(
            f'{cfg}: "text_config" must be an object (found a {type(text).__name__}). '
            "Re-download the model or fix its config.json."
        )
    return data


def visible_safetensors(path: Path) -> list[Path]:
    """*.safetensors files of a folder, without hidden ones (macOS '._model.safetensors' resource forks)."""
    return sorted(f for f in Path(path).glob("*.safetensors") if not f.name.startswith("."))


def _safetensors_names(f: Path) -> list[str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(f), framework="pt") as handle:
            return list(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(
            f"{f} is not a readable safetensors file ({exc}). The file is truncated or corrupted: download it again."
        ) from None


def _ambiguous(folder: Path, files: list[Path], name: str) -> InputError:
    return InputError(
        f"{folder} holds several safetensors files that store the same tensors ({', '.join(f.name for f in files)}: "
        f"both have {name}) and no {SAFETENSORS_INDEX} that says which one is the model. A leftover copy? Move "
        "the extra file(s) out of the folder, so that one copy of each tensor remains."
    )


_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def special_file_kind(f: Path) -> str | None:
    """'a named pipe (FIFO)', 'a socket', 'a device', or None for a regular file, a folder or a missing path.

    Why: opening a FIFO blocks until something writes to it; the run (and the app's window) would hang."""
    try:
        mode = os.stat(f).st_mode
    except OSError:
        return None
    return next((what for test, what in _KINDS if test(mode)), None)


def _refuse_special_files(folder: Path) -> None:
    """No file of a model folder may be a pipe, socket or device: every loader would block on it."""
    try:
        entries = sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []
    except OSError:
        return
    for f in entries:
        kind = special_file_kind(f)
        if kind is not None:
            raise InputError(
                f"{f} is {kind}, not a regular file: reading it would hang. Remove it from the model "
                "folder or pick another folder."
            )
        if f.is_symlink() and f.suffix in (".safetensors", ".json", *PICKLE_SUFFIXES):
            try:
                f.stat()
                continue
            except OSError as exc:
                why = "points to itself (a loop of links)" if exc.errno == errno.ELOOP else "points to a missing file"
            raise InputError(
                f"{f} is a symbolic link that {why} ({os.readlink(f)}), so it holds no data. Replace it with the "
                "real file (download it again) or remove it from the model folder."
            )


#: tensor name endings of quantized layouts (GPTQ/AWQ, bitsandbytes, FP8/compressed-tensors): packed weights and
#: their scales, which a merge cannot add to a float task vector
QUANTIZED_PARTS = re.compile(
    r"\.(qweight|qzeros|scales|g_idx|absmax|quant_map|quant_state[\w.]*|SCB|weight_format|weight_scale|input_scale"
    r"|weight_packed|weight_shape|weight_zero_point)$"
)


def _judge_quantized(folder: Path, config: dict[str, Any], tensors: Mapping[str, TensorMeta]) -> list[str]:
    """A config.json with a `quantization_config` is judged by its weights: a quantized layout (a tensor that is
    not floating point, or one of QUANTIZED_PARTS) is refused; plain floating-point weights are merged, and the
    stale entry is returned as a note (the loader ignores it). Why not trust the config: an exported float model
    often keeps the entry (issue 22), and `quantization_config: {}` used to fail inside transformers after
    scoring had started."""
    if "quantization_config" not in config or config["quantization_config"] is None:
        return []
    q = config["quantization_config"]
    quantized = [n for n, m in tensors.items() if not m.is_float or QUANTIZED_PARTS.search(n)]
    if quantized:
        method = q.get("quant_method", "") if isinstance(q, dict) else ""
        raise InputError(
            f"{folder}/config.json describes a quantized model{f' ({method})' if method else ''}: quantized models "
            "are not supported, because their weights are not the fine-tuned values to merge "
            f"({quantized[0]} is a {tensors[quantized[0]].dtype} tensor of a quantized layout). Use the "
            "full-precision (bfloat16/float16/float32) weights of the model."
        )
    return [
        f"{folder}/config.json has a quantization_config, but every weight is plain floating point "
        f"({', '.join(sorted({m.dtype for m in tensors.values()}))}): the entry is stale and was ignored."
    ]


def _files_from_index(path: Path, index_name: str) -> list[Path]:
    index = path / index_name
    kind = special_file_kind(index)
    if kind is not None:
        raise InputError(f"{index} is {kind}, not a regular file: reading it would hang. Remove it.")
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError, RecursionError, OSError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InputError(f"{index} is not a valid shard index ({why}). Re-download the model.") from None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v and Path(v).name == v and not v.startswith(".")
        for k, v in weight_map.items()
    ):
        raise InputError(
            f'{index} is not a valid shard index: "weight_map" must map each tensor name to the '
            "name of a shard file in the same folder. Re-download the model."
        )
    files = sorted({path / name for name in weight_map.values()})
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(
            f"{path} is incomplete: the index {index_name} names shard(s) that are missing: {', '.join(missing)}. "
            "Download the missing files again."
        )
    return files


def _tie_default(config: dict[str, Any]) -> bool:
    """transformers' default for configs that do not say (most causal-LM configs default to tied)."""
    try:
        from transformers import AutoConfig

        cls = AutoConfig.for_model(config.get("model_type", "")).__class__
        return bool(getattr(cls(), "tie_word_embeddings", True))
    except Exception:
        return True
