"""The tuner: its objective on merges whose answer is known, the recommendation rule, the known winners, cancel,
memory that does not grow with candidates, bad input, and the CLI paths (`merge --tune`, `tune OUT`)."""

from __future__ import annotations

import gc
import json
import math

import pytest
import skills
import torch

from reasonany_gui import cli
from reasonany_gui.engine.core.errors import CancelledError, InputError
from reasonany_gui.engine.core.events import CancelToken, TuneCandidate
from reasonany_gui.engine.measure.candidates import Candidate, pareto, recommend, reference_setting
from reasonany_gui.engine.measure.checks import Checks
from reasonany_gui.engine.measure.heldout import reserve_check_rows
from reasonany_gui.engine.measure.objective import OBJECTIVES, kept_shares
from reasonany_gui.engine.measure.tune import Tuner
from reasonany_gui.engine.run.pipeline import Pipeline
from reasonany_gui.engine.scoring.selection import Selection
from reasonany_gui.engine.settings.config import MergeConfig

#: the paper's ratio and scale
PAPER = {"reasoning_ratio": 0.05, "domain_ratio": 0.05, "reasoning_scale": 1.0, "domain_scale": 1.0}


def _config(trio, files, **kw) -> MergeConfig:
    return skills.trio_config(trio, files, **{"samples": 24, "max_length": 96, "device": "cpu", **kw})


def test_objective_is_one_for_an_expert_and_zero_for_the_base(skilled):
    """kept = (L_base - L_merge) / (L_base - L_expert): Task Arithmetic λ 1/0 IS the reasoning expert (kept 1),
    λ 0/0 is the base (kept 0), whatever the losses are."""
    trio, files = skilled
    p = Pipeline(_config(trio, files, method="task_arithmetic"))
    tuner = Tuner(p, budget=1)
    from reasonany_gui.engine.data.calibration import load_tokenizer
    from reasonany_gui.engine.measure.heldout import check_rows
    from reasonany_gui.engine.measure.live import LiveMerge

    p.check()
    rows = check_rows(p.config, load_tokenizer(trio["reasoning"]), 16)
    assert {k: len(v.items) for k, v in rows.items()} == {"reasoning": 16, "domain": 16}
    live = LiveMerge(p)
    refs = {role: tuner._reference(live, rows, None, role)[0] for role in ("base", "reasoning", "domain")}
    gains = {s: refs["base"].loss[s] - refs[s].loss[s] for s in ("reasoning", "domain")}
    assert gains["reasoning"] > 0.5 and gains["domain"] > 0.5  # the experts learned their skill
    for role, want in (("reasoning", (1.0, None)), ("base", (0.0, 0.0)), ("domain", (None, 1.0))):
        tuner._select(reference_setting(role))
        m, change = tuner._measure(live, rows, None)
        for objective in OBJECTIVES:  # per phrasing group too: the expert keeps 1 and the base 0 in every group
            kept = kept_shares(m, refs, objective)
            for skill, w in zip(("reasoning", "domain"), want, strict=True):
                if w is not None:  # an expert may help the other skill a little too: only its own is known
                    assert kept[skill] == pytest.approx(w, abs=1e-3), objective
        assert (change == 0) == (role == "base")
    live.close()
    p.close()


def test_recommended_is_the_max_min_point_of_the_pareto_set():
    kept = [(0.9, 0.2), (0.6, 0.6), (0.5, 0.7), (0.6, 0.55), (0.2, 0.95), (0.6, 0.6)]
    cands = [
        Candidate(i, {"method": "x"}, kept={"reasoning": r, "domain": d}, change=float(10 - i))
        for i, (r, d) in enumerate(kept)
    ]
    front = pareto(cands)
    assert 3 not in front and {0, 1, 2, 4, 5} == set(front)
    best = recommend(cands)
    assert best.index in front
    assert best.worst == max(c.worst for c in cands) == 0.6
    assert best.index == 5  # tie on min(kept) with candidate 1: the smaller change to the base wins


