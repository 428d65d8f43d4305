"""End-to-end merges on tiny models: the formula, the masks, the files, reproducibility and reload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skills
import torch
from safetensors.torch import load_file

from reasonany_gui.engine.core import layout
from reasonany_gui.engine.io.checkpoints import Checkpoint
from reasonany_gui.engine.run.pipeline import Pipeline
from reasonany_gui.engine.settings.config import MergeConfig

FAST = dict(samples=6, max_length=64, device="cpu", seed=0)


def config(trio, data_files, out=None, **kw) -> MergeConfig:
    return skills.trio_config(trio, data_files, out, **{**FAST, **kw})


def dense_select(scores: dict[str, torch.Tensor], names: list[str], ratio: float, direction: str, scope: str):
    """Independent reference: stable sort over canonical order (global) or per tensor."""

    def pick(ts: dict[str, torch.Tensor]):
        ns = sorted(ts)
        flat = torch.cat([ts[n].reshape(-1).float() for n in ns])
        k = int(np.floor(ratio * flat.numel()))
        sel = torch.zeros(flat.numel(), dtype=torch.bool)
        sel[torch.sort(flat, descending=direction == "top", stable=True).indices[:k]] = True
        out, i = {}, 0
        for n in ns:
            out[n] = sel[i : i + ts[n].numel()].reshape(ts[n].shape)
            i += ts[n].numel()
        return out

    if scope == "global":
        return pick({n: scores[n] for n in names})
    return {n: pick({n: scores[n]})[n] for n in names}


def reference_merge(p: Pipeline, cfg: MergeConfig) -> tuple[dict[str, torch.Tensor], dict[str, tuple]]:
    """θ_b + λ_r·M_r'⊙τ_r + λ_d·M_d'⊙τ_d from the stored score maps, computed without the engine's selector."""
    base, rsn, dom = (Checkpoint(Path(getattr(cfg, r))) for r in ("base", "reasoning", "domain"))
    maps = {m: p.store.open(k) for m, k in p.map_keys.items()}
    names = [n for n in base.names if not layout.is_embedding(n)]
    load = lambda m: {n: maps[m].get(n) for n in names}  # noqa: E731
    r_dir = "bottom" if cfg.method == "reasonany" else "top"
    mr = dense_select(load("reasoning@reasoning"), names, cfg.reasoning_ratio, r_dir, cfg.scope)
    md = dense_select(load("domain@domain"), names, cfg.domain_ratio, "top", cfg.scope)
    if cfg.intersect:
        mrb = dense_select(load("base@reasoning"), names, cfg.reasoning_ratio, r_dir, cfg.scope)
        mdb = dense_select(load("base@domain"), names, cfg.domain_ratio, "top", cfg.scope)
        mr = {n: mr[n] & mrb[n] for n in names}
        md = {n: md[n] & mdb[n] for n in names}
    merged, masks = {}, {}
    for n in base.names:
        b = base.get(n).float()
        if n not in mr:
            merged[n] = b
            continue
        r_only, d_only = mr[n] & ~md[n], md[n] & ~mr[n]
        masks[n] = (r_only, d_only, mr[n] & md[n])
        merged[n] = (
            b
            + cfg.reasoning_scale * r_only * (rsn.get(n).float() - b)
            + cfg.domain_scale * d_only * (dom.get(n).float() - b)
        )
    return merged, masks


def load_output(out: Path) -> dict[str, torch.Tensor]:
    index = json.loads((out / "model.safetensors.index.json").read_text())
    tensors = {}
    for f in sorted(set(index["weight_map"].values())):
        tensors.update(load_file(str(out / f)))
    assert set(tensors) == set(index["weight_map"])
    return tensors


