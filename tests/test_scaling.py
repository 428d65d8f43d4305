"""Scaling on one device (issue 14, part A): device checks, loading, temp and cache space, the TIES trim."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import skills
import torch

from reasonany_gui.engine.core import devices


# ---------------------------------------------------------------------------- bfloat16 on the chosen device
def _fake_cuda(monkeypatch, majors: dict[int, int], current: int = 0, hip: str | None = None) -> None:
    monkeypatch.setattr(torch.version, "hip", hip)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(major=majors[i]))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
    # the old call would have said yes for every device here: emulation counts, and it asks the current device
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)


def test_bf16_is_checked_on_the_chosen_device_without_emulation(monkeypatch):
    _fake_cuda(monkeypatch, {0: 9, 1: 7}, current=0)  # cuda:0 Hopper, cuda:1 Volta (bf16 only emulated)
    assert devices.compute_dtype("auto", torch.device("cuda:0")) == torch.bfloat16
    assert devices.compute_dtype("auto", torch.device("cuda:1")) == torch.float32
    _fake_cuda(monkeypatch, {0: 7, 1: 8}, current=0)  # the current device is the old one: cuda:1 still gets bf16
    assert devices.compute_dtype("auto", torch.device("cuda:1")) == torch.bfloat16
    assert devices.compute_dtype("auto", torch.device("cuda")) == torch.float32  # no index: the current one
    assert devices.compute_dtype("float16", torch.device("cuda:0")) == torch.float16  # explicit wins


def test_bf16_rocm_and_cpu(monkeypatch):
    _fake_cuda(monkeypatch, {0: 0}, hip="6.0")
    assert devices.bf16_native(torch.device("cuda:0"))
    assert devices.compute_dtype("auto", torch.device("cpu")) == torch.float32


def test_bf16_without_a_driver_is_false(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", None)

    def no_driver(i):
        raise RuntimeError("Found no NVIDIA driver on your system")

    monkeypatch.setattr(torch.cuda, "get_device_properties", no_driver)
    assert not devices.bf16_native(torch.device("cuda:0"))


# ---------------------------------------------------------------------------- loading straight to the device
def test_load_model_places_weights_on_a_gpu_while_reading(trio, monkeypatch):
    """For a CUDA device the load passes device_map={"": device} and never calls .to(device) on a host copy."""
    import transformers

    from reasonany_gui.engine.io import loading

    seen = {}

    class Loaded:
        def to(self, device):  # the old load-then-move path: a whole host copy first
            raise AssertionError("moved after loading on the host")

    def fake_from_pretrained(path, **kwargs):
        seen.update(kwargs)
        return Loaded()

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", staticmethod(fake_from_pretrained))
    assert loading.loads_straight_to("cuda:1")
    model = loading.load_model(trio["base"], torch.bfloat16, "cuda:1")
    assert isinstance(model, Loaded)
    assert seen["device_map"] == {"": torch.device("cuda:1")}


def test_load_model_on_cpu_unchanged(trio):
    from reasonany_gui.engine.io import loading

    assert not loading.loads_straight_to("cpu")
    assert not loading.loads_straight_to("cuda:0", has_safetensors=False)
    model = loading.load_model(trio["base"], torch.float32, "cpu")
    assert next(model.parameters()).device.type == "cpu"


# ---------------------------------------------------------------------------- TIES trim without a full sort
def _trim_reference(tau: torch.Tensor, density: float) -> torch.Tensor:
    """The old implementation: stable descending sort of |τ|, first floor(density·n) kept."""
    from reasonany_gui.engine.methods.topk import exact_k

    flat = tau.reshape(-1)
    k = exact_k(density, flat.numel())
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        keep[torch.sort(flat.abs(), descending=True, stable=True).indices[:k]] = True
    return torch.where(keep, flat, torch.zeros((), dtype=flat.dtype)).reshape(tau.shape)


@pytest.mark.parametrize("density", [0.0, 0.01, 0.29, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_magnitude_trim_equals_stable_sort_with_many_ties(density, dtype):
    """Many ties (a few distinct magnitudes, both signs, runs of exact zeros, ties across the 4 M chunk edge):
    the same entries kept as the stable sort, bit for bit."""
    from reasonany_gui.engine.methods.registry import magnitude_trim

    g = torch.Generator().manual_seed(3)
    n = (1 << 22) + 4099  # crosses one chunk boundary of the tie count
    values = torch.tensor([0.0, 0.5, -0.5, 1.0, -1.0, 2.0], dtype=torch.float32)
    tau = values[torch.randint(0, len(values), (n,), generator=g)].to(dtype)
    tau[: n // 3] = 0  # a long run of zeros: the tie at the cut is zero for the low densities' complement
    got = magnitude_trim(tau, density)
    ref = _trim_reference(tau, density)
    assert got.dtype == tau.dtype and got.shape == tau.shape
    assert torch.equal(got, ref)


def test_magnitude_trim_random_and_shapes():
    from reasonany_gui.engine.methods.registry import magnitude_trim

    g = torch.Generator().manual_seed(4)
    for shape in [(1,), (3, 5), (64, 33), (2, 3, 4)]:
        tau = torch.randn(shape, generator=g)
        for density in (0.1, 0.33, 0.5, 0.99):
            assert torch.equal(magnitude_trim(tau, density), _trim_reference(tau, density))


# ---------------------------------------------------------------------------- score folders: where, and space
def test_no_cache_scores_go_to_a_disk_folder_under_the_app_cache(trio, data_files, tmp_path):
    """--no-cache maps are written under the app's cache folder (disk), not the system temp dir (often RAM)."""
    from reasonany_gui.engine.core.paths import cache_dir
    from reasonany_gui.engine.io.writer import TMP_MARK
    from reasonany_gui.engine.run.pipeline import Pipeline

    cfg = skills.trio_config(
        trio,
        data_files,
        samples=2,
        max_length=32,
        device="cpu",
        score_cache=False,
    )
    p = Pipeline(cfg)
    try:
        root = p.store.root
        assert TMP_MARK in root.name and root.parent == cache_dir() / "tmp"
    finally:
        p.close()
    assert not root.exists()