def test_within_the_tie_tolerance_the_smaller_change_wins_but_not_beyond_it():
    def cand(i: int, r: float, d: float, change: float) -> Candidate:
        return Candidate(i, {"method": "x"}, kept={"reasoning": r, "domain": d}, change=change)

    cands = [cand(0, 0.83, 0.97, 5.0), cand(1, 0.82, 0.98, 4.0), cand(2, 0.79, 0.99, 1.0)]
    assert recommend(cands).index == 1  # 0.82 is within 0.02 of 0.83 and changes the base less; 0.79 is not
    cands.append(cand(3, 0.815, 0.90, 0.5))  # tied on min but dominated by 1 on both skills: not on the front
    assert recommend(cands).index == 1


@pytest.mark.slow
def test_tuner_recommends_task_arithmetic_when_it_keeps_both_skills(skilled):
    """Disjoint task vectors: dense Task Arithmetic keeps both skills, a masked merge must drop part of each."""
    trio, files = skilled
    events = []
    p = Pipeline(_config(trio, files, **PAPER))
    result = Tuner(p, budget=6, check_rows=16, listener=events.append).run()
    best = result.best()
    assert best.setting["method"] == "task_arithmetic", result.summary
    masked = [c for c in result.candidates if c.setting["method"] == "reasonany"]
    assert best.worst > max(c.worst for c in masked) + 0.05
    user = result.candidates[0]  # the user's own setting is always measured first
    assert user.setting["reasoning_ratio"] == 0.05 and user.worst < best.worst
    assert "Task Arithmetic kept more of both skills than the best ReasonAny setting tried" in result.summary
    seen = [e for e in events if isinstance(e, TuneCandidate)]
    assert [e.index for e in seen] == list(range(len(result.candidates)))
    assert seen[-1].recommended == result.recommended
    p.close()


@pytest.fixture(scope="module")
def interfering(tmp_path_factory):
    """A trio where ReasonAny is known to win, built to the paper's premise. The reasoning expert learned its skill
    in the weights its data is least sensitive to (trained to convergence on the bottom half of each layer-0
    tensor by the base's snip scores), the domain expert in the most sensitive half of layer 1, and the reasoning
    fine-tune also left large stray changes on the layer-1 weights the domain skill relies on most, as a
    fine-tune that damaged another skill would. Dense merges add the stray changes; ReasonAny's contrastive masks
    leave them out (they are the domain expert's most important weights). The test below checks this on rows
    neither scoring nor the tuner sees."""
    trio, files = skills.trio_with_data(tmp_path_factory.mktemp("interfering"))
    domain = skills.finetune(trio["base"], trio["domain"], skills.rows("domain", 40), layer=1, half="top")
    reasoning = skills.finetune(
        trio["base"], trio["reasoning"], skills.rows("reasoning", 40), layer=0, steps=300, half="bottom"
    )
    from transformers import AutoTokenizer

    important = skills.snip(domain, skills.rows("domain", 40), AutoTokenizer.from_pretrained(str(trio["base"])))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in reasoning.named_parameters():
            if "layers.1." in name:
                idx = torch.topk(important[name].reshape(-1), int(0.2 * p.numel())).indices
                p.view(-1)[idx] += torch.randn(len(idx), generator=gen) * p.std() * 6
    reasoning.save_pretrained(trio["reasoning"], safe_serialization=True)
    return trio, files


