"""The score cache: importance maps kept on disk so a new ratio, scale or scope re-merges in seconds.

Why keyed by content: a key is a hash of the model's content fingerprint, the calibration set's
fingerprint (file + the settings that change its token ids), the score type and the compute precision.
The base model scored on the reasoning data is therefore reused by every later run with that base and
data, whatever the domain model. Maps are stored as sharded safetensors (streamed, one shard in host
memory) in bfloat16 by default (2 B/param; float32 on request). Selection always reads the stored maps,
so a fresh run and a re-tune from the cache select exactly the same elements.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import torch

from .checkpoints import TensorFiles
from .writer import ShardedWriter, TempFolder, write_text

SHARD_BYTES = 2_000_000_000
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def cache_key(**parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class ScoreStore:
    """A folder of score maps, one sub-folder per key (`meta.json` + safetensors shards + index)."""

    def __init__(self, root: Path, registry: Path | None = None) -> None:
        self.root = Path(root)
        #: where temporary folders in flight are listed, so a killed run's half-written map is cleaned later
        self.registry = registry

    def path(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        p = self.path(key)
        return (p / "meta.json").is_file() and (p / "model.safetensors.index.json").is_file()

    def open(self, key: str) -> TensorFiles:
        return TensorFiles.from_folder(self.path(key))

    def meta(self, key: str) -> dict:
        return json.loads((self.path(key) / "meta.json").read_text())

    def write(self, key: str, scores: dict[str, torch.Tensor], precision: str, meta: dict) -> Path:
        """Write maps streamed (each converted on its own device before the copy to the host)."""
        dtype = DTYPES[precision]
        names = sorted(scores)
        sizes = [(n, scores[n].numel() * dtype.itemsize) for n in names]
        final = self.path(key)
        shutil.rmtree(final, ignore_errors=True)
        with TempFolder(final, self.registry) as tmp:
            writer = ShardedWriter(tmp.path, sizes, SHARD_BYTES, prefix="scores")
            for n in names:
                writer.add(n, scores[n].to(dtype))
            writer.close()
            write_text(tmp.path / "meta.json", json.dumps({**meta, "precision": precision, "created": time.time()}, indent=2))
            tmp.commit()
        return final

    @staticmethod
    def bytes_needed(num_params: int, precision: str) -> int:
        return num_params * DTYPES[precision].itemsize

    def size_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
