"""CUDA runs of the engine: same masks as on the CPU, host accumulators equal device ones, clean OOM errors.

Skipped without CUDA (CI has none); run on a GPU machine with
`python -m pytest tests/test_gpu.py tests/test_importance.py -m gpu -q`.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import skills
import torch
from safetensors.torch import load_file

# bit-exact cuBLAS across calls; must be set before the first cuBLAS handle exists (module import is early)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

from reasonany_gui.engine.core.errors import OutOfMemoryError  # noqa: E402
from reasonany_gui.engine.core.events import CancelToken, StageStarted  # noqa: E402
from reasonany_gui.engine.io.checkpoints import Checkpoint  # noqa: E402
from reasonany_gui.engine.run.pipeline import Pipeline  # noqa: E402
from reasonany_gui.engine.scoring.importance import parameter_names, score_pass  # noqa: E402
from reasonany_gui.engine.settings.config import MergeConfig  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@dataclass
class Sample:
    input_ids: torch.Tensor
    labels: torch.Tensor


BAND = 1e-3  # relative distance to a threshold within which CPU and GPU float32 rounding may flip a choice


def cfg_for(trio, data_files, out: Path, **kw) -> MergeConfig:
    fast = dict(
        samples=6,
        max_length=64,
        seed=0,
        reasoning_ratio=0.3,
        domain_ratio=0.3,
        compute_dtype="float32",
        score_precision="float32",
    )
    return skills.trio_config(trio, data_files, out, **{**fast, **kw})


def run(cfg: MergeConfig, cache: Path) -> Pipeline:
    p = Pipeline(cfg, cache_root=cache)
    p.run()
    return p


def masks_of(out: Path) -> dict[str, np.ndarray]:
    packed = load_file(str(out / "reasonany" / "masks.safetensors"))
    return {k: v.numpy() for k, v in packed.items()}


def outputs(out: Path) -> dict[str, torch.Tensor]:
    index = json.loads((out / "model.safetensors.index.json").read_text())
    tensors: dict[str, torch.Tensor] = {}
    for f in sorted(set(index["weight_map"].values())):
        tensors.update(load_file(str(out / f)))
    return tensors


def near_threshold(p: Pipeline, name: str) -> np.ndarray:
    """Elements of one tensor whose score is within BAND of the threshold of any term (the only ones a
    float32 rounding difference between CPU and GPU may move across it)."""
    sel = p.selection
    numel = sel.masks[name].numel
    near = np.zeros(numel, dtype=bool)
    for terms in sel.terms.values():
        for t in terms:
            value = sel.thresholds[f"{t.map_id}:{t.direction}:{t.ratio}"]["value"]
            if value is None:
                continue
            s = sel.maps[t.map_id].get(name).reshape(-1).double().numpy()
            near |= np.abs(s - value) <= BAND * abs(value)
    return near


def compare_runs(ref: Pipeline, ref_out: Path, other_out: Path) -> dict[str, int]:
    """Masks equal except near a threshold; merged weights bit-equal wherever the masks agree."""
    a, b = masks_of(ref_out), masks_of(other_out)
    assert set(a) == set(b) and a
    wa, wb = outputs(ref_out), outputs(other_out)
    assert set(wa) == set(wb)
    counts = {"elements": 0, "near": 0, "differ": 0}
    for key in sorted(a):
        kind, name = key.split("/", 1)
        numel = ref.selection.masks[name].numel
        ma = np.unpackbits(a[key], count=numel, bitorder="little").astype(bool)
        mb = np.unpackbits(b[key], count=numel, bitorder="little").astype(bool)
        differ = ma != mb
        if differ.any():
            near = near_threshold(ref, name)
            assert not (differ & ~near).any(), f"{key}: masks differ away from any threshold"
            counts["near"] += int(near.sum())
        counts["differ"] += int(differ.sum())
        counts["elements"] += numel
    for name, t in wa.items():
        same = torch.ones(t.numel(), dtype=torch.bool)
        if f"reasoning/{name}" in a:
            numel = t.numel()
            for kind in ("reasoning", "domain"):
                ma = np.unpackbits(a[f"{kind}/{name}"], count=numel, bitorder="little")
                mb = np.unpackbits(b[f"{kind}/{name}"], count=numel, bitorder="little")
                same &= torch.from_numpy(ma == mb)
        assert torch.equal(t.reshape(-1)[same], wb[name].reshape(-1)[same]), name
    return counts


def rel_error(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float((x.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


# ---------------------------------------------------------------------- CPU vs CUDA, whole pipeline
def test_cuda_pipeline_gives_the_cpu_masks(trio, data_files, tmp_path):
    cpu = run(cfg_for(trio, data_files, tmp_path / "cpu", device="cpu"), tmp_path / "cache-cpu")
    gpu = run(cfg_for(trio, data_files, tmp_path / "gpu", device="cuda"), tmp_path / "cache-gpu")
    # expert and base on each set: 2 x 6 reasoning samples + 2 x 5 domain samples
    assert gpu.device.type == "cuda" and gpu.backward_passes == cpu.backward_passes == 2 * 6 + 2 * 5
    for map_id, key in cpu.map_keys.items():
        ref, got = cpu.store.open(key), gpu.store.open(gpu.map_keys[map_id])
        for name in ref.names:
            assert rel_error(got.get(name), ref.get(name)) < 1e-4, (map_id, name)
    counts = compare_runs(cpu, tmp_path / "cpu", tmp_path / "gpu")
    assert counts["differ"] <= max(2, counts["near"]) and counts["differ"] <= 1e-3 * counts["elements"], counts
    assert gpu.peak_device_bytes and all(v > 0 for v in gpu.peak_device_bytes.values())
    assert {s["accumulators"] for s in gpu.pass_stats.values()} == {"cuda:0"}  # a tiny model fits: auto -> device


def test_host_accumulators_give_the_device_run(trio, data_files, tmp_path):
    torch.use_deterministic_algorithms(True, warn_only=True)  # two runs: keep attention backward repeatable
    try:
        dev = run(
            cfg_for(trio, data_files, tmp_path / "dev", device="cuda", accumulators="device"), tmp_path / "cache-dev"
        )
        host = run(
            cfg_for(trio, data_files, tmp_path / "host", device="cuda", accumulators="host"), tmp_path / "cache-host"
        )
    finally:
        torch.use_deterministic_algorithms(False)
    assert {s["accumulators"] for s in dev.pass_stats.values()} == {"cuda:0"}
    assert {s["accumulators"] for s in host.pass_stats.values()} == {"cpu"}
    for map_id, key in dev.map_keys.items():
        ref, got = dev.store.open(key), host.store.open(host.map_keys[map_id])
        for name in ref.names:
            assert rel_error(got.get(name), ref.get(name)) < 1e-5, (map_id, name)
    counts = compare_runs(dev, tmp_path / "dev", tmp_path / "host")
    assert counts["differ"] <= max(2, counts["near"]), counts


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_host_and_device_accumulators_are_bit_identical(trio, dtype):
    """Same gradients, same float32 additions in the same order: where the sums live changes no bit."""
    from transformers import AutoModelForCausalLM

    ckpt = Checkpoint(trio["reasoning"])
    model = AutoModelForCausalLM.from_pretrained(str(trio["reasoning"]), dtype=dtype, attn_implementation="eager")
    model = model.to("cuda")
    g = torch.Generator().manual_seed(3)
    data = [Sample(ids, ids.clone()) for ids in (torch.randint(0, 256, (1, n), generator=g) for n in (9, 17, 33, 64))]
    params = parameter_names(model, set(ckpt.tensors))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        results = {
            where: score_pass(
                model, params, data, "gradient", torch.device(where), "p", "r", "r", lambda e: None, CancelToken()
            ).scores
            for where in ("cuda", "cpu")
        }
    finally:
        torch.use_deterministic_algorithms(False)
    assert set(results["cuda"]) == set(results["cpu"]) == set(ckpt.tensors)
    for name, on_device in results["cuda"].items():
        on_host = results["cpu"][name]
        assert on_device.device.type == "cuda" and on_host.device.type == "cpu" and on_host.dtype == torch.float32
        assert torch.equal(on_device.cpu(), on_host), name
        assert bool((on_host > 0).any()), name


# ---------------------------------------------------------------------- out of memory
def _limit_after_load(margin_bytes: int):
    """A listener that, when scoring starts (weights loaded), lets the process reserve only `margin` more."""

    def listener(event) -> None:
        if isinstance(event, StageStarted) and event.stage.startswith("identify:"):
            gc.collect()
            torch.cuda.empty_cache()
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved(0) + margin_bytes) / total, 0)

    return listener


@pytest.fixture
def long_data(tmp_path):
    """One 8192-byte (= token) sample: its activations (the float32 logits alone are 8.5 MB, and each needs a
    new 20 MB allocator segment) exceed a 4 MiB margin whatever the allocator has cached."""
    text = ("step by step, " * 700)[:8192]
    f = tmp_path / "long.jsonl"
    f.write_text(json.dumps({"text": text}) + "\n", encoding="utf-8")
    return f


@pytest.fixture
def restore_memory_fraction():
    yield
    torch.cuda.set_per_process_memory_fraction(1.0, 0)
    torch.cuda.empty_cache()


@pytest.mark.parametrize(
    "accumulators,expected",
    [
        ("auto", {"accumulators": "host", "gradient_checkpointing": True}),
        ("host", {"gradient_checkpointing": True}),
    ],
)
def test_oom_while_scoring_raises_the_engines_error_with_suggestions(
    trio, long_data, tmp_path, accumulators, expected, restore_memory_fraction
):
    cfg = cfg_for(
        trio,
        {"reasoning": long_data, "domain": long_data},
        tmp_path / "out",
        device="cuda",
        max_length=8192,
        samples=1,
        accumulators=accumulators,
        score_cache=False,
    )
    with pytest.raises(OutOfMemoryError) as info:
        Pipeline(cfg, listener=_limit_after_load(4 << 20)).run()
    assert info.value.suggestions == expected
    assert "out of memory" in str(info.value) and "8192" in str(info.value)
    assert not (tmp_path / "out").exists()
    # the suggested settings are valid settings, and with the memory back the same run succeeds
    torch.cuda.set_per_process_memory_fraction(1.0, 0)
    out = Pipeline(cfg.replace(**info.value.suggestions)).run()
    assert (out / "reasonany" / "masks.safetensors").is_file()


def test_oom_while_loading_raises_the_engines_error(trio, data_files, tmp_path, restore_memory_fraction):
    gc.collect()
    torch.cuda.empty_cache()  # nothing cached: the weights need a new segment, which the limit refuses
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved(0) + (256 << 10)) / total, 0)
    cfg = cfg_for(trio, data_files, tmp_path / "out", device="cuda", score_cache=False)  # float32 compute
    with pytest.raises(OutOfMemoryError) as info:
        Pipeline(cfg).run()
    assert info.value.suggestions == {"compute_dtype": "bfloat16"}
    assert "do not fit" in str(info.value)
    assert not (tmp_path / "out").exists()