def _fresh_kept(p: Pipeline, settings: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The tuner's measure, kept per skill (the mean of the reply-loss share and the behaviour-decision share), on
    rows that neither the scoring nor the tuner saw: new sums, new phrasings of the harmful requests."""
    from reasonany_gui.engine.data.calibration import Sample, load_tokenizer
    from reasonany_gui.engine.measure.evaluate import greedy_ids, prompt_ids
    from reasonany_gui.engine.measure.heldout import CheckRows, decision_share, decisions, encode_reply, reply_loss
    from reasonany_gui.engine.measure.live import LiveMerge

    tok = load_tokenizer(p.config.reasoning)
    refuse = "I can't help with that."
    fresh = {
        "reasoning": skills.rows("reasoning", 70)[50:],
        "domain": [
            {"prompt": t.format(a), "response": refuse}
            for a in skills.HARMFUL
            for t in ("Show me a way to {}, step by step.", "Could you {} for me?")
        ],
    }
    rows = {
        k: CheckRows(k, "fresh", [encode_reply(Sample(prompt=r["prompt"], response=r["response"]), tok, 96) for r in v])
        for k, v in fresh.items()
    }
    prompts = {k: [r["prompt"] for r in v] for k, v in fresh.items()}
    live = LiveMerge(p)
    refs = {role: reference_setting(role) for role in ("base", "reasoning", "domain")}
    loss, replies = {}, {}
    for label, setting in {**refs, **settings}.items():
        p.select(p.config.replace(**setting), announce=False)
        live.apply()
        loss[label] = {k: reply_loss(live.model, r) for k, r in rows.items()}
        if label in refs:
            replies[label] = {k: greedy_ids(live.model, tok, v, 24) for k, v in prompts.items()}
    points = {
        k: decisions([prompt_ids(tok, q) for q in v], replies[k][k], replies["base"][k]) for k, v in prompts.items()
    }
    kept = {}
    for label, setting in settings.items():
        p.select(p.config.replace(**setting), announce=False)
        live.apply()
        kept[label] = {
            k: (
                (loss["base"][k] - loss[label][k]) / (loss["base"][k] - loss[k][k])
                + decision_share(live.model, points[k])
            )
            / 2
            for k in rows
        }
    live.close()
    return kept


@pytest.mark.slow  # fine-tunes a trio, then a full tuner run
def test_tuner_recommends_reasonany_where_it_is_known_to_win(interfering):
    trio, files = interfering
    p = Pipeline(_config(trio, files, **PAPER))
    result = Tuner(p, budget=14, check_rows=16).run()
    best = result.best()
    assert best.setting["method"] == "reasonany", result.summary
    assert "The best dense merge tried" in result.summary
    dense = {c.label(): c.setting for c in result.candidates if c.setting["method"] != "reasonany"}
    assert {"task_arithmetic", "ties", "dare"} <= {s["method"] for s in dense.values()}
    truth = _fresh_kept(p, {"pick": best.setting, **dense})
    worst = {label: min(v.values()) for label, v in truth.items()}
    assert worst["pick"] > 0.4 and all(worst["pick"] > v + 0.2 for k, v in worst.items() if k != "pick"), truth
    p.close()


@pytest.mark.slow  # four tuner candidates with gc scans
def test_cancel_within_a_candidate_and_memory_does_not_grow(skilled):
    trio, files = skilled
    cancel = CancelToken()
    count = {"n": 0}

    def listener(e):
        if isinstance(e, TuneCandidate):
            count["n"] += 1
            gc.collect()
            alive = sum(type(o) is Selection for o in gc.get_objects())
            assert alive <= 2, f"{alive} selections alive after {count['n']} candidates"
            if count["n"] == 4:
                cancel.cancel()

    p = Pipeline(_config(trio, files), cancel=cancel)
    with pytest.raises(CancelledError):
        Tuner(p, budget=12, check_rows=16, listener=listener).run()
    assert count["n"] == 4
    assert p.config == _config(trio, files)  # the user's setting is back
    p.close()


def test_bad_input_budget_checks_and_too_little_heldout(skilled, tmp_path):
    trio, files = skilled
    p = Pipeline(_config(trio, files))
    with pytest.raises(InputError, match="at least 1 candidate"):
        Tuner(p, budget=0)
    bad = tmp_path / "checks.json"
    bad.write_text('{"reasoning": [{"prompt": "2+2?"}]}', encoding="utf-8")
    with pytest.raises(InputError, match=r"reasoning item 1: needs an \"answer\""):
        Checks.load(bad)
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="must be a JSON object"):
        Checks.load(bad)
    small = _config(trio, files, samples=36)  # 40 rows, 36 for scoring: 4 held out
    with pytest.raises(InputError, match="Too little held-out reasoning data"):
        Tuner(Pipeline(small), budget=2).run()
    cfg, notes = reserve_check_rows(small, 16)  # before scoring, rows are set aside instead
    assert cfg.samples == 32 and "scoring uses 32 of the 40 rows" in notes[0]


def test_checks_file_passes():
    c = Checks(
        reasoning=[{"prompt": "a", "answer": "42"}],
        domain=[{"prompt": "b", "expect": "refuse"}, {"prompt": "c", "expect": "answer"}],
    )
    assert c.passes("reasoning", ["so the answer is 42"]) == 1.0
    assert c.passes("domain", ["I'm sorry, I can't help with that.", "Sure, here is how."]) == 1.0
    assert c.passes("domain", ["Sure.", "I cannot help."]) == 0.0


@pytest.mark.slow
def test_cli_merge_tune_writes_the_recommended_merge_and_tune_json(skilled, tmp_path, capsys):
    trio, files = skilled
    out = tmp_path / "tuned"
    rc = cli.main(
        skills.merge_argv(
            trio,
            files,
            out,
            *("--samples", "40", "--max-length", "96", "--device", "cpu"),
            *("--tune", "--budget", "5", "--check-rows", "8", "--quiet"),
        )
    )
    assert rc == 0, capsys.readouterr().err
    tune = json.loads((out / "reasonany" / "tune.json").read_text())
    run = MergeConfig.from_yaml(out / "reasonany" / "run.yaml")
    best = tune["recommended_setting"]
    assert run.method == best["method"] and run.reasoning_scale == best["reasoning_scale"]
    assert run.samples == 32  # 8 of the 40 rows were held out for the checks, before scoring
    card = (out / "README.md").read_text()
    assert "## How the setting was chosen" in card and "(recommended)" in card
    assert json.loads((out / "reasonany" / "report.json").read_text())["tune"]["recommended"] == tune["recommended"]
    # tuning the finished run again (scores from the cache) adds the section without touching the weights
    before = (out / "model-00001-of-00001.safetensors").read_bytes()
    assert cli.main(["tune", str(out), "--budget", "2", "--check-rows", "8", "--quiet"]) == 0
    assert (out / "model-00001-of-00001.safetensors").read_bytes() == before
    assert len(json.loads((out / "reasonany" / "tune.json").read_text())["candidates"]) == 2
    assert cli.main(["tune", str(out), "--budget", "0"]) == 2
    assert "at least 1 candidate" in capsys.readouterr().err
    assert not math.isnan(tune["seconds"])


def test_renamed_token_rows_come_whole_from_the_tokenizer_source(trio, data_files, tmp_path):
    """The reasoning model names token 257 `<think>` (R1-style: same id, a new meaning). ReasonAny keeps
    embeddings at the base, except that row: it comes from the reasoning model whole, in the written merge."""
    import shutil

    from safetensors import safe_open

    folders = {role: tmp_path / role for role in trio}
    for role in trio:
        shutil.copytree(trio[role], folders[role])
    tj = folders["reasoning"] / "tokenizer.json"
    data = json.loads(tj.read_text())
    for entry in data["added_tokens"]:
        if entry["id"] == 257:
            entry["content"] = "<think>"
    tj.write_text(json.dumps(data))
    tc = folders["reasoning"] / "tokenizer_config.json"
    tc.write_text(tc.read_text().replace('"<|im_start|>"', '"<think>"'))
    cfg = MergeConfig(
        base=str(folders["base"]),
        reasoning=str(folders["reasoning"]),
        domain=str(folders["domain"]),
        reasoning_data=str(data_files["reasoning"]),
        domain_data=str(data_files["domain"]),
        samples=3,
        max_length=64,
        device="cpu",
        out=str(tmp_path / "out"),
    )
    p = Pipeline(cfg)
    out = p.run()
    assert p.renamed_tokens == {257: "<think>"}
    name = "model.embed_tokens.weight"
    read = {}
    for role, folder in (("base", folders["base"]), ("reasoning", folders["reasoning"]), ("merged", out)):
        f = sorted(folder.glob("*.safetensors"))[0]
        with safe_open(str(f), "pt") as h:
            read[role] = h.get_tensor(name)
    assert torch.equal(read["merged"][257], read["reasoning"][257])
    assert not torch.equal(read["base"][257], read["reasoning"][257])
    keep = torch.ones(read["base"].shape[0], dtype=torch.bool)
    keep[257] = False
    assert torch.equal(read["merged"][keep], read["base"][keep])


def test_report_says_when_the_saved_setting_is_not_the_recommendation():
    from reasonany_gui.engine.output.card import chosen_by_hand, tune_markdown

    a = {
        "method": "reasonany",
        "reasoning_ratio": 0.5,
        "domain_ratio": 0.5,
        "reasoning_scale": 2.0,
        "domain_scale": 2.0,
        "scope": "tensor",
    }
    b = dict(a, method="task_arithmetic", reasoning_scale=1.0, domain_scale=1.0)
    tune = {
        "summary": "Recommended: A.",
        "recommended": 0,
        "candidates": [
            {"index": 0, "label": "A", "setting": a, "kept": {"reasoning": 1.0, "domain": 0.9}},
            {"index": 1, "label": "B", "setting": b, "kept": {"reasoning": 0.9, "domain": 0.2}},
        ],
    }
    assert chosen_by_hand(tune, dict(a, samples=100)) is None
    assert chosen_by_hand(tune, b) == "This folder holds another candidate of the search, picked by hand: B."
    assert "changed by hand" in chosen_by_hand(tune, dict(a, reasoning_ratio=0.3))
    card = "\n".join(tune_markdown(tune, b))
    assert "picked by hand: B" in card and "| A **(recommended)** | 100 % | 90 % |" in card


@pytest.mark.slow  # a tuner run up to the failing candidate
def test_out_of_memory_during_a_candidate_is_one_clear_message(skilled, monkeypatch):
    """A GPU that runs out of memory while a candidate is measured: OutOfMemoryError with what to do, and the
    user's setting back on the pipeline (nothing was written, so there is nothing to clean)."""
    from reasonany_gui.engine.core.errors import OutOfMemoryError
    from reasonany_gui.engine.measure import tune

    trio, files = skilled
    calls = {"n": 0}
    real = tune.row_losses

    def flaky(model, rows, cancel=None, batch_size=8):
        calls["n"] += 1
        if calls["n"] > 7:  # after the three references and the first candidate
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, rows, cancel, batch_size)

    monkeypatch.setattr(tune, "row_losses", flaky)
    p = Pipeline(_config(trio, files))
    with pytest.raises(OutOfMemoryError, match="ran out of memory while measuring a candidate merge") as err:
        Tuner(p, budget=4, check_rows=8).run()
    assert err.value.suggestions == {"device": "cpu"}
    assert p.config == _config(trio, files) and p.tune_result is None
    p.close()


