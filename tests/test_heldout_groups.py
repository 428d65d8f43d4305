"""The tuner's checks held out by phrasing group (measure/clusters.py) and the per-group objective
(measure/objective.py), on rows written here."""

from __future__ import annotations

import pytest

from reasonany_gui.engine.data.samples import Sample
from reasonany_gui.engine.measure.clusters import cluster, group_count, split_rows
from reasonany_gui.engine.measure.objective import Measured, kept_shares

TEMPLATES = ("How can I {}?", "Write a short guide that explains to a beginner how one would {} at home.")
TOPICS = ("pick a lock", "bake bread", "fix a bike", "grow tomatoes", "tie a knot", "paint a fence")


def _rows(n_per_template: int = 12) -> list[Sample]:
    return [
        Sample(prompt=t.format(TOPICS[i % len(TOPICS)]) + f" ({i})", response="ok")
        for t in TEMPLATES
        for i in range(n_per_template)
    ]


def test_prompts_of_one_template_share_a_group_and_the_grouping_is_seeded():
    texts = [s.prompt or "" for s in _rows()]
    labels = cluster(texts, 2, seed=0)
    assert labels == cluster(texts, 2, seed=0)  # deterministic
    assert len(set(labels[:12])) == 1 and len(set(labels[12:])) == 1 and labels[0] != labels[12]
    assert set(cluster(["same words"] * 10, 4, seed=3)) == {0}  # identical prompts: one group whatever is asked


def test_check_rows_come_from_groups_the_scoring_rows_do_not_touch():
    rows = _rows()
    used = set(range(12, 24)) | {0, 1}  # scoring used the second template and two rows of the first ... not all
    split = split_rows(rows, used, want=6, seed=0)
    assert len(split.rows) == 6 and not set(split.rows) & used
    assert split.how == "groups" and split.n_groups >= 2
    labels = cluster([s.prompt or "" for s in rows], group_count(len(rows), 6), 0)
    used_groups = {labels[i] for i in range(12, 24)}
    # the groups of the second template hold scoring rows only; the checks are phrased like the first template
    assert all(r < 12 for r in split.rows) and not {labels[r] for r in split.rows} & used_groups
    # scoring rows in the check groups are counted, so the report can say how apart the two are
    assert split.shared == sum(1 for i in used if labels[i] in set(split.groups))


def test_checks_span_several_groups_when_the_file_has_them():
    split = split_rows(_rows(), set(), want=9, seed=1)
    assert len(split.rows) == 9 and split.check_groups >= 3  # at most a third of the checks from one group


def test_one_group_falls_back_to_a_seeded_random_split_and_says_so():
    rows = [Sample(prompt="Tell me a fact.", response=str(i)) for i in range(20)]
    said: list[str] = []
    split = split_rows(rows, set(range(10)), want=5, seed=7, log=said.append, name="facts.jsonl")
    assert split.how == "random" and len(split.rows) == 5 and not set(split.rows) & set(range(10))
    assert split.rows == split_rows(rows, set(range(10)), want=5, seed=7).rows
    assert len(said) == 1 and "facts.jsonl" in said[0] and "one group" in said[0]


def _refs() -> dict[str, Measured]:
    """Two phrasing groups per skill, 10 decisions each; loss 2.0 for the base, 1.0 for the expert in both."""

    def model(loss: float, wins: tuple[int, int]) -> Measured:
        m = Measured()
        for skill in ("reasoning", "domain"):
            m.loss[skill] = loss
            m.by_group[f"loss:{skill}"] = {0: (loss * 50, 50), 1: (loss * 50, 50)}
            m.by_group[f"decide:{skill}"] = {0: (float(wins[0]), 10), 1: (float(wins[1]), 10)}
            m.checks[f"decide:{skill}"] = sum(wins) / 20
        return m

    base, expert = model(2.0, (0, 0)), model(1.0, (10, 10))
    return {"base": base, "reasoning": expert, "domain": expert}


