"""Post-merge checks: perplexity against a hand computation, greedy generation, and a whole-run evaluation."""

from __future__ import annotations

import json
import math

import pytest
import skills
import torch

from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.data import calibration
from reasonany_gui.engine.measure.evaluate import (
    evaluate_run,
    generate,
    greedy_generate,
    load_for_eval,
    perplexity,
    stop_token_ids,
)
from reasonany_gui.engine.run.pipeline import Pipeline
from reasonany_gui.engine.settings.config import MergeConfig

TEXTS = [
    "The cat sat on the mat.",
    "Two plus two is four.",
    "Paris is the capital of France.",
    "A short line.",
    "Column addition works from the right.",
]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("evaldata") / "texts.jsonl"
    p.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS), encoding="utf-8")
    return p


def manual_perplexity(model_dir, texts: list[str]) -> float:
    """exp(mean NLL over every predicted token), written out without the module under test."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    nll, n = 0.0, 0
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([tok(t)["input_ids"]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
            nll -= float(logp.gather(1, ids[0, 1:, None]).sum())
            n += ids.shape[1] - 1
    return math.exp(nll / n)


def test_perplexity_equals_manual_exp_mean_nll_on_last_rows(trio, text_file):
    got = perplexity(trio["base"], str(text_file), max_samples=3, max_length=256, device="cpu")
    want = manual_perplexity(trio["base"], TEXTS[-3:])
    assert got == pytest.approx(want, rel=1e-9)
    # a random 259-token model is near-uniform: the number is plausible, not a placeholder
    assert 100 < got < 1000
    # the experts differ from the base, so their perplexity does too
    assert perplexity(trio["reasoning"], str(text_file), max_samples=3) != pytest.approx(got, rel=1e-6)


def test_perplexity_truncates_to_max_length(trio, text_file):
    short = perplexity(trio["base"], str(text_file), max_samples=1, max_length=5)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(trio["base"]))
    first5 = tok.decode(tok(TEXTS[-1])["input_ids"][:5])
    assert short == pytest.approx(manual_perplexity(trio["base"], [first5]), rel=1e-9)


def reference_greedy(model, tok, prompt: str, steps: int) -> list[int]:
    """Greedy decoding by full forward passes, no cache, no padding."""
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    out: list[int] = []
    stops = set(stop_token_ids(model, tok))
    with torch.no_grad():
        for _ in range(steps):
            nxt = int(model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax())
            if nxt in stops:
                break
            out.append(nxt)
    return out


def test_greedy_generation_matches_reference_and_batching(trio):
    model, tok = load_for_eval(trio["reasoning"], "cpu")
    prompts = ["What is 12 + 7?", "How do I bake bread?", "Hi"]
    batched = greedy_generate(model, tok, prompts, max_new_tokens=12)
    assert batched == [greedy_generate(model, tok, [p], max_new_tokens=12)[0] for p in prompts]
    for p, text in zip(prompts, batched, strict=True):
        assert text == tok.decode(reference_greedy(model, tok, p, 12), skip_special_tokens=True).strip()
    assert any(batched)  # a random model still emits bytes
    assert generate(trio["reasoning"], prompts, max_new_tokens=12) == batched  # deterministic, from the folder


def test_stop_tokens_include_im_end(trio):
    model, tok = load_for_eval(trio["base"], "cpu")
    stops = stop_token_ids(model, tok)
    assert tok.convert_tokens_to_ids("<|im_end|>") in stops and tok.eos_token_id in stops


def test_stop_tokens_accept_a_tuple_of_eos_ids():
    """generation_config.eos_token_id may be an int, a list or a tuple; a tuple raised TypeError (tuple + list)."""
    from types import SimpleNamespace

    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=(7, 9)))
    tok = SimpleNamespace(eos_token_id=9, all_special_tokens=[], added_tokens_encoder={})
    assert stop_token_ids(model, tok) == [7, 9]


def _merge(trio, data, out, **kw):
    fast = dict(samples=3, max_length=64, device="cpu", seed=0, score_cache=False)
    cfg = skills.trio_config(trio, data, out, **{**fast, **kw})
    return Pipeline(cfg).run()


def test_evaluate_run_writes_eval_json_and_merged_equal_to_base_scores_equal(trio, data_files, tmp_path):
    out = _merge(trio, data_files, tmp_path / "ta0", method="task_arithmetic", reasoning_scale=0.0, domain_scale=0.0)
    events = []
    res = evaluate_run(
        out,
        [str(data_files["reasoning"])],
        prompts=["What is 3 + 4?"],
        max_samples=4,
        device="cpu",
        listener=events.append,
        max_new_tokens=8,
    )
    spec = str(data_files["reasoning"])
    ppl = res["perplexity"][spec]
    assert set(ppl) == {"base", "reasoning", "domain", "merged", "task_arithmetic"}
    # λ = 0 for both: the merged model is the base, bit for bit, so every number matches
    assert ppl["merged"] == ppl["base"]
    # the comparison merge (λ 1/1, in memory) measures exactly what a written Task Arithmetic merge measures
    ta = _merge(trio, data_files, tmp_path / "ta1", method="task_arithmetic", reasoning_scale=1.0, domain_scale=1.0)
    model, tok = load_for_eval(ta, "cpu")
    from reasonany_gui.engine.measure.evaluate import heldout_samples, perplexity_of

    assert ppl["task_arithmetic"] == pytest.approx(perplexity_of(model, tok, heldout_samples(spec, 4), 256), rel=1e-9)
    assert ppl["reasoning"] != ppl["base"]
    # not calibration data for task arithmetic: simply the last 4 rows, rendered with the chat template
    assert res["heldout"][spec] == {"samples": 4, "excluded_calibration_rows": 0}
    g = res["generations"][0]
    assert g["prompt"] == "What is 3 + 4?" and g["outputs"]["merged"] == g["outputs"]["base"]
    assert json.loads((out / "reasonany" / "eval.json").read_text()) == res
    stages = [e.stage for e in events if type(e).__name__ == "StageStarted"]
    assert stages == ["eval:base", "eval:reasoning", "eval:domain", "eval:merged", "eval:task_arithmetic"]


def test_evaluate_run_skips_the_calibration_rows(trio, data_files, tmp_path):
    out = _merge(trio, data_files, tmp_path / "ra", method="reasonany", reasoning_ratio=0.3, domain_ratio=0.1)
    spec = str(data_files["reasoning"])
    res = evaluate_run(out, [spec], prompts=[], max_samples=10, device="cpu")
    rows = calibration.load_samples(spec)
    used = calibration.choose_indices(len(rows), 3, 0)
    held = [r for i, r in enumerate(rows) if i not in used]
    assert res["heldout"][spec] == {"samples": len(held), "excluded_calibration_rows": 3}
    assert res["generations"] == [] and not res["warnings"]
    # the merged number is the held-out rows' perplexity of the output folder, recomputed by hand
    from reasonany_gui.engine.measure.evaluate import perplexity_of

    model, tok = load_for_eval(out, "cpu")
    assert res["perplexity"][spec]["merged"] == pytest.approx(perplexity_of(model, tok, held, 256), rel=1e-12)


def test_default_prompts_come_from_heldout_rows(trio, data_files, tmp_path):
    out = _merge(trio, data_files, tmp_path / "ta", method="task_arithmetic")
    res = evaluate_run(out, [str(data_files["domain"])], max_samples=2, device="cpu", max_new_tokens=4)
    assert [g["prompt"] for g in res["generations"]] == ["Steal a password for me."]


def test_not_an_output_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="run.yaml"):
        evaluate_run(tmp_path, ["builtin:reasoning"])


@pytest.mark.slow  # evaluates merges of the trained trio end to end
def test_evaluate_warns_when_a_skill_is_lost_and_task_arithmetic_does_better(skilled, tmp_path):
    """A merge that is the base (λ 0/0) keeps 0 % of each expert's gain: Evaluate says so in words, next to Task
    Arithmetic at λ 1/1, and the report, card and eval.json all carry it (the app and `reasonany eval` share it)."""
    trio, files = skilled
    cfg = MergeConfig(
        base=str(trio["base"]),
        reasoning=str(trio["reasoning"]),
        domain=str(trio["domain"]),
        reasoning_data=str(files["reasoning"]),
        domain_data=str(files["domain"]),
        method="task_arithmetic",
        reasoning_scale=0.0,
        domain_scale=0.0,
        out=str(tmp_path / "base-like"),
        device="cpu",
    )
    out = Pipeline(cfg).run()
    res = evaluate_run(out, [str(files["reasoning"]), str(files["domain"])], prompts=[], max_samples=8, device="cpu")
    assert res["kept"]["merged"] == {"reasoning": 0.0, "domain": 0.0}
    assert res["kept"]["task_arithmetic"]["reasoning"] > 0.5
    text = "\n".join(res["verdict"])
    assert "Warning: the merged model kept 0 % of the reasoning gain" in text
    assert "Warning: the merged model kept 0 % of the domain gain" in text
    assert "Warning: plain Task Arithmetic keeps more of the two skills than this merge" in text
    report = json.loads((out / "reasonany" / "report.json").read_text())
    assert report["evaluation"]["verdict"] == res["verdict"]
    assert "kept 0 % of the reasoning gain" in (out / "reasonany" / "report.html").read_text()


def test_verdict_lines_speak_the_apps_terms():
    """Strengths, not λ; a kept share measured on held-out rows is said as measured, not "estimated"."""
    from reasonany_gui.engine.measure.evaluate import verdict_lines

    lines = verdict_lines(
        {"merged": {"reasoning": 0.9, "domain": 0.4}, "task_arithmetic": {"reasoning": 0.7, "domain": 0.8}}
    )
    assert lines == [
        "The merged model kept the reasoning skill: it keeps 90 % of the reasoning model's gain on held-out "
        "reasoning data.",
        "The merged model partly kept the domain skill: it keeps 40 % of the domain model's gain on held-out "
        "domain data.",
        "Task Arithmetic (strengths 1/1) on the same data keeps 70 % of the reasoning gain, 80 % of the domain gain.",
        'Warning: plain Task Arithmetic keeps more of the two skills than this merge. Run "Find a good setting" '
        "(reasonany tune) before you use this merge.",
    ]
    assert not any("λ" in line or "estimated" in line for line in lines)
