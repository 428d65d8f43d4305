"""The one rule for "did the merge keep this skill?" (engine/measure/verdicts.py): thresholds at their edges,
the perplexity fallback, and the evaluation's sentences using the same rule."""

from reasonany_gui.engine.measure import verdicts
from reasonany_gui.engine.measure.evaluate import verdict_lines
from reasonany_gui.engine.measure.verdicts import kept_level, kept_verdict, perplexity_verdict


def test_kept_share_thresholds_at_their_edges():
    assert (verdicts.KEPT_FROM, verdicts.PARTLY_FROM) == (0.8, 0.3)
    assert [kept_level(v) for v in (1.2, 0.8, 0.7999, 0.3, 0.2999, 0.0, -0.5)] == [
        "kept",
        "kept",
        "partly",
        "partly",
        "lost",
        "lost",
        "lost",
    ]


def test_kept_verdict_words():
    assert kept_verdict(0.97, "reasoning") == ("kept", "keeps 97 % of the reasoning model's gain over the base")
    assert kept_verdict(0.5, "domain")[0] == "partly"
    verdict, words = kept_verdict(-0.16, "domain")
    assert verdict == "lost" and "keeps none of the domain model's gain" in words and "(-16 %)" in words


def test_perplexity_verdict():
    ppl = {
        "r": {"merged": 3.3, "reasoning": 3.0, "base": 5.0},  # 3.3 = 3.0 × 1.10: still as good as the expert
        "r2": {"merged": 3.31, "reasoning": 3.0, "base": 5.0},
        "x": {"merged": 6.0, "domain": 3.0, "base": 5.0},
        "same": {"merged": 4.0, "domain": 5.0, "base": 5.0},
        "nan": {"merged": float("nan"), "domain": 3.0, "base": 5.0},
    }
    assert perplexity_verdict(ppl, "r", "reasoning")[0] == "kept"
    assert perplexity_verdict(ppl, "r2", "reasoning") == (
        "partly",
        "between the base and the reasoning model (3.31; reasoning 3.00, base 5.00)",
    )
    assert perplexity_verdict(ppl, "x", "domain")[0] == "lost"
    assert perplexity_verdict(ppl, "same", "domain")[0] == "unclear"  # the expert itself is no better
    assert perplexity_verdict(ppl, "nan", "domain") == ("unclear", "not measured")
    assert perplexity_verdict({}, "r", "reasoning") == ("unclear", "not measured")


def test_evaluation_sentences_follow_the_same_thresholds():
    lines = verdict_lines({"merged": {"reasoning": 0.8, "domain": 0.2999}})
    assert lines[0].startswith("The merged model kept the reasoning skill: it keeps 80 %")
    assert lines[1].startswith("The merged model lost the domain skill")
    assert verdict_lines({"merged": {"domain": 0.3}})[0].startswith("The merged model partly kept the domain skill")
