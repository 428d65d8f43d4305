"""Data-parallel identification (engine/scoring/collectives.py) and split device maps (engine/placement.py), on CPU.

Why processes and gloo: CI has no GPU, and the promise under test is that 2 ranks, each scoring its share of
the samples and reducing the float32 sums once, give the single process's scores up to summation order.
The ranks are real processes (torch.multiprocessing spawn) meeting through a file store, so the collectives,
the heartbeat and the failure relay are the same code a torchrun job runs.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import pytest
import skills
import torch

from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.scoring import collectives

# ---------------------------------------------------------------------- pure functions


def test_world_from_env_reads_torchrun_variables() -> None:
    assert collectives.world_from_env({}) is None
    assert collectives.world_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    w = collectives.world_from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (w.rank, w.size, w.local_rank, w.is_writer) == (2, 4, 0, False)


def test_parse_devices_groups_and_errors() -> None:
    assert collectives.parse_devices("") == []
    assert collectives.parse_devices("cpu,cpu", cuda_count=0) == [["cpu"], ["cpu"]]
    assert collectives.parse_devices("all", cuda_count=3) == [["cuda:0"], ["cuda:1"], ["cuda:2"]]
    assert collectives.parse_devices("cuda:0+cuda:1, cuda:2+cuda:3", cuda_count=4) == [
        ["cuda:0", "cuda:1"],
        ["cuda:2", "cuda:3"],
    ]
    for bad, words in [
        ("all", "none"),
        ("cuda:0,cuda:0", "twice"),
        ("gpu0", "not a device"),
        ("cuda:5", "does not exist"),
        ("cpu+cuda:0", "cannot be part"),
    ]:
        with pytest.raises(InputError, match=words):
            collectives.parse_devices(bad, cuda_count=4 if bad != "all" else 0)
    w = collectives.World(rank=1, size=2, local_rank=1)
    assert collectives.rank_devices("cuda:0+cuda:1,cuda:2", w, cuda_count=3) == ["cuda:2"]
    with pytest.raises(InputError, match="nproc-per-node 3"):
        collectives.rank_devices("cpu,cpu,cpu", w, cuda_count=0)
    assert collectives.ranks_needed("cuda:0+cuda:1", cuda_count=2) == 1


def test_shards_cover_every_sample_once() -> None:
    items = list(range(11))
    shares = [collectives.shard(items, r, 3) for r in range(3)]
    assert sorted(sum(shares, [])) == items
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_without_a_group_everything_is_single_process() -> None:
    assert not collectives.active() and collectives.is_writer() and collectives.rank() == 0
    assert collectives.agree({"a": 1}) == {"a": 1}


# ---------------------------------------------------------------------- two gloo ranks


def _samples(trio, data_files, n: int = 5) -> list:
    from reasonany_gui.engine.data import calibration

    tok = calibration.load_tokenizer(trio["reasoning"])
    return calibration.prepare(str(data_files["reasoning"]), tok, n, 64, 0, False).samples


def _single_scores(trio, samples, kind: str = "snip") -> dict[str, torch.Tensor]:
    from reasonany_gui.engine.core.events import CancelToken
    from reasonany_gui.engine.io.checkpoints import Checkpoint
    from reasonany_gui.engine.io.loading import load_model
    from reasonany_gui.engine.scoring import importance

    model = load_model(trio["reasoning"], torch.float32, "cpu")
    params = importance.parameter_names(model, set(Checkpoint(trio["reasoning"]).tensors))
    r = importance.score_pass(
        model, params, samples, kind, torch.device("cpu"), "p", "reasoning", "reasoning", lambda e: None, CancelToken()
    )
    return r.scores


def _score_worker(rank: int, size: int, store: str, trio: dict, samples: list, out: str, fail_rank: int) -> None:
    """One rank: score its share; rank 0 saves the reduced scores and the progress it saw; errors to a file."""
    torch.set_num_threads(1)
    from reasonany_gui.engine.core.events import CancelToken
    from reasonany_gui.engine.io.checkpoints import Checkpoint
    from reasonany_gui.engine.io.loading import load_model
    from reasonany_gui.engine.scoring import importance

    progress: list[tuple[int, int]] = []
    try:
        with collectives.ProcessGroup("cpu", collectives.World(rank, size, rank), init_method=store, timeout_s=60):
            model = load_model(trio["reasoning"], torch.float32, "cpu")
            if rank == fail_rank:  # the second forward on this rank raises
                calls = {"n": 0}
                forward = model.forward

                def broken(*a, **k):
                    calls["n"] += 1
                    if calls["n"] == 2:
                        raise RuntimeError("disk on fire")
                    return forward(*a, **k)

                model.forward = broken
            params = importance.parameter_names(model, set(Checkpoint(trio["reasoning"]).tensors))
            r = collectives.score_pass(
                model,
                params,
                samples,
                "snip",
                torch.device("cpu"),
                "p",
                "reasoning",
                "reasoning",
                lambda e: None,
                CancelToken(),
                on_sample=lambda i, n: progress.append((i, n)),
            )
            if rank == 0:
                torch.save({"scores": r.scores, "samples": r.samples, "tokens": r.tokens, "progress": progress}, out)
            else:
                assert r.scores == {}
    except BaseException as exc:  # noqa: BLE001 - the test reads what each rank raised
        Path(f"{out}.rank{rank}.err").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    collectives.exit_rank(0)  # as the CLI's ranks end (gloo may abort an interpreter shutdown)


def _spawn(worker, args: tuple, nprocs: int = 2) -> None:
    import torch.multiprocessing as mp

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(worker, args=(nprocs, *args), nprocs=nprocs, join=True)


def test_two_gloo_ranks_reproduce_single_process_scores(trio, data_files, tmp_path) -> None:
    samples = _samples(trio, data_files, 5)  # 3 + 2: unequal shares
    single = _single_scores(trio, samples)
    out = tmp_path / "scores.pt"
    _spawn(_score_worker, (f"file://{tmp_path / 'store'}", trio, samples, str(out), -1))
    errors = sorted(tmp_path.glob("*.err"))
    assert not errors, errors[0].read_text()
    got = torch.load(out)
    assert got["samples"] == 5
    assert got["tokens"] == sum(int((s.labels[:, 1:] != -100).sum()) for s in samples)
    assert [p[0] for p in got["progress"]] == [2, 4, 5] and {p[1] for p in got["progress"]} == {5}
    assert set(got["scores"]) == set(single)
    for name, ref in single.items():
        torch.testing.assert_close(got["scores"][name], ref, rtol=1e-5, atol=1e-7 * float(ref.abs().max()) + 1e-12)


@pytest.mark.slow  # the pipeline-level test below covers the same relay end to end
def test_a_failure_on_one_rank_stops_the_other_with_its_message(trio, data_files, tmp_path) -> None:
    samples = _samples(trio, data_files, 5)
    out = tmp_path / "scores.pt"
    _spawn(_score_worker, (f"file://{tmp_path / 'store'}", trio, samples, str(out), 1))
    assert not out.exists()  # rank 0 never got scores to save
    rank0 = (tmp_path / "scores.pt.rank0.err").read_text()
    rank1 = (tmp_path / "scores.pt.rank1.err").read_text()
    assert rank0.startswith("PeerFailedError: Rank 1 of 2 failed") and "disk on fire" in rank0.splitlines()[0]
    assert rank1.startswith("RuntimeError: disk on fire")


# ---------------------------------------------------------------------- a model split by a device map


def test_split_plan_arithmetic() -> None:
    from reasonany_gui.engine.scoring import placement

    gib = 1 << 30
    # 70B in bfloat16 with device accumulators: 6 B/param = 420 GB; 8 × 80 GB less 2 GiB each fits
    plan = placement.split_plan(
        70_000_000_000, 2, {f"cuda:{i}": 80 * 10**9 for i in range(8)}, largest_block_params=1_000_000_000
    )
    assert plan.fits and sum(plan.per_device.values()) == 70_000_000_000 * 6
    assert len(plan.per_device) == 6  # filled in device order: six cards are enough
    # the same on 4 cards does not, and says how much is missing
    small = placement.split_plan(70_000_000_000, 2, {f"cuda:{i}": 80 * 10**9 for i in range(4)})
    assert not small.fits and "420 GB" in small.message
    # host accumulators: weights only on the devices
    assert placement.split_plan(
        70_000_000_000, 2, {f"cuda:{i}": 80 * 10**9 for i in range(4)}, accumulators_on_device=False
    ).fits
    # a block larger than every device never fits, whatever the total
    assert not placement.split_plan(10, 2, {"cuda:0": 3 * gib, "cuda:1": 3 * gib}, largest_block_params=10**9).fits
    budget = placement.scoring_max_memory({"cuda:0": 12 * gib}, 2, reserve_bytes=0)
    assert budget == {"cuda:0": 4 * gib}  # a third of the memory for bf16 weights, two thirds for accumulators


def test_explicit_split_device_map_gives_the_plain_models_scores(trio, data_files) -> None:
    from reasonany_gui.engine.core.events import CancelToken
    from reasonany_gui.engine.io.checkpoints import Checkpoint
    from reasonany_gui.engine.scoring import importance, placement

    samples = _samples(trio, data_files, 3)
    plain = _single_scores(trio, samples)
    device_map = {
        "model.embed_tokens": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "cpu",
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    # on CPU only the explicit map, the loader's device_map path and the per-parameter accumulator mapping are
    # exercised: transformers adds no dispatch hooks for a map that names one device (a GPU check would)
    model = placement.load_split(trio["reasoning"], torch.float32, ["cpu"], device_map=device_map)
    assert not placement.is_split(model)
    params = importance.parameter_names(model, set(Checkpoint(trio["reasoning"]).tensors))
    acc_on = placement.accumulate_on(params, "auto")
    assert set(acc_on) == set(params) and placement.describe(acc_on).startswith("cpu (")
    split = importance.score_pass(
        model, params, samples, "snip", acc_on, "p", "reasoning", "reasoning", lambda e: None, CancelToken()
    ).scores
    assert set(split) == set(plain)
    for name in plain:
        torch.testing.assert_close(split[name], plain[name], rtol=0, atol=0)


def test_inferred_device_map_keeps_blocks_whole_and_refuses_spilling(trio) -> None:
    from reasonany_gui.engine.core.errors import OutOfMemoryError
    from reasonany_gui.engine.scoring import placement

    dm = placement.infer_device_map(trio["reasoning"], torch.float32, ["cpu"], free={"cpu": 8 << 30}, reserve_bytes=0)
    assert set(map(str, dm.values())) == {"cpu"}
    with pytest.raises(OutOfMemoryError, match="does not fit"):
        placement.infer_device_map(
            trio["reasoning"], torch.float32, ["cuda:0"], free={"cuda:0": 10_000}, reserve_bytes=0
        )


def test_a_missing_library_is_named_not_the_model(trio, monkeypatch) -> None:
    """Without accelerate (a declared dependency, so only a broken install lacks it) the split path names the
    package and its install command, and does not say the model could not be loaded."""
    import sys

    from reasonany_gui.engine.scoring import placement

    monkeypatch.setitem(sys.modules, "accelerate", None)  # import accelerate -> ModuleNotFoundError
    with pytest.raises(InputError) as caught:
        placement.infer_device_map(trio["reasoning"], torch.float32, ["cpu"], free={"cpu": 8 << 30})
    message = str(caught.value)
    assert "'accelerate'" in message and "pip install accelerate" in message
    assert "could not be loaded" not in message

    # transformers' own refusal of a device_map without accelerate (a ValueError) gets the same sentence
    import transformers.integrations.accelerate as hf_accelerate

    from reasonany_gui.engine.io.loading import load_model

    monkeypatch.setattr(hf_accelerate, "is_accelerate_available", lambda *a, **k: False)
    with pytest.raises(InputError) as caught:
        load_model(trio["reasoning"], torch.float32, "cpu", device_map={"": "cpu"})
    assert "'accelerate'" in str(caught.value) and "could not be loaded" not in str(caught.value)


def test_accelerate_is_a_declared_dependency() -> None:
    """The split-model path needs accelerate: it is in the core dependencies, not an extra (issue 19)."""
    from importlib.metadata import requires

    core = [r for r in requires("reasonany-gui") or [] if "extra ==" not in r]
    assert any(r.startswith("accelerate") for r in core)


# ---------------------------------------------------------------------- the whole run on two ranks


def _free_port() -> int:
    import socket

    with socket.socket() as s:  # the port torchrun would pick for --standalone; only the test needs one
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_worker(rank: int, size: int, home: str, port: int, argv: list[str], fail_rank: int) -> None:
    """One torchrun-like worker: the env torchrun sets, then the CLI's merge; rank `fail_rank`'s model breaks."""
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(size),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "REASONANY_HOME": home,
            "HF_HUB_OFFLINE": "1",
        }
    )
    torch.set_num_threads(1)
    from reasonany_gui import cli
    from reasonany_gui.engine.run import identify

    if rank == fail_rank:
        real = identify.load_model

        def broken_model(*a, **k):
            model = real(*a, **k)
            model.forward = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk on fire"))
            return model

        identify.load_model = broken_model
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    Path(home, f"rank{rank}.code").write_text(str(code))
    collectives.exit_rank(0)


def test_a_failing_rank_stops_the_run_with_nothing_written(trio, data_files, tmp_path, capfd) -> None:
    home = tmp_path / "home"
    out = tmp_path / "merged"
    argv = skills.merge_argv(
        trio,
        data_files,
        out,
        *("--devices", "cpu,cpu", "--samples", "4", "--max-length", "32", "--quiet"),
    )
    _spawn(_run_worker, (str(home), _free_port(), argv, 1))
    assert (home / "rank0.code").read_text() == "1" and (home / "rank1.code").read_text() == "1"
    err = capfd.readouterr().err
    assert err.count("disk on fire") == 1 and "Rank 1 of 2 failed" in err  # one message, from rank 0
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))
    scores = home / "cache" / "scores"
    assert not scores.exists() or not [p for p in scores.iterdir() if not p.name.startswith(".")]


@pytest.mark.slow
def test_merge_devices_cpu_cpu_launches_torchrun_and_matches_one_process(trio, data_files, tmp_path) -> None:
    """`reasonany merge --devices cpu,cpu` (torch's launcher, two gloo workers) writes the same masks as one
    process, and score maps equal up to float32 summation order."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    def merge(home: Path, extra: list[str]) -> Path:
        out = home / "merged"
        env = {**os.environ, "REASONANY_HOME": str(home), "OMP_NUM_THREADS": "1"}
        cmd = [
            *(sys.executable, "-m", "reasonany_gui.cli"),
            *skills.merge_argv(
                trio,
                data_files,
                out,
                *("--samples", "5", "--max-length", "32", "--score-precision", "float32", "--quiet"),
                *extra,
            ),
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return out

    one = merge(tmp_path / "one", ["--device", "cpu"])
    two = merge(tmp_path / "two", ["--devices", "cpu,cpu"])
    maps = {}
    for name in ("one", "two"):
        entries = sorted((tmp_path / name / "cache" / "scores").iterdir())
        maps[name] = [
            {k: v for f in sorted(e.glob("*.safetensors")) for k, v in load_file(f).items()}
            for e in entries
            if e.is_dir() and not e.name.startswith(".")  # .locks: the entries' holders (scorecache.hold)
        ]
    assert len(maps["one"]) == len(maps["two"]) == 2
    for a, b in zip(maps["one"], maps["two"], strict=True):
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-7 * float(a[k].abs().max()) + 1e-12)
    masks_one = load_file(next((one / "reasonany").glob("masks*.safetensors")))
    masks_two = load_file(next((two / "reasonany").glob("masks*.safetensors")))
    differ = sum(int((masks_one[k] != masks_two[k]).sum()) for k in masks_one)
    total = sum(v.numel() for v in masks_one.values())
    assert differ <= max(2, total // 10_000), f"{differ} of {total} mask entries differ (more than threshold ties)"