def test_decisions_are_where_the_expert_parts_from_the_base_and_score_one_for_it_zero_for_the_base(skilled):
    from reasonany_gui.engine.data.calibration import load_tokenizer
    from reasonany_gui.engine.measure.heldout import Decision, check_rows, decision_share, decisions
    from reasonany_gui.engine.measure.live import LiveMerge

    assert decisions([[1, 2], [1], [3]], [[5, 6, 7], [5, 6], [4, 0]], [[5, 9], [5, 6], [4, 8, 8]]) == [
        Decision([1, 2, 5], 6, 9),
        Decision([3, 4], 0, 8),
    ]  # identical replies give no decision
    trio, files = skilled
    p = Pipeline(_config(trio, files, method="task_arithmetic"))
    p.check()
    tok = load_tokenizer(trio["reasoning"])
    rows = check_rows(p.config, tok, 16)
    tuner, live = Tuner(p, budget=1), LiveMerge(p)
    replies = {role: tuner._reference(live, rows, tok, role)[1] for role in ("reasoning", "domain", "base")}
    assert set(replies["base"]) == {"reasoning", "domain"} and set(replies["reasoning"]) == {"reasoning"}
    tuner._find_decisions(rows, tok, replies)
    assert {k: len(d) >= 8 for k, d in tuner.decisions.items()} == {"reasoning": True, "domain": True}
    for skill, points in tuner.decisions.items():  # the expert takes its own way, the base the base's
        for role, want in ((skill, 1.0), ("base", 0.0)):
            tuner._select(reference_setting(role))
            live.apply()
            assert decision_share(live.model, points) == want, (skill, role)
    live.close()
    p.close()
