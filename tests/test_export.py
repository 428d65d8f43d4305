"""GGUF export: merges of the tiny Llama and Qwen2 trios and of the shipped demo, written as F16 and Q8_0 and loaded
back with transformers' GGUF loader; logits, greedy replies and the tokenizer (renamed `<think>` tokens, chat
template) must match the safetensors merge. Also: refusals before any work, cancel leaves no file, the Modelfile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import skills
import torch

from reasonany_gui.cli import main
from reasonany_gui.engine.core.errors import CancelledError, InputError
from reasonany_gui.engine.core.events import CancelToken, Progress, StageFinished, StageStarted
from reasonany_gui.engine.output import gguf
from reasonany_gui.engine.workflows.export import export_gguf

#: the largest logit difference allowed, as a share of the largest logit. F16 rounds each weight to 11 bits
#: (measured: 0 for the float16/bfloat16 merges, 0.04 % for the float32 Qwen2 one, up to 0.21 % for the float32
#: random models of the other families, whose logits are small); Q8_0 rounds to 1/127 of each
#: 32-weight block's largest (measured 0.4 % Llama, 1.0 % Qwen2, 3.7 % on the 0.85 M demo, whose few wide layers
#: add up the most rounding): twice the largest measured, so a wrong scale or permutation (errors of 100 %) fails
TOLERANCE = {"f16": 0.005, "q8_0": 0.075}
THINK = ("<think>", "</think>")


def chat(tok, user: str) -> str:
    return tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)


def compare(out: Path, type_name: str, prompt: str, extra_text: str = "") -> dict:
    """Export `out` to `type_name`, load both forms, and return what the tests assert on."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    done = export_gguf(out, type_name)
    ref = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    back = AutoModelForCausalLM.from_pretrained(out, gguf_file=done.gguf.name, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(out)
    tok_back = AutoTokenizer.from_pretrained(out, gguf_file=done.gguf.name)
    ids = tok(chat(tok, prompt), return_tensors="pt").input_ids
    text = chat(tok, prompt) + extra_text  # the tokenizer round trip: the template's and the reasoning tokens
    with torch.no_grad():
        ref_logits, back_logits = ref(ids).logits, back(ids).logits
        reply = ref.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1] :]
        reply_back = back.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1] :]
    return {
        "done": done,
        "error": float((back_logits - ref_logits).abs().max() / ref_logits.abs().max()),
        "reply": tok.decode(reply),
        "reply_back": tok_back.decode(reply_back),
        "ids": tok(text).input_ids,
        "ids_back": tok_back(text).input_ids,
        "decoded_back": tok_back.decode(tok_back(text).input_ids),
        "text": text,
        "template_back": gguf_field(done.gguf, "tokenizer.chat_template"),
        "template": tok.chat_template,
    }


def gguf_field(path: Path, key: str) -> str:
    """A string field of a GGUF file as llama.cpp reads it (transformers' tokenizer drops the template for llama)."""
    import gguf as gg

    field = gg.GGUFReader(path).fields[key]
    return str(bytes(field.parts[-1]), "utf-8")


def assert_round_trip(r: dict, type_name: str) -> None:
    assert r["error"] <= TOLERANCE[type_name], f"{type_name}: logits differ by {r['error']:.4f} of the largest"
    assert r["reply_back"] == r["reply"]
    assert r["ids_back"] == r["ids"]
    assert r["decoded_back"] == r["text"]
    assert r["template_back"] == r["template"]