@pytest.mark.parametrize("temporary", [False, True])
def test_score_space_check_says_what_where_and_what_to_do(tmp_path, monkeypatch, temporary):
    import shutil

    from reasonany_gui.engine.core.errors import InputError
    from reasonany_gui.engine.io import scorecache

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1_000_000_000))
    store = scorecache.ScoreStore(tmp_path / "scores")
    needed = 2 * scorecache.map_bytes(7_616_000_000, "bfloat16")
    with pytest.raises(InputError) as err:
        store.check_space(needed, 2, temporary)
    text = str(err.value)
    assert str(tmp_path / "scores") in text and "30.5 GB" in text and "2 score map(s)" in text and "1.0 GB free" in text
    assert "REASONANY_HOME" in text
    assert ("--no-cache" in text) == temporary and ("cache clear" in text) == (not temporary)
    store.check_space(100_000_000, 1, temporary)  # fits: no error


def test_pipeline_checks_score_space_before_loading_a_model(trio, data_files, tmp_path, monkeypatch):
    import shutil

    from reasonany_gui.engine.core.errors import InputError
    from reasonany_gui.engine.run import identify
    from reasonany_gui.engine.run.pipeline import Pipeline

    cfg = skills.trio_config(
        trio,
        data_files,
        samples=2,
        max_length=32,
        device="cpu",
    )
    p = Pipeline(cfg, cache_root=tmp_path / "scores")
    try:
        p.check()
        real = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda q: real(q)._replace(free=0))
        loaded = []
        monkeypatch.setattr(identify, "load_model", lambda *a, **k: loaded.append(a))
        with pytest.raises(InputError, match="Not enough free disk space for the score cache"):
            p.identify()
        assert loaded == []
    finally:
        p.close()


def test_score_maps_keep_no_memory_map_open_between_reads(tmp_path):
    from reasonany_gui.engine.io.scorecache import ScoreMaps, ScoreStore

    store = ScoreStore(tmp_path / "scores")
    scores = {f"layers.{i}.w": torch.rand(64, 32) for i in range(3)}
    store.write("a" * 24, scores, "float32", {"map": "x"})
    maps = store.open("a" * 24)
    assert isinstance(maps, ScoreMaps)
    for name, value in scores.items():
        assert torch.equal(maps.get(name), value)
        assert maps._open == {}  # the handle (and its memory map) is gone after each read


