"""Hook-accumulated scores equal a plain per-sample autograd reference, for every score type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from reasonany_gui.engine.core.events import CancelToken, SensitivityUpdate
from reasonany_gui.engine.io.checkpoints import Checkpoint
from reasonany_gui.engine.io.loading import load_model
from reasonany_gui.engine.scoring.importance import enable_checkpointing, is_checkpointing, parameter_names, score_pass


@dataclass
class S:
    input_ids: torch.Tensor
    labels: torch.Tensor


def samples(n=4):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        ids = torch.randint(0, 256, (1, 6 + 3 * i), generator=g)
        labels = ids.clone()
        labels[0, :2] = -100  # a prompt part that is not scored
        out.append(S(ids, labels))
    return out


def reference(model, data, kind):
    """Per sample: fresh gradients with autograd, absolute value per sample, mean over samples."""
    params = dict(model.named_parameters())
    acc = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    for s in data:
        model.zero_grad(set_to_none=True)
        loss = model(input_ids=s.input_ids, labels=s.labels).loss
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (n, p), g in zip(params.items(), grads, strict=True):
            if g is None:
                continue
            if kind == "gradient":
                acc[n] += g.abs()
            elif kind == "snip":
                acc[n] += (p.detach() * g).abs()
            else:
                acc[n] += g.square()
    return {n: a / len(data) for n, a in acc.items()}


@pytest.mark.parametrize("kind", ["gradient", "snip", "fisher"])
def test_scores_equal_autograd_reference(trio, kind):
    ckpt = Checkpoint(trio["reasoning"])
    model = load_model(trio["reasoning"], torch.float32, "cpu")
    data = samples()
    events = []
    params = parameter_names(model, set(ckpt.tensors))
    assert set(params) == set(ckpt.tensors)  # every stored float tensor is scored
    res = score_pass(
        model,
        params,
        data,
        kind,
        torch.device("cpu"),
        "reasoning@reasoning",
        "reasoning",
        "reasoning",
        events.append,
        CancelToken(),
    )
    for p in model.parameters():
        p.requires_grad_(True)
    ref = reference(model, data, kind)
    assert res.backward_passes == len(data)
    for name, score in res.scores.items():
        assert score.dtype == torch.float32
        torch.testing.assert_close(score, ref[name], rtol=1e-5, atol=1e-12, msg=name)
    assert res.tokens == sum(int((s.labels[:, 1:] != -100).sum()) for s in data)
    grids = [e for e in events if isinstance(e, SensitivityUpdate)]
    assert grids and grids[-1].samples_done == len(data) and grids[-1].grid.shape == (2, 7)
    assert (grids[-1].grid > 0).all()


def test_tied_embedding_scored_once_under_its_stored_name(llama_tied_trio):
    ckpt = Checkpoint(llama_tied_trio["base"])
    model = load_model(llama_tied_trio["base"], torch.float32, "cpu")
    params = parameter_names(model, set(ckpt.tensors))
    assert "model.embed_tokens.weight" in params and "lm_head.weight" not in params
    assert len({id(p) for p in params.values()}) == len(params)


def test_cancel_stops_between_samples(trio):
    ckpt = Checkpoint(trio["base"])
    model = load_model(trio["base"], torch.float32, "cpu")
    token = CancelToken()
    seen = []

    def on_sample(i, n):
        seen.append(i)
        if i == 2:
            token.cancel()

    from reasonany_gui.engine.core.errors import CancelledError

    with pytest.raises(CancelledError):
        score_pass(
            model,
            parameter_names(model, set(ckpt.tensors)),
            samples(5),
            "gradient",
            torch.device("cpu"),
            "p",
            "base",
            "reasoning",
            lambda e: None,
            token,
            on_sample,
        )
    assert seen == [1, 2]
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("where", ["device", "host"])
def test_cuda_scores_match_cpu(trio, where):
    ckpt = Checkpoint(trio["reasoning"])
    data = samples()
    cpu_model = load_model(trio["reasoning"], torch.float32, "cpu")
    ref = score_pass(
        cpu_model,
        parameter_names(cpu_model, set(ckpt.tensors)),
        data,
        "gradient",
        torch.device("cpu"),
        "p",
        "r",
        "r",
        lambda e: None,
        CancelToken(),
    ).scores
    gpu_model = load_model(trio["reasoning"], torch.float32, "cuda")
    acc = torch.device("cuda") if where == "device" else torch.device("cpu")
    got = score_pass(
        gpu_model,
        parameter_names(gpu_model, set(ckpt.tensors)),
        data,
        "gradient",
        acc,
        "p",
        "r",
        "r",
        lambda e: None,
        CancelToken(),
    ).scores
    for n in ref:
        assert got[n].device.type == acc.type
        torch.testing.assert_close(got[n].cpu(), ref[n], rtol=1e-3, atol=1e-7)


def test_gradient_checkpointing_gives_the_same_scores(trio):
    ckpt = Checkpoint(trio["domain"])
    data = samples()
    plain = load_model(trio["domain"], torch.float32, "cpu")
    ref = score_pass(
        plain,
        parameter_names(plain, set(ckpt.tensors)),
        data,
        "gradient",
        torch.device("cpu"),
        "p",
        "d",
        "d",
        lambda e: None,
        CancelToken(),
    ).scores
    gc = load_model(trio["domain"], torch.float32, "cpu")
    enable_checkpointing(gc)
    assert is_checkpointing(gc)
    got = score_pass(
        gc,
        parameter_names(gc, set(ckpt.tensors)),
        data,
        "gradient",
        torch.device("cpu"),
        "p",
        "d",
        "d",
        lambda e: None,
        CancelToken(),
    ).scores
    for n in ref:
        torch.testing.assert_close(got[n], ref[n], rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("kind", ["gradient", "snip", "fisher"])
def test_bf16_model_scores_accumulate_exactly_in_float32(llama_tied_trio, kind):
    """In a bfloat16 model the hook's in-place |g| and the float32 products equal a float32 reference."""
    ckpt = Checkpoint(llama_tied_trio["reasoning"])
    model = load_model(llama_tied_trio["reasoning"], torch.bfloat16, "cpu")
    data = samples(3)
    res = score_pass(
        model,
        parameter_names(model, set(ckpt.tensors)),
        data,
        kind,
        torch.device("cpu"),
        "p",
        "r",
        "r",
        lambda e: None,
        CancelToken(),
    )
    params = dict(model.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
    ref = {n: torch.zeros(p.shape, dtype=torch.float32) for n, p in params.items()}
    for s in data:
        loss = model(input_ids=s.input_ids, labels=s.labels).loss
        for (n, p), g in zip(params.items(), torch.autograd.grad(loss, list(params.values())), strict=True):
            g32, p32 = g.float(), p.detach().float()
            ref[n] += {"gradient": g32.abs(), "snip": (p32 * g32).abs(), "fisher": g32 * g32}[kind]
    assert "model.embed_tokens.weight" in res.scores
    for n, score in res.scores.items():
        torch.testing.assert_close(score, ref[n] / len(data), rtol=0, atol=0, msg=n)


# ---------------------------------------------------------------------------- the staged host path (issue 14)
@pytest.mark.parametrize("kind", ["gradient", "snip", "fisher"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_staged_host_accumulators_equal_direct_ones(llama_tied_trio, kind, dtype):
    """The staged path (worker thread, chunked double-buffered copies, element-wise adds) gives bit-identical
    sums to adding each contribution whole, for every score kind and both storage dtypes. A 1 KiB chunk
    makes every tensor cross several chunk boundaries, and a small in-flight limit makes the hook wait."""
    from reasonany_gui.engine.scoring import importance

    ckpt = Checkpoint(llama_tied_trio["reasoning"])
    model = load_model(llama_tied_trio["reasoning"], dtype, "cpu")
    params = parameter_names(model, set(ckpt.tensors))
    data = samples(3)
    direct = score_pass(
        model, params, data, kind, torch.device("cpu"), "p", "r", "r", lambda e: None, CancelToken(), stage=False
    )
    acc = importance.ScoreAccumulators(
        params,
        kind,
        importance.placement_for(params, torch.device("cpu")),
        stage=True,
        chunk_bytes=1024,
        inflight_bytes=4096,
    )
    assert acc.staged and len(acc._stagers) == 1
    for p in model.parameters():
        p.requires_grad_(False)
    acc.attach()
    try:
        for s in data:
            model(input_ids=s.input_ids, labels=s.labels, use_cache=False).loss.backward()
        sums = acc.finish()
    finally:
        acc.close()
    for name, score in direct.scores.items():
        torch.testing.assert_close(sums[name] / len(data), score, rtol=0, atol=0, msg=name)
    assert max(p.numel() for p in params.values()) * 4 > 1024  # the chunking really split tensors


def test_score_pass_staged_equals_unstaged_and_grid_matches_scores(trio):
    """score_pass with stage=True gives the scores of the default path, and the live grid (from the hooks'
    running sums) equals the mean of the final scores per (layer, module) within float32 summation error."""
    from reasonany_gui.engine.core import layout

    ckpt = Checkpoint(trio["reasoning"])
    model = load_model(trio["reasoning"], torch.float32, "cpu")
    params = parameter_names(model, set(ckpt.tensors))
    data = samples(4)
    runs = {}
    for stage in (False, True):
        events = []
        res = score_pass(
            model, params, data, "snip", torch.device("cpu"), "p", "r", "r", events.append, CancelToken(), stage=stage
        )
        runs[stage] = (res, [e for e in events if isinstance(e, SensitivityUpdate)][-1].grid)
    for name in runs[False][0].scores:
        torch.testing.assert_close(runs[True][0].scores[name], runs[False][0].scores[name], rtol=0, atol=0)
    scores, grid = runs[True][0].scores, runs[True][1]
    for (layer, module), names in layout.cells(list(scores)).items():
        expect = sum(float(scores[t].double().sum()) for t in names) / sum(scores[t].numel() for t in names)
        assert grid[layer, layout.MODULES.index(module)] == pytest.approx(expect, rel=1e-5)
    np_grid = runs[False][1]
    assert (abs(np_grid - grid) <= 1e-5 * abs(grid)).all()


def test_staged_worker_error_reaches_the_caller_and_stops_the_thread(trio, monkeypatch):
    """A failure in the worker (e.g. host memory) is raised in the pass, hooks are removed, no thread is left."""
    import threading

    from reasonany_gui.engine.scoring import importance

    def broken(self, dst, host, done):
        raise RuntimeError("host add failed")

    monkeypatch.setattr(importance._HostStager, "_add", broken)
    ckpt = Checkpoint(trio["base"])
    model = load_model(trio["base"], torch.float32, "cpu")
    with pytest.raises(RuntimeError, match="host add failed"):
        score_pass(
            model,
            parameter_names(model, set(ckpt.tensors)),
            samples(3),
            "gradient",
            torch.device("cpu"),
            "p",
            "b",
            "r",
            lambda e: None,
            CancelToken(),
            stage=True,
        )
    assert not any(t.name == "reasonany-host-accumulate" for t in threading.enumerate())
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_cancel_with_staging_leaves_no_worker(trio):
    import threading

    from reasonany_gui.engine.core.errors import CancelledError

    ckpt = Checkpoint(trio["base"])
    model = load_model(trio["base"], torch.float32, "cpu")
    token = CancelToken()

    def on_sample(i, n):
        if i == 1:
            token.cancel()

    with pytest.raises(CancelledError):
        score_pass(
            model,
            parameter_names(model, set(ckpt.tensors)),
            samples(4),
            "snip",
            torch.device("cpu"),
            "p",
            "b",
            "r",
            lambda e: None,
            token,
            on_sample,
            stage=True,
        )
    assert not any(t.name == "reasonany-host-accumulate" for t in threading.enumerate())


def test_unknown_kind_fails_before_any_hook(trio):
    ckpt = Checkpoint(trio["base"])
    model = load_model(trio["base"], torch.float32, "cpu")
    with pytest.raises(ValueError, match="unknown score kind"):
        score_pass(
            model,
            parameter_names(model, set(ckpt.tensors)),
            samples(1),
            "nope",
            torch.device("cpu"),
            "p",
            "b",
            "r",
            lambda e: None,
            CancelToken(),
        )
    assert all(not p.requires_grad for p in model.parameters())