# ----------------------------------------------------------------------------------------------- the shipped demo
@pytest.fixture(scope="module")
def demo_merge(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "merge"
    assert main(["merge", "--demo", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("type_name", ["f16", "q8_0"])
def test_demo_merge_round_trips(demo_merge, type_name):
    from reasonany_gui.engine.data.demo import PRESET_FILE, shipped_demo_dir

    # the shipped (trained) demo's first prompt shows its reasoning skill
    prompt = json.loads((shipped_demo_dir() / PRESET_FILE).read_text())["prompts"][0]
    r = compare(demo_merge, type_name, prompt, extra_text=f"{THINK[0]} 2 + 2 {THINK[1]}")
    assert_round_trip(r, type_name)
    assert "mentor" in r["reply"]  # the demo's reasoning skill: a chain through the mentors
    modelfile = r["done"].modelfile.read_text()
    assert f"FROM ./{r['done'].gguf.name}" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "<|im_start|>" in modelfile


@pytest.mark.slow
def test_cli_exports_the_demo_q8_0(demo_merge, capsys):
    """The issue's 'done when': merge --demo, then export --gguf --type q8_0 prints the file it wrote."""
    assert main(["export", str(demo_merge), "--gguf", "--type", "q8_0", "--quiet"]) == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path == demo_merge / f"{demo_merge.name}-Q8_0.gguf" and path.stat().st_size > 0
    assert (demo_merge / gguf.MODELFILE).is_file()
    assert not [p for p in demo_merge.iterdir() if p.name.startswith(".")]  # no temp file left


# ----------------------------------------------------------------------------------------- the tiny test trios
def add_think_tokens(folder: Path) -> None:
    """Give a model folder's tokenizer `<think>`/`</think>` in its spare rows, as R1-style reasoning models do."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_tokens(list(THINK))
    tok.save_pretrained(folder)


@pytest.fixture(scope="module")
def llama_merge(tmp_path_factory, data_files):
    """A tied, bfloat16 Llama trio with two spare rows that the reasoning model names <think> and </think>."""
    from reasonany_gui.engine.data.demo import build_trio

    root = tmp_path_factory.mktemp("llama-think")
    trio = build_trio(root, arch="llama", seed=1, tie=True, dtype=torch.bfloat16, vocab=261)
    add_think_tokens(trio["reasoning"])
    assert main([*skills.merge_argv(trio, data_files, root / "out"), "--quiet"]) == 0
    return root / "out"


@pytest.fixture(scope="module")
def qwen_merge(tmp_path_factory, trio, data_files):
    out = tmp_path_factory.mktemp("qwen") / "out"
    assert main([*skills.merge_argv(trio, data_files, out), "--quiet"]) == 0
    return out


@pytest.mark.parametrize("type_name", ["f16", "q8_0"])
def test_llama_merge_with_think_tokens_round_trips(llama_merge, type_name):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama_merge)
    think_ids = tok.convert_tokens_to_ids(list(THINK))
    assert think_ids == [259, 260]  # the merge speaks through the reasoning tokenizer
    r = compare(llama_merge, type_name, "What is 3 + 4?", extra_text=f"{THINK[0]}3 + 4 = 7{THINK[1]}")
    assert_round_trip(r, type_name)
    assert think_ids[0] in r["ids_back"] and think_ids[1] in r["ids_back"]  # whole tokens, not bytes
    assert "output.weight" not in {t.name for t in gguf.open_source(llama_merge, type_name).tensors}  # tied


@pytest.mark.parametrize("type_name", ["f16", "q8_0"])
def test_qwen2_merge_round_trips(qwen_merge, type_name):
    assert_round_trip(compare(qwen_merge, type_name, "What is 12 + 30?", extra_text=THINK[0]), type_name)


# ------------------------------------------------------------------------------------ refusals, progress, cancel
def test_other_families_are_refused_before_any_work(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}))
    with pytest.raises(
        InputError, match=r"supports Llama, Mistral, Qwen2/Qwen2.5 and Qwen3 models; .* GPT2LMHeadModel"
    ):
        export_gguf(tmp_path, "q8_0")  # no weights in the folder at all: nothing was opened
    assert main(["export", str(tmp_path), "--gguf"]) == 2


def test_unknown_type_is_refused(tmp_path):
    with pytest.raises(InputError, match="pick one of f32, f16, bf16, q8_0"):
        gguf.open_source(tmp_path, "q4_k")


def test_progress_and_cancel_leave_no_file(qwen_merge):
    events, cancel = [], CancelToken()

    def listener(event):
        events.append(event)
        if isinstance(event, Progress) and event.fraction > 0.3:
            cancel.cancel()

    with pytest.raises(CancelledError, match="no GGUF file was written"):
        export_gguf(qwen_merge, "f16", qwen_merge / "cancelled.gguf", listener, cancel)
    assert not [p for p in qwen_merge.iterdir() if "cancelled" in p.name]
    assert isinstance(events[0], StageStarted) and not any(isinstance(e, StageFinished) for e in events)
    fractions = [e.fraction for e in events if isinstance(e, Progress)]
    assert fractions == sorted(fractions) and 0.3 < fractions[-1] < 0.5  # stopped at the next tensor


def test_tensor_types_follow_llama_cpp(qwen_merge):
    """Norms stay F32; 4-bit files keep the embedding and output head at Q8_0; the file's size matches the plan."""
    import gguf as gg

    types = {t.name: gg.GGMLQuantizationType(t.qtype).name for t in gguf.open_source(qwen_merge, "q4_0").tensors}
    assert types["output_norm.weight"] == "F32" and types["blk.0.attn_q.bias"] == "F32"
    assert types["token_embd.weight"] == types["output.weight"] == "Q8_0"
    assert types["blk.0.ffn_down.weight"] == "Q4_0"
    done = export_gguf(qwen_merge, "q4_0")
    reader = gg.GGUFReader(done.gguf)
    assert {t.name: t.tensor_type.name for t in reader.tensors} == types
    assert gguf_field(done.gguf, "general.architecture") == "qwen2"
    tags = reader.fields["general.tags"]
    assert [str(bytes(tags.parts[i]), "utf-8") for i in tags.data] == ["merge", "reasonany"]


@pytest.mark.parametrize("family", ["qwen3", "mistral", "llama3.1"])
def test_other_supported_families_round_trip(tmp_path, family):
    """Qwen3 (q/k norms), Mistral (written as llama, as llama.cpp does) and Llama 3.1 (rope factors as rope_freqs):
    random small models exported to F16 and read back by transformers give the same logits."""
    import gguf as gg
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen3Config

    from reasonany_gui.engine.data.demo import make_tokenizer, save_model

    kw = dict(vocab_size=259, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    kw |= dict(num_key_value_heads=2, bos_token_id=0, eos_token_id=256, pad_token_id=256)
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    config = {
        "qwen3": lambda: Qwen3Config(**kw, head_dim=128),  # transformers' reader assumes Qwen3's 128
        "mistral": lambda: MistralConfig(**kw),
        "llama3.1": lambda: LlamaConfig(**kw, rope_scaling={**llama3, "original_max_position_embeddings": 64}),
    }[family]()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    folder = save_model(model, make_tokenizer(), tmp_path / f"tiny-{family}")
    done = export_gguf(folder, "f16")
    back = AutoModelForCausalLM.from_pretrained(folder, gguf_file=done.gguf.name, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 2, 3, 40, 50, 60, 70, 80]])
    with torch.no_grad():
        ref, got = model(ids).logits, back(ids).logits
    assert float((got - ref).abs().max() / ref.abs().max()) <= TOLERANCE["f16"]
    names = {t.name for t in gg.GGUFReader(done.gguf).tensors}
    assert ("blk.0.attn_q_norm.weight" in names) == (family == "qwen3")
    assert ("rope_freqs.weight" in names) == (family == "llama3.1")
    assert gguf_field(done.gguf, "general.architecture") == {"qwen3": "qwen3"}.get(family, "llama")


def test_sentencepiece_style_tokenizer_round_trips(tmp_path):
    """Llama 2 / Mistral v0.1 tokenizers (BPE with byte fallback, '▁' for spaces) go as llama.cpp's 'llama'
    vocabulary with byte tokens; transformers rebuilds the same ids, including the byte fallback for 'ü'."""
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast

    from reasonany_gui.engine.data.demo import save_model

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    for piece in [*"▁abcdehilnorstw", "▁w", "▁wh", "ha", "▁wha", "▁what", "is"]:
        vocab.setdefault(piece, len(vocab))
    merges = [("▁", "w"), ("▁w", "h"), ("h", "a"), ("▁wh", "a"), ("▁wha", "t"), ("i", "s")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    kw = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    config = LlamaConfig(vocab_size=len(vocab) + 4, bos_token_id=1, eos_token_id=2, **kw)
    folder = save_model(AutoModelForCausalLM.from_config(config), fast, tmp_path / "spm")
    done = export_gguf(folder, "q8_0")
    assert gguf_field(done.gguf, "tokenizer.ggml.model") == "llama"
    back = AutoTokenizer.from_pretrained(folder, gguf_file=done.gguf.name)
    for text in ("what is this", "What is ü 3?"):
        assert back(text).input_ids == fast(text).input_ids
    assert 'PARAMETER stop "</s>"' in done.modelfile.read_text()


def test_row_chunks_write_the_same_file(qwen_merge, tmp_path, monkeypatch):
    """Converting a tensor in row chunks (how a 7 B embedding avoids a whole float32 copy) changes no byte."""
    whole = export_gguf(qwen_merge, "q4_1", tmp_path / "whole.gguf").gguf.read_bytes()
    monkeypatch.setattr(gguf, "CHUNK_WEIGHTS", 200)  # a few rows at a time
    assert export_gguf(qwen_merge, "q4_1", tmp_path / "chunked.gguf").gguf.read_bytes() == whole


def test_pre_tokenizer_names_come_from_the_split_regex():
    """Qwen2/2.5 and Llama 3 tokenizers get llama.cpp's names for their split (the regex in tokenizer.json)."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    from reasonany_gui.engine.output.gguf_vocab import pre_tokenizer_name

    def tokenizer_json(regex: str) -> dict:
        split = {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated"}
        return {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [split, {"type": "ByteLevel"}]}}

    assert pre_tokenizer_name(tokenizer_json(GGUF_PRE_TOKENIZER_SPLITS["qwen2"])) == "qwen2"
    assert pre_tokenizer_name(tokenizer_json(GGUF_PRE_TOKENIZER_SPLITS["llama3"])) == "llama-bpe"
    assert pre_tokenizer_name({"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}) == "default"
