"""Calibration data: every format, every bad input, seeded choice, truncation, response-only masks, presets.

The demo tokenizer is byte-level (one token per byte of ASCII text, no BOS), so token counts below are exact
character counts and every expected number can be written down by hand.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.data import calibration as cal
from reasonany_gui.engine.data import presets
from reasonany_gui.engine.data.calibration import Sample
from reasonany_gui.engine.data.demo import make_tokenizer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def plain_tok():
    """The same tokenizer without a chat template: exercises the plain-text renderings."""
    t = make_tokenizer()
    t.chat_template = None
    return t


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def decode(tok, ts) -> str:
    return tok.decode(ts.input_ids[0].tolist())


# ============================================================================ formats
PAIR = Sample(prompt="What is 2+2?", response="4")


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "What is 2+2?", "response": "4"},
        {"question": "What is 2+2?", "answer": "4"},
        {"instruction": "What is 2+2?", "output": "4"},
        {"input": "What is 2+2?", "output": "4"},
        {"prompt": "What is 2+2?", "response": 4},  # numbers become text
    ],
)
def test_prompt_response_aliases(tmp_path, row):
    assert cal.load_samples(str(write_jsonl(tmp_path / "d.jsonl", [row]))) == [PAIR]


def test_alpaca_instruction_with_input(tmp_path):
    row = {"instruction": "Add the numbers.", "input": "2 and 2", "output": "4"}
    got = cal.load_samples(str(write_jsonl(tmp_path / "a.jsonl", [row])))
    assert got == [Sample(prompt="Add the numbers.\n\n2 and 2", response="4")]


def test_text_and_hh_rlhf_chosen(tmp_path):
    rows = [{"text": "plain text"}, {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "go away"}]
    got = cal.load_samples(str(write_jsonl(tmp_path / "t.jsonl", rows)))
    assert got == [Sample(text="plain text"), Sample(text="\n\nHuman: hi\n\nAssistant: hello")]


def test_chat_messages_and_sharegpt(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ]
        },
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": "Hello"},
            ]
        },
    ]
    got = cal.load_samples(str(write_jsonl(tmp_path / "c.jsonl", rows)))
    hi_hello = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert got[0].messages == [{"role": "system", "content": "Be brief."}] + hi_hello
    assert got[1].messages == hi_hello
    assert got[2].messages == hi_hello
    assert [s.kind for s in got] == ["chat", "chat", "chat"]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda rows: rows,
        lambda rows: {"data": rows},
        lambda rows: {"samples": rows},
        lambda rows: {"rows": rows, "meta": 1},
    ],
)
def test_json_list_or_wrapped(tmp_path, wrap):
    rows = [{"text": "one"}, {"prompt": "What is 2+2?", "response": "4"}]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(wrap(rows)), encoding="utf-8")
    assert cal.load_samples(str(path)) == [Sample(text="one"), PAIR]


def test_csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,response\n"What is 2+2?",4\n"multi\nline, with comma",ok\n', encoding="utf-8")
    assert cal.load_samples(str(path)) == [PAIR, Sample(prompt="multi\nline, with comma", response="ok")]


def test_csv_messages_column_as_json(tmp_path):
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    path = tmp_path / "m.csv"
    path.write_text("messages\n" + '"' + json.dumps(msgs).replace('"', '""') + '"\n', encoding="utf-8")
    assert cal.load_samples(str(path)) == [Sample(messages=msgs)]


def test_txt_blocks(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("first sample\nstill first\n\n  \n\nsecond\n\n\nthird  \n", encoding="utf-8")
    assert cal.load_samples(str(path)) == [
        Sample(text="first sample\nstill first"),
        Sample(text="second"),
        Sample(text="third"),
    ]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    pq.write_table(pa.Table.from_pylist([{"messages": msgs}, {"messages": msgs}]), tmp_path / "c.parquet")
    pq.write_table(pa.Table.from_pylist([{"question": "What is 2+2?", "answer": "4"}]), tmp_path / "p.parquet")
    assert cal.load_samples(str(tmp_path / "c.parquet")) == [Sample(messages=msgs)] * 2
    assert cal.load_samples(str(tmp_path / "p.parquet")) == [PAIR]


def test_utf8_bom_and_blank_lines_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"text": "caf\xc3\xa9"}\n\n{"text": "b"}\n')
    assert cal.load_samples(str(path)) == [Sample(text="café"), Sample(text="b")]


def test_empty_records_are_skipped_with_a_warning(tmp_path, tok):
    path = write_jsonl(
        tmp_path / "gaps.jsonl",
        [{"text": "hello there"}, {"text": ""}, {"text": None}, {"prompt": "q", "response": "  "}, {"other": 1}],
    )
    assert cal.load_samples(str(path)) == [Sample(text="hello there")]
    cs = cal.prepare(str(path), tok, samples=1, max_length=64, seed=0)
    assert cs.available == 1
    assert any("4 empty or unrecognised" in w for w in cs.warnings)


# ============================================================================ bad inputs
def bad(tmp_path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def raises_about(path: Path, *fragments: str) -> str:
    with pytest.raises(InputError) as info:
        cal.load_samples(str(path))
    msg = str(info.value)
    assert path.name in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_missing_file(tmp_path):
    raises_about(tmp_path / "nope.jsonl", "does not exist")


def test_missing_file_hints_builtin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="builtin:finance"):
        cal.load_samples("finance")


def test_folder_is_not_a_file(tmp_path):
    (tmp_path / "data.jsonl").mkdir()
    raises_about(tmp_path / "data.jsonl", "is a folder")


def test_empty_and_blank_files(tmp_path):
    raises_about(bad(tmp_path, "e.jsonl", b""), "is empty")
    raises_about(bad(tmp_path, "w.txt", "\n \n\t\n"), "empty")
    raises_about(bad(tmp_path, "l.json", "[]"), "no records")


def test_unknown_extension(tmp_path):
    raises_about(bad(tmp_path, "d.xlsx", "x"), "'.xlsx'", ".jsonl", ".parquet")


def test_no_usable_field_lists_found_and_accepted(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", [{"title": "a", "body": "b"}, {"title": "c", "summary": "d"}])
    msg = raises_about(path, "title, body, summary", "prompt + response", "messages")
    assert "question + answer" in msg


def test_not_utf8_says_where(tmp_path):
    raises_about(bad(tmp_path, "latin.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n'), "UTF-8", "line 2")


def test_malformed_json_line_says_which(tmp_path):
    raises_about(bad(tmp_path, "m.jsonl", '{"text": "a"}\n\n{"text": "b"\n'), "line 3", "not valid JSON")


def test_malformed_json_document(tmp_path):
    raises_about(bad(tmp_path, "m.json", '[{"text": "a"},\n {"text": }]'), "line 2", "not valid JSON")
    raises_about(bad(tmp_path, "o.json", '{"items": [{"text": "a"}]}'), '"data"', "items")
    raises_about(bad(tmp_path, "s.json", '"just a string"'), "JSON list")


def test_bad_messages(tmp_path):
    raises_about(
        write_jsonl(tmp_path / "r.jsonl", [{"messages": [{"role": "narrator", "content": "x"}]}]),
        "record 1",
        "message 1",
        "'narrator'",
    )
    raises_about(write_jsonl(tmp_path / "n.jsonl", [{"messages": {"role": "user"}}]), "record 1", "must be a list")


def test_csv_without_header(tmp_path):
    # a single line is read as the header: say so, with the columns it found
    raises_about(bad(tmp_path, "h.csv", "just one line\n"), "no data rows", "columns: just one line")
    # samples without a header: the first sample becomes the column name, which the message shows
    raises_about(bad(tmp_path, "g.csv", "first sample\nsecond sample\n"), "Found: first sample", "Accepted: text")


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    path = bad(tmp_path, "d.parquet", b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # makes `import pyarrow.parquet` fail
    raises_about(path, "pip install pyarrow")


def test_corrupt_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    raises_about(bad(tmp_path, "d.parquet", b"PAR1 this is not parquet"), "not a readable Parquet file")


def test_unknown_builtin():
    with pytest.raises(InputError, match="builtin:reasoning, builtin:safety"):
        presets.resolve_spec("builtin:poetry")
    with pytest.raises(InputError, match="No calibration data"):
        presets.resolve_spec("  ")


# ============================================================================ choice, truncation, drops
@pytest.fixture
def numbered(tmp_path) -> Path:
    return write_jsonl(tmp_path / "n.jsonl", [{"text": f"sample number {i:02d}"} for i in range(20)])


def chosen_numbers(tok, cs) -> list[int]:
    return [int(decode(tok, s).split()[-1]) for s in cs.samples]


def test_seeded_choice_is_reproducible_sorted_and_seed_dependent(tok, numbered):
    a = cal.prepare(str(numbered), tok, samples=5, max_length=64, seed=3)
    b = cal.prepare(str(numbered), tok, samples=5, max_length=64, seed=3)
    c = cal.prepare(str(numbered), tok, samples=5, max_length=64, seed=4)
    assert chosen_numbers(tok, a) == sorted(random.Random(3).sample(range(20), 5))
    assert chosen_numbers(tok, a) == chosen_numbers(tok, b)
    assert chosen_numbers(tok, c) == sorted(random.Random(4).sample(range(20), 5))
    assert chosen_numbers(tok, a) != chosen_numbers(tok, c)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert (a.available, a.requested, a.used, a.truncated, a.dropped) == (20, 5, 5, 0, 0)
    assert a.tokens == 5 * (len("sample number 00") - 1)
    assert a.warnings == []


def test_fewer_samples_than_asked_uses_all_with_warning(tok, numbered):
    cs = cal.prepare(str(numbered), tok, samples=100, max_length=64, seed=0)
    assert (cs.available, cs.requested, cs.used) == (20, 100, 20)
    assert chosen_numbers(tok, cs) == list(range(20))
    assert cs.warnings == ["Only 20 samples in n.jsonl, 100 asked: using 20."]


def test_truncation_and_drops_are_counted(tmp_path, tok):
    rows = [{"text": "x" * 10}, {"text": "y" * 50}, {"text": "z"}, {"text": "w" * 100}]
    cs = cal.prepare(str(write_jsonl(tmp_path / "t.jsonl", rows)), tok, samples=4, max_length=40, seed=0)
    assert [tuple(s.input_ids.shape) for s in cs.samples] == [(1, 10), (1, 40), (1, 40)]
    assert [s.truncated for s in cs.samples] == [False, True, True]
    assert (cs.used, cs.truncated, cs.dropped) == (3, 2, 1)
    assert cs.tokens == 9 + 39 + 39
    assert decode(tok, cs.samples[1]) == "y" * 40
    assert all(s.input_ids.dtype == s.labels.dtype == cal.torch.long for s in cs.samples)
    assert any("2 of 4 samples were longer than max_length = 40" in w for w in cs.warnings)
    assert any("1 sample(s) were dropped" in w for w in cs.warnings)


def test_all_dropped_is_an_input_error(tmp_path, tok):
    path = write_jsonl(tmp_path / "short.jsonl", [{"text": "a"}, {"text": "b"}])
    with pytest.raises(InputError, match="short.jsonl"):
        cal.prepare(str(path), tok, samples=2, max_length=16, seed=0)


def test_fingerprint_covers_file_and_settings(tmp_path, tok, numbered):
    base = cal.prepare(str(numbered), tok, samples=5, max_length=64, seed=0).fingerprint
    for kw in ({"max_length": 32}, {"samples": 6}, {"response_only": True}):
        args = {"samples": 5, "max_length": 64, "seed": 0, **kw}
        assert cal.prepare(str(numbered), tok, **args).fingerprint != base
    other_tok = make_tokenizer()
    other_tok.chat_template = "{{ messages[0]['content'] }}"
    assert cal.prepare(str(numbered), other_tok, samples=5, max_length=64, seed=0).fingerprint != base
    numbered.write_text(numbered.read_text() + '{"text": "one more"}\n')
    assert cal.prepare(str(numbered), tok, samples=5, max_length=64, seed=0).fingerprint != base
    assert cal.file_fingerprint(numbered) == hashlib.sha256(numbered.read_bytes()).hexdigest()


# ============================================================================ response-only masks
CHAT = [{"role": "user", "content": "What is 6 times 7?"}, {"role": "assistant", "content": "6 x 7 = 42."}]


def test_response_only_masks_exactly_the_templated_prompt(tmp_path, tok):
    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": CHAT}])
    full = tok.apply_chat_template(CHAT, tokenize=False)
    head = tok.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True)
    ids = tok(full, add_special_tokens=False)["input_ids"]
    n_head = len(tok(head, add_special_tokens=False)["input_ids"])
    assert full.startswith(head) and 0 < n_head < len(ids)

    on = cal.prepare(str(path), tok, samples=1, max_length=512, seed=0, response_only=True).samples[0]
    off = cal.prepare(str(path), tok, samples=1, max_length=512, seed=0).samples[0]
    assert on.input_ids[0].tolist() == off.input_ids[0].tolist() == ids
    assert off.labels[0].tolist() == ids
    assert on.labels[0].tolist() == [-100] * n_head + ids[n_head:]
    # the scored part reads back as the reply and the template's end-of-turn tokens
    assert tok.decode(ids[n_head:]) == "6 x 7 = 42.<|im_end|>\n"
    assert on.scored_tokens == len(ids) - n_head


def test_response_only_scores_only_the_last_assistant_turn(tmp_path, tok):
    msgs = CHAT + [{"role": "user", "content": "And 6 times 8?"}, {"role": "assistant", "content": "48."}]
    path = write_jsonl(tmp_path / "m.jsonl", [{"messages": msgs}])
    cs = cal.prepare(str(path), tok, samples=1, max_length=512, seed=0, response_only=True)
    labels = cs.samples[0].labels[0].tolist()
    scored = [t for t in labels if t != -100]
    assert tok.decode(scored) == "48.<|im_end|>\n"
    assert labels[: len(labels) - len(scored)] == [-100] * (len(labels) - len(scored))
    assert cs.tokens == len(scored)


def test_response_only_pair_without_template(tmp_path, plain_tok):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "What is 2+2?", "response": "It is 4."}])
    ts = cal.prepare(str(path), plain_tok, samples=1, max_length=512, seed=0, response_only=True).samples[0]
    n_head = len(plain_tok("What is 2+2?\n\n")["input_ids"])
    ids = plain_tok("What is 2+2?\n\nIt is 4.")["input_ids"]
    assert ts.input_ids[0].tolist() == ids
    assert ts.labels[0].tolist() == [-100] * n_head + ids[n_head:]


def test_chat_without_template_uses_role_lines(tmp_path, plain_tok):
    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": CHAT}])
    ts = cal.prepare(str(path), plain_tok, samples=1, max_length=512, seed=0, response_only=True).samples[0]
    assert decode(plain_tok, ts) == "user: What is 6 times 7?\nassistant: 6 x 7 = 42."
    scored = [t for t in ts.labels[0].tolist() if t != -100]
    assert plain_tok.decode(scored) == " 6 x 7 = 42."


def test_response_only_has_no_effect_on_text_samples(tok, numbered):
    on = cal.prepare(str(numbered), tok, samples=3, max_length=64, seed=1, response_only=True)
    off = cal.prepare(str(numbered), tok, samples=3, max_length=64, seed=1)
    assert [s.labels.tolist() for s in on.samples] == [s.labels.tolist() for s in off.samples]
    assert on.tokens == off.tokens == 3 * 15


def test_response_cut_off_by_max_length_is_dropped(tmp_path, tok):
    rows = [{"prompt": "p" * 60, "response": "short"}, {"prompt": "q", "response": "fine answer"}]
    cs = cal.prepare(
        str(write_jsonl(tmp_path / "long.jsonl", rows)), tok, samples=2, max_length=40, seed=0, response_only=True
    )
    assert (cs.used, cs.dropped, cs.truncated) == (1, 1, 0)
    assert any("cut off the whole response" in w for w in cs.warnings)


def test_offsets_fallback_gives_the_same_mask(tmp_path, tok):
    """Slow tokenizers have no offset mapping: the prompt is then tokenized on its own."""

    class NoOffsets:
        def __init__(self, inner):
            self.inner = inner
            self.chat_template = inner.chat_template

        def __call__(self, text, **kw):
            if kw.get("return_offsets_mapping"):
                raise NotImplementedError("no offsets")
            return self.inner(text, **kw)

        def __len__(self):
            return len(self.inner)

        def apply_chat_template(self, *a, **kw):
            return self.inner.apply_chat_template(*a, **kw)

    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": CHAT}])
    fast = cal.prepare(str(path), tok, samples=1, max_length=512, seed=0, response_only=True)
    slow = cal.prepare(str(path), NoOffsets(tok), samples=1, max_length=512, seed=0, response_only=True)
    assert slow.samples[0].labels.tolist() == fast.samples[0].labels.tolist()


def test_template_that_rewrites_replies_warns_and_uses_common_prefix(tmp_path):
    """DeepSeek-R1-style templates drop <think> from replies and add a generation prompt the reply lacks."""
    t = make_tokenizer()
    t.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}<U>{{ m['content'] }}"
        "{% else %}<A>{{ m['content'].split('</think>')[-1] }}<E>{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<A><think>\n{% endif %}"
    )
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello"}]
    cs = cal.prepare(
        str(write_jsonl(tmp_path / "r1.jsonl", [{"messages": msgs}])),
        t,
        samples=1,
        max_length=512,
        seed=0,
        response_only=True,
    )
    assert decode(t, cs.samples[0]) == "<U>Hi<A>Hello<E>"
    scored = [x for x in cs.samples[0].labels[0].tolist() if x != -100]
    assert t.decode(scored) == "Hello<E>"
    assert any("removing <think>" in w for w in cs.warnings)


def test_template_errors_become_input_errors(tmp_path):
    t = make_tokenizer()
    t.chat_template = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}x"
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    with pytest.raises(InputError, match="no system role"):
        cal.prepare(str(write_jsonl(tmp_path / "s.jsonl", [{"messages": msgs}])), t, samples=1, max_length=64, seed=0)


# ============================================================================ preview
def test_preview(tmp_path, tok):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "hello"}, {"messages": CHAT}, {"text": "third"}])
    assert cal.preview(str(path), None, n=2) == [
        ("hello", None),
        ("user: What is 6 times 7?\nassistant: 6 x 7 = 42.", None),
    ]
    got = cal.preview(str(path), tok, n=5)
    full = tok.apply_chat_template(CHAT, tokenize=False)
    assert got == [("hello", 5), (full, len(tok(full, add_special_tokens=False)["input_ids"])), ("third", 5)]


# ============================================================================ presets
@pytest.mark.parametrize("name", ["reasoning", "safety", "biomedicine", "finance"])
def test_presets_load_and_fit_the_schema(name, tok):
    preset = presets.PRESETS[name]
    assert preset.name == name and preset.role == ("reasoning" if name == "reasoning" else "domain")
    assert preset.title and preset.description and "\n" not in preset.description
    assert presets.resolve_spec(f"builtin:{name}") == preset.path
    assert preset.path.stat().st_size < 300_000
    rows = [json.loads(line) for line in preset.path.read_text(encoding="utf-8").splitlines()]
    samples = cal.load_samples(f"builtin:{name}")
    assert len(samples) == len(rows) >= 120
    for row, sample in zip(rows, samples, strict=True):
        assert list(row) == ["messages"]
        assert [m["role"] for m in sample.messages] == ["user", "assistant"]
        user, reply = (m["content"] for m in sample.messages)
        assert user.strip() == user and reply.strip() == reply and len(user) >= 10 and len(reply) >= 40
    assert len({s.messages[0]["content"] for s in samples}) >= 0.95 * len(samples)  # varied, not copies
    cs = cal.prepare(f"builtin:{name}", tok, samples=100, max_length=4096, seed=0, response_only=True)
    assert (cs.used, cs.dropped, cs.truncated) == (100, 0, 0)


def test_builtin_prefix_is_case_and_space_tolerant():
    assert presets.resolve_spec(" BUILTIN:Finance ") == presets.PRESETS["finance"].path


def test_committed_presets_match_the_generator():
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_calibration.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_reasoning_answers_are_right():
    """Spot-check the generator's arithmetic: every expression template's final answer recomputes."""
    checked = solved = 0
    for sample in cal.load_samples("builtin:reasoning"):
        q, a = (m["content"] for m in sample.messages)
        if "Compute " in q or ("What is " in q and "×" in q and "−" in q):
            expr = q.split("Compute ")[-1].split("What is ")[-1].rstrip(".?").replace("×", "*").replace("−", "-")
            assert a.endswith(f"Final answer: {eval(expr, {'__builtins__': {}})}"), (q, a)  # noqa: S307
            checked += 1
        if q.split(". ")[-1].startswith(("Solve for x:", "Find x if")):  # the answer must satisfy the equation
            x = int(a.rsplit("x = ", 1)[1])
            sides = q.split(": ", 1)[-1].split("Find x if ")[-1].rstrip(".").replace("−", "-").split(" = ")
            lhs, rhs = (
                eval(side.replace("x", f"*({x})").lstrip("*"), {"__builtins__": {}})  # noqa: S307
                for side in sides
            )
            assert lhs == rhs, (q, a)
            solved += 1
    assert checked >= 5 and solved >= 5