# ---------------------------------------------------------------------------- the estimate tells the truth
def _qwen7b():
    from reasonany_gui.engine.io.model_info import ModelInfo

    return ModelInfo(
        path=Path("."),
        architecture="Qwen2ForCausalLM",
        model_type="qwen2",
        num_params=7_615_616_512,
        dtype="bfloat16",
        size_bytes=15_231_233_024,
        num_layers=28,
        hidden_size=3584,
        vocab_size=152_064,
        tied_embeddings=False,
        intermediate_size=18_944,
    )


def test_host_accumulators_cost_their_host_share_per_sample():
    from reasonany_gui.engine.scoring.estimate import host_seconds_per_sample, stage_costs
    from reasonany_gui.engine.settings.config import MergeConfig

    info = _qwen7b()
    cfg = MergeConfig(samples=100, score="snip")
    device = stage_costs(cfg, info, "cuda", host_accumulators=False)
    host = stage_costs(cfg, info, "cuda", host_accumulators=True)
    floor = 100 * host_seconds_per_sample(cfg, info.num_params, 2)
    assert floor == pytest.approx(100 * max(info.num_params * 4 / 20e9, info.num_params * 0.35e-9))  # float32
    for stage in device:
        if stage.startswith("identify:"):
            assert host[stage] >= floor > device[stage]  # no longer "the same as device accumulators"
    grad = MergeConfig(samples=100, score="gradient")  # bf16 |g|: half the bus, the host widening add sets the pace
    assert host_seconds_per_sample(grad, info.num_params, 2) == pytest.approx(info.num_params * 0.9e-9)


def test_selection_and_write_are_estimated_by_their_work():
    from reasonany_gui.engine.scoring.estimate import stage_costs
    from reasonany_gui.engine.settings.config import MergeConfig

    info = _qwen7b()
    base = stage_costs(MergeConfig(), info, "cuda", host_accumulators=False)
    assert base["select"] > 10 and base["write"] > 4 * info.size_bytes / 400e6 * 0.9
    ties = stage_costs(
        MergeConfig(method="ties", reasoning_ratio=0.2, domain_ratio=0.2), info, "cuda", host_accumulators=False
    )
    assert ties["write"] > base["write"] and "select" not in ties  # TIES scores nothing; its trim costs time


def test_load_transient_only_when_the_load_goes_through_the_host(monkeypatch):
    from reasonany_gui.engine.io import loading
    from reasonany_gui.engine.scoring.estimate import load_transient_bytes

    info = _qwen7b()
    assert load_transient_bytes(info, torch.device("cpu"), 2) == 0
    assert load_transient_bytes(info, torch.device("cuda:0"), 2) == 0  # transformers 5: straight to the GPU
    monkeypatch.setattr(loading, "loads_straight_to", lambda *a, **k: False)
    assert load_transient_bytes(info, torch.device("cuda:0"), 2) == 2 * info.num_params