@pytest.fixture(scope="module")
def merged_run(trio, data_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "merged"
    cfg = config(trio, data_files, out, reasoning_ratio=0.3, domain_ratio=0.3, reasoning_scale=0.9, domain_scale=1.1)
    p = Pipeline(cfg)
    p.check()
    p.identify()
    p.select()
    p.write()
    return p, cfg, out


def test_merged_tensors_equal_formula(merged_run):
    p, cfg, out = merged_run
    ref, masks = reference_merge(p, cfg)
    got = load_output(out)
    assert set(got) == set(ref)
    for n, t in ref.items():
        torch.testing.assert_close(got[n].float(), t, rtol=0, atol=0, msg=n)  # float32 model: bit-exact
    assert any(m[0].any() for m in masks.values()) and any(m[1].any() for m in masks.values())


def test_masks_file_decodes_as_designed_and_counts_are_exact(merged_run):
    p, cfg, out = merged_run
    _, masks = reference_merge(p, cfg)
    packed = load_file(str(out / "reasonany" / "masks.safetensors"))
    report = json.loads((out / "reasonany" / "report.json").read_text())
    assert set(packed) == {f"{k}/{n}" for n in masks for k in ("reasoning", "domain")}
    total_r = total_d = total_c = 0
    for n, (r, d, c) in masks.items():
        numel = r.numel()
        pr = np.unpackbits(packed[f"reasoning/{n}"].numpy(), count=numel, bitorder="little").astype(bool)
        pd = np.unpackbits(packed[f"domain/{n}"].numpy(), count=numel, bitorder="little").astype(bool)
        assert packed[f"reasoning/{n}"].dtype == torch.uint8
        assert np.array_equal(pr, r.reshape(-1).numpy()) and np.array_equal(pd, d.reshape(-1).numpy())
        assert not (pr & pd).any()  # exclusivity
        entry = report["per_tensor"][n]
        assert (entry["numel"], entry["reasoning"], entry["domain"], entry["conflicts"]) == (
            numel,
            int(r.sum()),
            int(d.sum()),
            int(c.sum()),
        )
        total_r, total_d, total_c = total_r + int(r.sum()), total_d + int(d.sum()), total_c + int(c.sum())
    assert report["totals"]["reasoning"] == total_r and report["totals"]["domain"] == total_d
    assert report["totals"]["conflicts"] == total_c > 0


def test_output_folder_layout_and_reload_gives_in_memory_logits(merged_run, trio):
    from transformers import AutoModelForCausalLM

    p, cfg, out = merged_run
    for f in (
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "README.md",
        "model.safetensors.index.json",
        "reasonany/run.yaml",
        "reasonany/report.json",
        "reasonany/report.html",
        "reasonany/masks.safetensors",
    ):
        assert (out / f).is_file(), f
    assert not list(out.parent.glob(".merged.reasonany-tmp-*"))
    card = (out / "README.md").read_text()
    # the card names local models by their folder name only: a full path would leak the user's folders
    assert card.startswith("---\n") and "reasonany" in card and str(trio["reasoning"]) not in card
    assert f"local: {Path(trio['reasoning']).name}" in card
    model = AutoModelForCausalLM.from_pretrained(out)
    ref_state, _ = reference_merge(p, cfg)
    mem = AutoModelForCausalLM.from_pretrained(trio["base"])
    mem.load_state_dict(ref_state)
    ids = torch.tensor([[5, 17, 99, 3, 42, 7]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, mem(ids).logits, rtol=0, atol=0)


def test_two_runs_are_bit_identical_and_run_yaml_reproduces(merged_run, tmp_path):
    p, cfg, out = merged_run
    out2 = tmp_path / "again"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonany_gui.cli",
            "merge",
            str(out / "reasonany" / "run.yaml"),
            "--out",
            str(out2),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    a, b = load_output(out), load_output(out2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert (out / "reasonany/masks.safetensors").read_bytes() == (out2 / "reasonany/masks.safetensors").read_bytes()


def test_retune_reuses_scores_without_backward(merged_run, tmp_path):
    p, cfg, _ = merged_run
    before = p.backward_passes
    assert before > 0
    sel = p.select(cfg.replace(reasoning_ratio=0.1, scope="tensor", out=str(tmp_path / "t")))
    assert p.backward_passes == before
    assert sel.summary.totals["reasoning"] < p.selection.summary.totals["selectable"]
    # the score cache serves a new pipeline too: no backward pass at all
    p2 = Pipeline(cfg.replace(out=str(tmp_path / "fresh")), cache_root=p.store.root)
    p2.check()
    p2.identify()
    assert p2.backward_passes == 0


@pytest.mark.parametrize("scope,intersect,method", [("global", True, "reasonany"), ("global", True, "led")])
def test_other_modes_equal_formula(trio, data_files, tmp_path, scope, intersect, method):
    cfg = config(
        trio,
        data_files,
        tmp_path / "o",
        scope=scope,
        intersect=intersect,
        method=method,
        reasoning_ratio=0.2,
        domain_ratio=0.4,
    )
    p = Pipeline(cfg)
    out = p.run()
    ref, _ = reference_merge(p, cfg)
    got = load_output(out)
    for n, t in ref.items():
        torch.testing.assert_close(got[n].float(), t, rtol=0, atol=0, msg=n)


def test_cancel_leaves_no_output(trio, data_files, tmp_path):
    from reasonany_gui.engine.core.errors import CancelledError
    from reasonany_gui.engine.core.events import CancelToken, Progress

    token = CancelToken()

    def listener(e):
        if isinstance(e, Progress) and e.stage.startswith("identify") and e.fraction > 0.3:
            token.cancel()

    out = tmp_path / "cancelled"
    with pytest.raises(CancelledError):
        Pipeline(config(trio, data_files, out, score_cache=False), listener=listener, cancel=token).run()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cancel_during_write_removes_temporary_folder(trio, data_files, tmp_path):
    from reasonany_gui.engine.core.errors import CancelledError
    from reasonany_gui.engine.core.events import CancelToken, Progress

    token = CancelToken()

    def listener(e):
        if isinstance(e, Progress) and e.stage == "write" and e.fraction > 0.2:
            token.cancel()

    out = tmp_path / "cancelled"
    with pytest.raises(CancelledError):
        Pipeline(config(trio, data_files, out, method="task_arithmetic"), listener=listener, cancel=token).run()
    assert list(tmp_path.iterdir()) == []


def test_tied_bf16_llama_keeps_dtype_and_tie(llama_tied_trio, data_files, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = config(
        llama_tied_trio, data_files, tmp_path / "tied", reasoning_ratio=0.2, domain_ratio=0.2, select_embeddings=True
    )
    out = Pipeline(cfg).run()
    got = load_output(out)
    base = Checkpoint(llama_tied_trio["base"])
    assert set(got) == set(base.tensors)
    assert all(t.dtype == torch.bfloat16 for t in got.values())
    assert json.loads((out / "config.json").read_text()).get("tie_word_embeddings") is True
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    report = json.loads((out / "reasonany/report.json").read_text())
    assert "model.embed_tokens.weight" in report["per_tensor"]


def test_report_records_write_and_total_time(trio, tmp_path):
    from reasonany_gui.engine.run.pipeline import Pipeline
    from reasonany_gui.engine.settings.config import MergeConfig

    cfg = MergeConfig(
        base=str(trio["base"]),
        reasoning=str(trio["reasoning"]),
        domain=str(trio["domain"]),
        method="task_arithmetic",
        device="cpu",
        out=str(tmp_path / "out"),
    )
    out = Pipeline(cfg).run()
    t = json.loads((out / "reasonany" / "report.json").read_text())["timings_seconds"]
    assert t["write"] > 0 and t["total"] >= t["write"] + t["check"]


def test_the_app_runs_the_cli_path_and_keeps_it_open_for_retuning(trio, data_files, tmp_path, monkeypatch):
    """The app's merge job is `Pipeline.run(keep_open=True)`: the same steps and report as the CLI (write and
    total time included, which the app's own re-listing of the steps never recorded), and the models and scores
    stay open, so a re-tune needs no new gradients. A failed run closes itself: nothing is left to re-tune."""
    from reasonany_gui.engine.core.errors import InputError
    from reasonany_gui.engine.core.events import CancelToken
    from reasonany_gui.ui import jobs

    # no score cache: the scores are measured here (another test's may be cached) and live only while it is open
    cfg = config(trio, data_files, tmp_path / "app", reasoning_ratio=0.3, domain_ratio=0.3, score_cache=False)
    steps: list[str] = []
    real_run = Pipeline.run

    def spy(self, *args, **kwargs):
        steps.append(f"run keep_open={kwargs.get('keep_open')}")
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "run", spy)
    result = jobs.merge_job(cfg)(lambda _ev: None, CancelToken())
    assert steps == ["run keep_open=True"]
    t = result.report["timings_seconds"]
    assert t["write"] > 0 and t["total"] >= t["write"] + t["check"]
    p = result.pipeline
    passes = p.backward_passes
    assert passes > 0 and p.ckpts, "the pipeline stays open after a successful run"
    p.select(cfg.replace(reasoning_ratio=0.1))
    assert p.backward_passes == passes
    p.close()

    closed: list[bool] = []
    monkeypatch.setattr(Pipeline, "close", lambda self: closed.append(True))
    bad = cfg.replace(out=str(tmp_path / "bad"), reasoning_data=str(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError):
        jobs.merge_job(bad)(lambda _ev: None, CancelToken())
    assert closed == [True]


# ---------------------------------------------------------------------------- the write stage stays small
def test_streamed_shards_are_save_files_bytes_and_hold_nothing(tmp_path):
    """Each tensor goes to its shard file as it arrives (nothing held), and the files are byte for byte what
    safetensors' save_file writes: mixed dtypes (its order is by dtype, then name), a scalar, several shards."""
    from safetensors.torch import save_file

    from reasonany_gui.engine.io.writer import ShardedWriter

    g = torch.Generator().manual_seed(0)
    tensors = {
        "b.weight": torch.randn(3, 5, generator=g),
        "a.weight": torch.randn(7, generator=g).to(torch.bfloat16),
        "c.ids": torch.arange(4),
        "d.flag": torch.tensor(True),
        "e.weight": torch.randn(40, generator=g),
        "f.weight": torch.randn(2, 2, generator=g).half(),
    }
    sizes = [(n, t.numel() * t.element_size()) for n, t in tensors.items()]
    layouts = {n: (t.dtype, tuple(t.shape)) for n, t in tensors.items()}
    streamed, held = tmp_path / "streamed", tmp_path / "held"
    streamed.mkdir(), held.mkdir()
    w = ShardedWriter(streamed, sizes, 100, layouts=layouts)
    for n, t in tensors.items():
        w.add(n, t)
        assert w.held_bytes == 0
    w.close()
    assert len(w.shards) == 4
    for shard in w.shards:
        save_file({n: tensors[n] for n in shard}, str(held / w.file_of[shard[0]]), metadata={"format": "pt"})
        f = w.file_of[shard[0]]
        assert (streamed / f).read_bytes() == (held / f).read_bytes(), f
    assert load_output(streamed).keys() == tensors.keys()
    holding = ShardedWriter(held, sizes, 10**6)  # without layouts (score maps) a shard is held until complete
    holding.add("b.weight", tensors["b.weight"])
    assert holding.held_bytes == 60


def test_write_stage_holds_one_tensor_and_no_input_maps(trio, data_files, tmp_path, monkeypatch):
    """At the default shard size (the whole model in one shard) the write stage holds no merged tensor and
    keeps no input file mapped between tensors: its memory is one tensor, not the three inputs plus a shard."""
    from reasonany_gui.engine.io import writer

    seen = []
    real_add = writer.ShardedWriter.add

    def add(self, name, tensor):
        flushed = real_add(self, name, tensor)
        seen.append((self.held_bytes, len(self.shards)))
        return flushed

    monkeypatch.setattr(writer.ShardedWriter, "add", add)
    p = Pipeline(config(trio, data_files, tmp_path / "out", method="task_arithmetic"))
    real_merge_one = p.merge_one
    maps_open = []

    def merge_one(*args):
        maps_open.append(sum(len(c._open) for c in p.ckpts.values()))
        return real_merge_one(*args)

    p.merge_one = merge_one  # type: ignore[method-assign]
    p.run()
    assert seen and all(held == 0 and shards == 1 for held, shards in seen)
    assert maps_open and max(maps_open) == 0
