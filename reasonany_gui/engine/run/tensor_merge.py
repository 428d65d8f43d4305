"""One output tensor: the method's merge of the three inputs under the selection's masks, in the saved dtype.

Why a module of its own: the writer and the tuner's live merge (measure.live) must produce the same bytes for a
tensor; both go through `Pipeline.merge_one`, which is this function with the run's state."""

from __future__ import annotations

import torch

from ..core import layout
from ..io.checkpoints import Checkpoint
from ..scoring.selection import Selection
from ..settings.config import MergeConfig


def merge_tensor_of(
    cfg: MergeConfig,
    name: str,
    trio: tuple[Checkpoint, Checkpoint, Checkpoint],
    sel: Selection | None,
    out_dtype: torch.dtype,
    renamed: tuple[dict[int, str], Checkpoint],
) -> torch.Tensor:
    """Tensor `name` merged from (base, reasoning, domain). A scored method merges only what `sel` masks (the rest
    stays the base's); `renamed`: (token ids whose rows come whole from the tokenizer source, that source)."""
    from ..methods.registry import merge_tensor

    base, rsn, dom = trio
    b = base.get(name)
    if not b.is_floating_point():
        return b
    if not cfg.needs_scores:
        return merge_tensor(cfg.method, name, b, rsn.get(name), dom.get(name), cfg).to(out_dtype)
    if sel is None or name not in sel.masks:
        out = b.to(out_dtype)
    else:
        m_r, m_d = sel.bool_masks(name)
        out = merge_tensor(cfg.method, name, b, rsn.get(name), dom.get(name), cfg, m_r, m_d).to(out_dtype)
    out = _renamed_rows(name, out, b, *renamed)
    # the tied head is written twice from this one memory-mapped tensor (safetensors returns the same
    # tensor for the same name), and save_file refuses tensors that share memory: copy it
    return out.clone() if layout.is_embedding(name) and out.data_ptr() == b.data_ptr() else out


def _renamed_rows(
    name: str, out: torch.Tensor, base: torch.Tensor, renamed: dict[int, str], source: Checkpoint
) -> torch.Tensor:
    """Embedding/output rows of renamed tokens (io.tokens) come whole from the tokenizer-source model."""
    if not renamed or not layout.is_embedding(name) or out.dim() != 2:
        return out
    rows = torch.tensor([i for i in renamed if i < out.shape[0]], dtype=torch.long)
    if out.data_ptr() == base.data_ptr():
        out = out.clone()  # never write into a memory-mapped input
    out[rows] = source.get(name)[rows].to(out.dtype)
    return out