# ---------------------------------------------------------------------------- low-RAM design: groups of tensors
def test_scoring_groups_of_tensors_in_separate_passes_gives_the_same_scores(trio):
    """The low-RAM design (docs/SCALING.md): score the tensors in G groups, one pass each, so that only one
    group's float32 accumulators exist at a time. A pass over a subset gives that subset's scores of a pass
    over everything, bit for bit (the same forward and backward arithmetic; tensors outside the group just get
    no gradient)."""
    from test_importance import samples

    from reasonany_gui.engine.core.events import CancelToken
    from reasonany_gui.engine.io.checkpoints import Checkpoint
    from reasonany_gui.engine.io.loading import load_model
    from reasonany_gui.engine.scoring.importance import parameter_names, score_pass

    ckpt = Checkpoint(trio["reasoning"])
    model = load_model(trio["reasoning"], torch.float32, "cpu")
    params = parameter_names(model, set(ckpt.tensors))
    data = samples(3)
    whole = score_pass(
        model, params, data, "snip", torch.device("cpu"), "p", "r", "r", lambda e: None, CancelToken()
    ).scores
    names = sorted(params)
    groups = [names[: len(names) // 2], names[len(names) // 2 :]]
    for group in groups:
        part = score_pass(
            model,
            {n: params[n] for n in group},
            data,
            "snip",
            torch.device("cpu"),
            "p",
            "r",
            "r",
            lambda e: None,
            CancelToken(),
        ).scores
        assert set(part) == set(group)
        for n in group:
            assert torch.equal(part[n], whole[n]), n


# ---------------------------------------------------------------------------- low-RAM mode: score_groups
def _numels_of(trio) -> dict[str, int]:
    from reasonany_gui.engine.io.checkpoints import Checkpoint

    return {n: m.numel for n, m in Checkpoint(trio["reasoning"]).tensors.items() if m.is_float}


def test_tensor_groups_are_contiguous_balanced_and_keep_modules_whole(trio):
    from reasonany_gui.engine.scoring.importance import group_params_bound, tensor_groups

    numels = _numels_of(trio)
    total = sum(numels.values())
    modules: dict[str, int] = {}
    for n, k in numels.items():
        modules[n.rsplit(".", 1)[0]] = modules.get(n.rsplit(".", 1)[0], 0) + k
    assert tensor_groups(numels, 1) == [sorted(numels)]
    for g in (2, 3, 4, 7):
        groups = tensor_groups(numels, g)
        assert len(groups) == g
        assert [n for grp in groups for n in grp] == sorted(numels)  # contiguous, sorted: the shard plan's order
        owner = {n: i for i, grp in enumerate(groups) for n in grp}
        for n in numels:  # a weight and its bias (one live-plot cell) are scored in the same pass
            siblings = [m for m in numels if m.rsplit(".", 1)[0] == n.rsplit(".", 1)[0]]
            assert {owner[m] for m in siblings} == {owner[n]}
        largest = max(sum(numels[n] for n in grp) for grp in groups)
        assert largest <= group_params_bound(total, g, max(modules.values()))
        assert largest < total


def _group_cfg(trio, data_files, **changes):
    return skills.trio_config(
        trio,
        data_files,
        samples=3,
        max_length=32,
        device="cpu",
        **{"intersect": True, **changes},
    )


def test_score_groups_give_the_same_cache_entries_and_masks(trio, data_files, tmp_path):
    """G passes over groups of tensors write the same maps as one pass (bit for bit, float32 cache), the
    entry is complete and checksummed, and the masks are the same."""
    from reasonany_gui.engine.io.scorecache import ScoreStore
    from reasonany_gui.engine.run.pipeline import Pipeline
    from reasonany_gui.engine.scoring.plan import needed_maps

    runs = {}
    for g in (1, 3):
        cfg = _group_cfg(trio, data_files, score_groups=g, score_precision="float32")
        events: list = []
        p = Pipeline(cfg, listener=events.append, cache_root=tmp_path / f"g{g}")
        try:
            p.identify()
            sel = p.select()
            maps = {m: p.store.open(p.map_keys[m]) for m in needed_maps(cfg)}
            runs[g] = {
                "maps": {m: {n: f.get(n) for n in f.tensors} for m, f in maps.items()},
                "meta": {m: p.store.meta(p.map_keys[m]) for m in needed_maps(cfg)},
                "masks": {n: sel.bool_masks(n) for n in sel.names},
                "keys": dict(p.map_keys),
                "passes": p.backward_passes,
                "stats": dict(p.pass_stats),
                "plots": [e for e in events if type(e).__name__ == "SensitivityUpdate"],
            }
        finally:
            p.close()
        fresh = ScoreStore(tmp_path / f"g{g}")  # checksums verified from scratch
        assert all(fresh.has(k) for k in runs[g]["keys"].values())
    one, three = runs[1], runs[3]
    assert one["keys"] == three["keys"]  # score_groups is not part of the cache key: same scores
    for m, tensors in one["maps"].items():
        assert set(three["maps"][m]) == set(tensors)
        for n, t in tensors.items():
            assert torch.equal(three["maps"][m][n], t), (m, n)
        for k in ("samples", "tokens", "score", "map"):
            assert three["meta"][m][k] == one["meta"][m][k]
    assert set(one["masks"]) == set(three["masks"])
    for n, (r, d) in one["masks"].items():
        assert torch.equal(three["masks"][n][0], r) and torch.equal(three["masks"][n][1], d)
    assert three["passes"] == 3 * one["passes"]  # each group repeats the forward and backward
    assert three["stats"]["reasoning@reasoning"]["groups"] == 3 and "groups" not in one["stats"]["reasoning@reasoning"]
    # the live plot fills in group by group and ends on the one-pass grid, counting samples over all passes
    last1 = [u for u in one["plots"] if u.pass_id == "reasoning@reasoning"][-1]
    last3 = [u for u in three["plots"] if u.pass_id == "reasoning@reasoning"][-1]
    assert (last3.samples_done, last3.samples_total) == (9, 9)
    np.testing.assert_allclose(last3.grid, last1.grid, rtol=1e-9, equal_nan=True)


def test_score_groups_hold_one_groups_accumulators_at_a_time(trio, data_files, tmp_path, monkeypatch):
    """The point of the mode: the float32 sums alive at once are one group's, not the model's (counted over every
    accumulator tensor still referenced anywhere: the pipeline, the cache writer's pending shard, the result)."""
    import weakref

    from reasonany_gui.engine.run.pipeline import Pipeline
    from reasonany_gui.engine.scoring import importance
    from reasonany_gui.engine.scoring.importance import group_params_bound

    live: list = []
    peaks: list[int] = []
    original = importance.ScoreAccumulators.__init__

    def counting(self, *args, **kwargs):
        original(self, *args, **kwargs)
        live.extend(weakref.ref(t) for t in self.accs.values())
        peaks.append(sum(t.numel() * t.element_size() for t in (r() for r in live) if t is not None))

    monkeypatch.setattr(importance.ScoreAccumulators, "__init__", counting)
    numels = _numels_of(trio)
    total = sum(numels.values())
    modules: dict[str, int] = {}
    for n, k in numels.items():
        modules[n.rsplit(".", 1)[0]] = modules.get(n.rsplit(".", 1)[0], 0) + k
    held = {}
    for g in (1, 4):
        live.clear()
        peaks.clear()
        p = Pipeline(_group_cfg(trio, data_files, score_groups=g, intersect=False), cache_root=tmp_path / f"g{g}")
        try:
            p.identify()
        finally:
            p.close()
        assert len(peaks) == 2 * g  # two maps, g passes each
        held[g] = max(peaks)
    assert held[1] == 4 * total
    assert held[4] <= 4 * group_params_bound(total, 4, max(modules.values()))
    assert held[4] < held[1] / 2


# ---------------------------------------------------------------------------- the estimate: groups and devices
def test_estimate_takes_the_passes_from_the_pipeline():
    """One place knows which score passes a setting needs (plan.needed_maps): the estimate's stages follow it."""
    from reasonany_gui.engine.scoring.estimate import estimate_run, stage_costs
    from reasonany_gui.engine.scoring.plan import needed_maps
    from reasonany_gui.engine.settings.config import MergeConfig

    info = _qwen7b()
    for cfg in (MergeConfig(), MergeConfig(intersect=True), MergeConfig(method="ties")):
        stages = [
            k.split(":", 1)[1]
            for k in stage_costs(cfg, info, "cuda", host_accumulators=True)
            if k.startswith("identify:")
        ]
        assert stages == needed_maps(cfg)
        est = estimate_run(cfg.replace(device="cpu"), info)
        cache = est.disk_bytes - info.num_params * 2 - (info.num_params // 4 if cfg.needs_scores else 0)
        assert cache == len(needed_maps(cfg)) * info.num_params * 2


def _on_gpu(**changes):
    """7B on one 24 GB card with host accumulators, as the estimate sees it without a GPU here."""
    from reasonany_gui.engine.settings.config import MergeConfig

    return MergeConfig(
        **{
            "devices": "cuda:0",
            "compute_dtype": "bfloat16",
            "accumulators": "host",
            "gradient_checkpointing": True,
            **changes,
        }
    )


def test_low_ram_estimate_shows_the_lower_host_peak_and_the_extra_time():
    from reasonany_gui.engine.scoring.estimate import estimate_run, largest_module_params, low_ram_offer

    info = _qwen7b()
    p = info.num_params
    one = estimate_run(_on_gpu(), info, cuda_count=1)
    assert one.host_accumulator_bytes == 4 * p and one.host_bytes > 4 * p  # 30.5 GB: no 32 GB workstation
    previous = one
    for g in (2, 3, 4):
        est = estimate_run(_on_gpu(score_groups=g), info, cuda_count=1)
        assert est.host_accumulator_bytes <= 4 * (p // g + 1 + largest_module_params(info))
        assert est.host_bytes <= previous.host_bytes and est.host_accumulator_bytes < previous.host_accumulator_bytes
        assert est.seconds > previous.seconds  # every extra group repeats the forward and backward
        assert est.device_bytes == one.device_bytes  # the card holds the same (accumulators on the host)
        assert any(f"scored in {g} passes" in n for n in est.notes)
        previous = est
    # the extra group's GPU work at 7B (4·P·256/1.5e14 ≈ 0.05 s per sample) hides under the host adds (2.7 s per
    # sample, now split over two passes); what remains is the per-sample cost of a second pass: 2 maps × 100 × 0.03 s
    two = estimate_run(_on_gpu(score_groups=2), info, cuda_count=1)
    extra = sum(v for k, v in two.stage_seconds.items() if k.startswith("identify:")) - sum(
        v for k, v in one.stage_seconds.items() if k.startswith("identify:")
    )
    assert extra == pytest.approx(2 * 100 * 0.03)
    # device accumulators (the GPU sets the pace): the whole extra forward and backward shows
    dev = [estimate_run(_on_gpu(accumulators="device", score_groups=g), info, cuda_count=1) for g in (1, 2)]
    gpu_extra = 2 * 100 * 4 * p * 256 * 1.33 / 1.5e14  # 1.33: gradient checkpointing recomputes the forward
    assert dev[1].seconds - dev[0].seconds == pytest.approx(gpu_extra + 2 * 100 * 0.03)
    assert dev[1].device_bytes < dev[0].device_bytes  # the card holds one group's sums at a time too
    # 32 GB host with ~28 GB free: the offer is the fewest passes that fit, with figures in plain words
    offer = low_ram_offer(_on_gpu(), info, ram=28 * 10**9, cuda_count=1)
    assert offer is not None and offer.groups == 2
    assert offer.with_groups <= 28 * 10**9 < offer.needed == one.host_bytes
    text = offer.message()
    assert "28.0 GB of memory free" in text and "Score in 2 passes" in text and "slower" in text
    assert low_ram_offer(_on_gpu(), info, ram=64 * 10**9, cuda_count=1) is None  # it fits: nothing to offer
    assert low_ram_offer(_on_gpu(), info, ram=10**9, cuda_count=1) is None  # the write stage alone is too large


def test_estimate_per_device_for_data_parallel_ranks():
    """Four processes, one GPU each: every card holds a replica (the one-GPU figure), host RAM holds four sets
    of host accumulators plus three more processes, and the sample work divides by four."""
    from reasonany_gui.engine.scoring.estimate import PROCESS_HOST_BYTES, estimate_run

    info = _qwen7b()
    one = estimate_run(_on_gpu(), info, cuda_count=4)
    four = estimate_run(_on_gpu(devices="cuda:0,cuda:1,cuda:2,cuda:3"), info, cuda_count=4)
    assert four.ranks == 4 and one.ranks == 1
    assert four.per_device == {f"cuda:{i}": one.device_bytes for i in range(4)}
    assert four.device_bytes == one.device_bytes
    assert four.host_accumulator_bytes == 4 * one.host_accumulator_bytes
    assert four.host_bytes == 4 * one.host_bytes + 3 * PROCESS_HOST_BYTES["cuda"]
    load = info.size_bytes / 400e6
    for stage, seconds in one.stage_seconds.items():
        if stage.startswith("identify:"):
            assert four.stage_seconds[stage] == pytest.approx((seconds - load) / 4 + load)
    assert four.stage_seconds["write"] == one.stage_seconds["write"]  # rank 0 alone writes
    assert any("4 processes" in n for n in four.notes)


def test_estimate_uses_the_split_plan_for_a_model_across_gpus():
    """'+' in devices: placement.split_plan's per-device bytes (weights + accumulators), and whether it fits."""
    from reasonany_gui.engine.io.model_info import ModelInfo
    from reasonany_gui.engine.scoring.estimate import estimate_run
    from reasonany_gui.engine.settings.config import MergeConfig

    info = ModelInfo(
        path=Path("."),
        architecture="LlamaForCausalLM",
        model_type="llama",
        num_params=70_553_706_496,
        dtype="bfloat16",
        size_bytes=141_107_412_992,
        num_layers=80,
        hidden_size=8192,
        vocab_size=128_256,
        tied_embeddings=False,
        intermediate_size=28_672,
    )
    eight = "+".join(f"cuda:{i}" for i in range(8))
    free = {f"cuda:{i}": 80 * 10**9 for i in range(8)}
    cfg = MergeConfig(devices=eight, compute_dtype="bfloat16", gradient_checkpointing=True)
    est = estimate_run(cfg, info, free=free, cuda_count=8)
    assert est.split is not None and est.split.fits
    assert sum(est.per_device.values()) == 6 * info.num_params  # weights + device accumulators, 6 B/param
    assert max(est.per_device.values()) <= 80 * 10**9 - (2 << 30)
    assert est.device_bytes > max(est.per_device.values())  # + the gradient at its hook and the activations
    assert est.host_accumulator_bytes == 0 and est.ranks == 1
    half = estimate_run(cfg.replace(devices="+".join(f"cuda:{i}" for i in range(4))), info, free=free, cuda_count=8)
    assert not half.split.fits and "Add devices" in half.split.message
    assert any("Add devices" in n for n in half.notes)
    host = estimate_run(cfg.replace(accumulators="host", devices="cuda:0+cuda:1"), info, free=free, cuda_count=8)
    assert host.split.fits and sum(host.per_device.values()) == 2 * info.num_params
    assert host.host_accumulator_bytes == 4 * info.num_params


def test_preflight_offers_the_low_ram_mode_when_memory_is_short(trio, data_files, tmp_path):
    from reasonany_gui.engine.core.events import Log
    from reasonany_gui.engine.run.pipeline import Pipeline

    cfg = skills.trio_config(
        trio,
        data_files,
        samples=2,
        max_length=32,
        device="cpu",
    )
    events: list = []
    p = Pipeline(cfg, listener=events.append, cache_root=tmp_path / "scores")
    try:
        p.check()
        assert not [e for e in events if isinstance(e, Log) and "passes" in e.message]
        from reasonany_gui.engine.scoring.estimate import estimate_run

        est = estimate_run(cfg, p.infos["base"])
        p._preflight(ram=est.host_bytes - est.host_accumulator_bytes // 2)
    finally:
        p.close()
    warned = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    import re

    offered = [re.search(r"Score in (\d+) passes.*--score-groups (\d+)", m) for m in warned]
    assert any(m and m.group(1) == m.group(2) and int(m.group(1)) > 1 for m in offered), warned


def test_cpu_ranks_are_not_charged_a_cuda_context():
    """Two CPU processes: the second adds its own share plus an interpreter with torch (~0.4 GB), not the
    2.5 GB of a CUDA context."""
    from reasonany_gui.engine.scoring.estimate import PROCESS_HOST_BYTES, estimate_run
    from reasonany_gui.engine.settings.config import MergeConfig

    info = _qwen7b()
    one = estimate_run(MergeConfig(device="cpu"), info, cuda_count=0)
    two = estimate_run(MergeConfig(devices="cpu,cpu"), info, cuda_count=0)
    assert two.ranks == 2 and PROCESS_HOST_BYTES["cpu"] == 400_000_000
    assert two.host_bytes == 2 * one.host_bytes + 400_000_000


def test_selection_time_counts_each_map_read_once():
    """The per-read constant was measured with the reads in it: no disk time on top (it was counted twice)."""
    from reasonany_gui.engine.scoring.estimate import SELECT_NS_PER_READ, stage_costs
    from reasonany_gui.engine.settings.config import MergeConfig

    info = _qwen7b()
    for scope, reads in (("global", 4), ("tensor", 2)):
        costs = stage_costs(MergeConfig(scope=scope), info, "cuda", host_accumulators=False)
        assert costs["select"] == pytest.approx(0.2 + reads * info.num_params * SELECT_NS_PER_READ * 1e-9)
    # 234 M parameters, 4 maps, global: 8 reads, measured 46.9 s on a busy 2-core Xeon (RESULTS.md)
    assert pytest.approx(46.9, rel=0.1) == 8 * 234_435_072 * SELECT_NS_PER_READ * 1e-9


def test_write_stage_host_memory_does_not_grow_with_the_shard_size():
    """The write streams tensor by tensor: its host memory is the packed masks and one tensor's temporaries,
    the same at a 5 GB and a 64 MB shard (it held a whole shard before: 15 GB of a 7B model at 5 GB)."""
    from reasonany_gui.engine.scoring.estimate import estimate_run, write_host_bytes

    info = _qwen7b()
    assert write_host_bytes(info) == 3 * 7_615_616_512 // 8 + 32 * 152_064 * 3584  # the embedding is the largest
    on_gpu = [estimate_run(_on_gpu(accumulators="device", shard_size=s), info, cuda_count=1) for s in ("5GB", "64MB")]
    assert on_gpu[0].host_bytes == on_gpu[1].host_bytes == write_host_bytes(info)  # the write is the host's peak