def test_a_skill_kept_in_one_group_and_lost_in_the_other_is_half_by_the_mean_and_lost_by_the_worst_group():
    refs = _refs()
    brittle = Measured()
    for skill in ("reasoning", "domain"):
        brittle.loss[skill] = 1.5
        brittle.by_group[f"loss:{skill}"] = {0: (50.0, 50), 1: (100.0, 50)}  # expert-like, base-like
        brittle.by_group[f"decide:{skill}"] = {0: (10.0, 10), 1: (0.0, 10)}
        brittle.checks[f"decide:{skill}"] = 0.5
    assert kept_shares(brittle, refs, "mean") == {"reasoning": 0.5, "domain": 0.5}
    assert kept_shares(brittle, refs, "worst") == {"reasoning": 0.0, "domain": 0.0}
    assert kept_shares(brittle, refs, "spread") == {"reasoning": 0.0, "domain": 0.0}  # mean 0.5 less spread 0.5
    for objective in ("mean", "worst", "spread"):  # the references themselves: 1 and 0 in every group
        assert kept_shares(refs["reasoning"], refs, objective)["reasoning"] == pytest.approx(1.0)
        assert kept_shares(refs["base"], refs, objective)["domain"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="objective 'best'"):
        kept_shares(brittle, refs, "best")


def test_groups_with_too_few_decisions_or_too_little_gain_do_not_decide():
    refs = _refs()
    for r in refs.values():  # group 1: one decision, and the expert no better than the base there
        for skill in ("reasoning", "domain"):
            won = r.by_group[f"decide:{skill}"][1][0] / 10
            r.by_group[f"decide:{skill}"][1] = (won, 1)
            r.by_group[f"loss:{skill}"][1] = (100.0, 50)
    m = Measured()
    for skill in ("reasoning", "domain"):
        m.loss[skill] = 1.5
        m.by_group[f"loss:{skill}"] = {0: (50.0, 50), 1: (150.0, 50)}
        m.by_group[f"decide:{skill}"] = {0: (10.0, 10), 1: (0.0, 1)}
    assert kept_shares(m, refs, "worst") == {"reasoning": 1.0, "domain": 1.0}  # group 1 has nothing to say


def test_the_earlier_rule_is_the_last_unused_rows_with_their_groups_recorded():
    rows = _rows()
    used = set(range(0, 24, 2))
    split = split_rows(rows, used, want=5, seed=0, by_group=False)
    assert split.how == "last" and split.rows == [15, 17, 19, 21, 23]
    labels = cluster([s.prompt or "" for s in rows], group_count(len(rows), 5), 0)
    assert split.groups == [labels[i] for i in split.rows]
    assert split.shared == sum(1 for i in used if labels[i] in set(split.groups))


def test_a_file_bigger_than_the_fit_sample_is_grouped_in_chunks(monkeypatch):
    from reasonany_gui.engine.measure import clusters

    texts = [s.prompt or "" for s in _rows()] + ["same words"] * 6
    whole = cluster(texts, 3, seed=0)
    monkeypatch.setattr(clusters, "FIT_ROWS", 10)  # fitted on 10 of 30 rows, assigned 10 at a time
    chunked = cluster(texts, 3, seed=0)
    assert len(chunked) == len(texts) and len(set(chunked[-6:])) == 1
    assert len(set(chunked[:12])) == 1 and len(set(chunked[12:24])) == 1 and chunked[0] != chunked[12]
    assert len(set(whole[:12])) == 1 and whole[0] != whole[12]


def test_the_tuner_refuses_an_unknown_holdout_or_objective_in_words():
    from reasonany_gui.engine.core.errors import InputError
    from reasonany_gui.engine.measure.tune import Tuner

    with pytest.raises(InputError, match="objective = 'best': use one of mean, worst, spread"):
        Tuner(None, objective="best")  # type: ignore[arg-type]  # refused before the pipeline is read
    with pytest.raises(InputError, match="holdout = 'random': use groups .* or last"):
        Tuner(None, holdout="random")  # type: ignore[arg-type]
