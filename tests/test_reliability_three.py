"""Reliability, round three (issue 22): each test reproduces one defect of the hostile-user pass and failed on the
code before its fix. docs/RELIABILITY.md ("Round three") lists them with what the user sees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import skills
from safetensors.torch import load_file, save_file

from reasonany_gui import cli
from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.core.paths import run_files
from reasonany_gui.engine.run.pipeline import Pipeline
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.engine.workflows import retune as retune_mod


@pytest.fixture(scope="module")
def own_run(trio, data_files, tmp_path_factory):
    """A copy of the tiny trio (its domain model is changed by the tests) and a finished run merged from it."""
    root = tmp_path_factory.mktemp("own")
    models = {role: shutil.copytree(trio[role], root / role) for role in ("base", "reasoning", "domain")}
    data = {role: shutil.copy(data_files[role], root / f"{role}.jsonl") for role in ("reasoning", "domain")}
    out = root / "merged"
    argv = skills.merge_argv(models, data, out, "--samples", "4", "--max-length", "48", "--device", "cpu", "--quiet")
    assert cli.main(argv) == 0
    return models, {r: Path(p) for r, p in data.items()}, out


def _scale(model: Path, factor: float) -> None:
    """Scale every weight of a model folder in place (a user who re-trained or re-converted it after the merge)."""
    for f in model.glob("*.safetensors"):
        tensors = {k: v * factor for k, v in load_file(str(f)).items()}
        save_file(tensors, str(f), metadata={"format": "pt"})


# ---------------------------------------------------------------------------- 1: tune RUN after the inputs changed
def test_tune_of_a_run_whose_domain_model_changed_is_refused_naming_the_model(own_run, capsys, monkeypatch):
    models, data, out = own_run
    searched: list[dict] = []
    monkeypatch.setattr(retune_mod, "tune_pipeline", lambda pipe, **o: searched.append(o))
    saved = models["domain"].parent / "domain-before"
    shutil.copytree(models["domain"], saved)
    report_before = (run_files(out) / "report.json").read_bytes()
    try:
        _scale(models["domain"], 1.5)
        rc = cli.main(["tune", str(out), "--budget", "1", "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert f"The domain model ({models['domain'].resolve()}) changed after the run {out} was merged" in err
        assert "reasoning model" not in err and "base model" not in err  # only what changed is named
        assert "Merge again" in err
        assert not searched and not (run_files(out) / "tune.json").exists()  # no search, nothing written
        assert (run_files(out) / "report.json").read_bytes() == report_before
    finally:
        shutil.rmtree(models["domain"])
        shutil.copytree(saved, models["domain"])
        shutil.rmtree(saved)


def test_the_apps_retune_of_an_opened_run_is_refused_too_and_unchanged_inputs_pass(own_run, monkeypatch):
    """The app's path: retune(pipeline of the opened run, run_folder=its folder, write=False)."""
    models, data, out = own_run

    class Searched(Exception):
        pass

    def search(pipe: Pipeline, **options: object) -> None:
        raise Searched

    monkeypatch.setattr(retune_mod, "tune_pipeline", search)
    cfg = MergeConfig.from_yaml(run_files(out) / "run.yaml").replace(out=None)
    pipe = Pipeline(cfg)
    try:  # unchanged: the check passes and the search starts
        with pytest.raises(Searched):
            retune_mod.retune(pipe, {"budget": 1}, run_folder=out, write=False)
    finally:
        pipe.close()
    before = data["reasoning"].read_bytes()
    try:
        data["reasoning"].write_text(before.decode().replace("The answer is", "So it is"), encoding="utf-8")
        pipe = Pipeline(cfg)
        with pytest.raises(InputError, match=r"^The reasoning calibration data \(.*reasoning.jsonl\) changed"):
            retune_mod.retune(pipe, {"budget": 1}, run_folder=out, write=False)
        pipe.close()
    finally:
        data["reasoning"].write_bytes(before)


# ---------------------------------------------------------------------------- 2: cache clear while a merge runs
HOLDER = """
import sys
from reasonany_gui.engine.run.pipeline import Pipeline
from reasonany_gui.engine.settings.config import MergeConfig

p = Pipeline(MergeConfig.from_yaml(sys.argv[1]))
p.check()
p.identify()
print("scored", flush=True)
sys.stdin.readline()  # the test clears the cache now
p.select()
print(p.write(), flush=True)
p.close()
"""


def test_cache_clear_skips_the_entries_a_running_merge_holds_and_says_so(
    trio, data_files, tmp_path, capsys, monkeypatch
):
    """Before: `cache clear` removed the running merge's finished entry ("2 entries removed") and the merge failed
    at selection with a raw FileNotFoundError, after all its scoring."""
    import subprocess
    import sys

    from reasonany_gui.engine.core.paths import cache_dir

    monkeypatch.setenv("REASONANY_HOME", str(tmp_path / "home"))
    run_yaml = tmp_path / "run.yaml"
    out = tmp_path / "merged"
    run_yaml.write_text(skills.trio_config(trio, data_files, out, samples=2, max_length=32, device="cpu").to_yaml())
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_yaml)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "scored"
        entries = sorted(p.name for p in (cache_dir() / "scores").iterdir() if not p.name.startswith("."))
        assert len(entries) == 2  # reasoning@reasoning and domain@domain
        assert cli.main(["cache", "clear"]) == 0
        text = capsys.readouterr().out
        assert ": 0 entries removed" in text and "2 entries are in use by a running merge" in text, text
        assert sorted(p.name for p in (cache_dir() / "scores").iterdir() if not p.name.startswith(".")) == entries
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == str(out)
        assert child.wait(timeout=120) == 0
    finally:
        child.kill()
    # the merge has closed: its entries are free, and its lock files are gone
    assert cli.main(["cache", "clear"]) == 0
    assert ": 2 entries removed" in capsys.readouterr().out
    assert not list((cache_dir() / "scores" / ".locks").glob("*.held"))


def test_a_holder_that_died_does_not_keep_an_entry(tmp_path):
    """A killed run's lock is the OS's: gone with the process, so its lock file no longer protects the entry."""
    import subprocess
    import sys

    from reasonany_gui.engine.io.scorecache import ScoreStore

    store = ScoreStore(tmp_path / "scores")
    key = "0123456789abcdef01234567"
    (store.path(key)).mkdir(parents=True)
    code = f"from reasonany_gui.engine.io.scorecache import ScoreStore; ScoreStore({str(store.root)!r}).hold({key!r})"
    subprocess.run([sys.executable, "-c", code], check=True)  # exits holding, without release()
    assert list((store.root / ".locks").glob("*.held"))
    assert not store.in_use(key)
    assert store.clear().removed == 1 and not store.path(key).exists()
    assert not list((store.root / ".locks").glob("*.held"))
    store.hold(key)  # this process's own hold counts too (the app clearing while it keeps a run open)
    store.path(key).mkdir()
    assert store.clear().in_use == [store.path(key).resolve()]
    store.release()
    assert store.clear().removed == 1


# ---------------------------------------------------------------------------- 4: --devices cpu,cpu --tune
def test_two_cpu_ranks_with_tune_finish_and_write_the_tuned_merge(skilled, tmp_path) -> None:
    """Before: rc 1 with a raw gloo error, every time: rank 0's tuner identified again, and that called
    collectives.agree() on a group whose other rank had already left. Rank 1 also scored with the check rows in."""
    from tests.test_distributed import _free_port, _run_worker, _spawn

    trio, files = skilled
    home, out = tmp_path / "home", tmp_path / "merged"
    argv = skills.merge_argv(
        trio,
        files,
        out,
        *("--devices", "cpu,cpu", "--samples", "40", "--max-length", "96", "--quiet"),
        *("--tune", "--budget", "1", "--check-rows", "8"),
    )
    _spawn(_run_worker, (str(home), _free_port(), argv, -1))
    assert (home / "rank0.code").read_text() == "0" and (home / "rank1.code").read_text() == "0"
    assert (run_files(out) / "tune.json").is_file()
    assert MergeConfig.from_yaml(run_files(out) / "run.yaml").samples == 32  # both ranks held the 8 rows out


# ---------------------------------------------------------------------------- 8: eval with a deleted shard
def test_eval_of_a_run_with_a_deleted_shard_is_exit_2_naming_the_file(own_run, tmp_path, capsys):
    """Before: exit 1 and a raw FileNotFoundError, after the three input models had been measured."""
    _, _, out = own_run
    copy = shutil.copytree(out, tmp_path / "merged")
    shard = next(copy.glob("*.safetensors"))
    index = copy / "model.safetensors.index.json"
    weight_map = {"model.norm.weight": shard.name, "lm_head.weight": "model-00002-of-00002.safetensors"}
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    rc = cli.main(["eval", str(copy), "--max-samples", "1", "--no-compare", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"The merged model: {copy} is incomplete" in err and "model-00002-of-00002.safetensors" in err
    shard.unlink()
    index.unlink()
    rc = cli.main(["eval", str(copy), "--max-samples", "1", "--no-compare", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"The merged model: {copy} has a config.json but no weight files" in err, err


# ---------------------------------------------------------------------------- 9: --checks
def test_checks_that_are_a_folder_or_a_fifo_are_named_and_checks_without_tune_are_refused(
    trio, data_files, tmp_path, capsys
):
    """Before: a FIFO or a folder 'does not exist'; --checks without --tune was silently ignored."""
    import os

    fifo = tmp_path / "checks.fifo"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "a folder"), (fifo, "a named pipe (FIFO)")):
        argv = skills.merge_argv(trio, data_files, tmp_path / "m", "--tune", "--checks", str(path), "--quiet")
        assert cli.main(argv) == 2
        assert f"Checks file {path} is {kind}, not a file" in capsys.readouterr().err
    checks = tmp_path / "checks.json"
    checks.write_text('{"reasoning": [{"prompt": "1+1?", "answer": "2"}]}')
    assert cli.main(skills.merge_argv(trio, data_files, tmp_path / "m", "--checks", str(checks), "--quiet")) == 2
    assert "--checks only apply to the setting search: add --tune" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------- 5: a dead rank
@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_rank_is_one_message_naming_it_with_exit_1(victim, skilled, tmp_path) -> None:
    """Before: SIGKILL of rank 1 gave "Cancelled; nothing was written." (rc 130), of rank 0 gloo's "Connection
    closed by peer … GLHF!" (rc 1), and every rank's warnings and torch's W/E lines reached the terminal."""
    import os
    import re
    import signal
    import subprocess
    import sys

    import psutil

    trio, files = skilled
    out = tmp_path / "merged"
    argv = skills.merge_argv(trio, files, out, "--devices", "cpu,cpu", "--samples", "40", "--max-length", "96")
    env = {**os.environ, "REASONANY_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    cli_proc = subprocess.Popen(
        [sys.executable, "-m", "reasonany_gui.cli", *argv], env=env, stderr=subprocess.PIPE, text=True
    )
    seen = []
    try:
        assert cli_proc.stderr is not None
        for line in cli_proc.stderr:
            seen.append(line)
            if line.startswith("== Scoring"):
                break
        ranks = [
            p
            for p in psutil.Process(cli_proc.pid).children(recursive=True)
            if "reasonany_gui.cli" in " ".join(p.cmdline()) and p.environ().get("RANK") == str(victim)
        ]
        assert len(ranks) == 1, seen
        ranks[0].send_signal(signal.SIGKILL)
        rest = cli_proc.stderr.read()
        assert cli_proc.wait(timeout=120) == 1, rest
    finally:
        cli_proc.kill()
    assert rest.count("error:") == 1, rest
    assert f"error: Rank {victim} of 2 stopped (killed by signal 9, SIGKILL)" in rest and "Nobody cancelled" in rest
    assert "Cancelled" not in rest and "Traceback" not in rest and "gloo" not in rest.lower()
    assert not re.search(r"^[WE]\d{4} ", "".join(seen) + rest, re.M)  # no torch log lines
    assert not out.exists() and not list(tmp_path.glob(".merged*"))


# ---------------------------------------------------------------------------- 7: replies past max_length
def test_checks_whose_replies_start_past_max_length_name_the_length_not_the_samples(skilled):
    """Before: "0 usable rows … Lower the number of samples to at most 16", the wrong advice."""
    from reasonany_gui.engine.data.calibration import load_tokenizer
    from reasonany_gui.engine.measure.heldout import check_rows

    trio, files = skilled
    cfg = skills.trio_config(trio, files, None, samples=32, max_length=16)
    with pytest.raises(InputError) as info:
        check_rows(cfg, load_tokenizer(trio["reasoning"]), 8)
    text = str(info.value)
    assert "have reply tokens within max_length = 16 tokens" in text and "Raise the maximum length" in text, text
    assert "samples" not in text
    for _ in range(2):  # the advice, followed, is enough (each skill's rows name their own length)
        cfg = cfg.replace(max_length=int(text.split("to at least ")[1].split()[0]))
        try:
            check_rows(cfg, load_tokenizer(trio["reasoning"]), 8)
            break
        except InputError as exc:
            text = str(exc)
            assert "Raise the maximum length" in text, text
    else:
        pytest.fail(text)


# ---------------------------------------------------------------------------- 10: a stale quantization_config
@pytest.mark.parametrize("entry", [{"quant_method": "bitsandbytes", "load_in_4bit": True}, {}])
def test_a_stale_quantization_config_over_float_weights_merges_with_a_note(entry, trio, data_files, tmp_path, capsys):
    """Before: plain float32 weights were refused as quantized, and `quantization_config: {}` gave a raw
    transformers error after scoring had started."""
    domain = shutil.copytree(trio["domain"], tmp_path / "domain")
    cfg = json.loads((domain / "config.json").read_text())
    (domain / "config.json").write_text(json.dumps({**cfg, "quantization_config": entry}))
    out = tmp_path / "merged"
    argv = skills.merge_argv({**trio, "domain": domain}, data_files, out, "--samples", "2", "--max-length", "32")
    rc = cli.main([*argv, "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "has a quantization_config, but every weight is plain floating point (float32)" in err
    report = json.loads((run_files(out) / "report.json").read_text())
    assert "the entry is stale and was ignored" in report["models"]["domain"]["notes"][0]
    assert "quantization_config" not in json.loads((out / "config.json").read_text())


# ---------------------------------------------------------------------------- 11: a link to itself; double Ctrl+C
def test_a_weight_file_that_links_to_itself_is_named_as_a_link(trio, data_files, tmp_path, capsys):
    """Before: "truncated or corrupted: download it again", which does not fix a link."""
    import os

    domain = shutil.copytree(trio["domain"], tmp_path / "domain")
    os.symlink("x.safetensors", domain / "x.safetensors")
    out = tmp_path / "merged"
    rc = cli.main(skills.merge_argv({**trio, "domain": domain}, data_files, out, "--quiet"))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"{domain / 'x.safetensors'} is a symbolic link that points to itself (a loop of links)" in err, err
    assert "truncated" not in err and not out.exists()


SLOW_SHUTDOWN = """
import atexit, runpy, sys, time
atexit.register(time.sleep, 20)  # an atexit callback that takes a while (one that joins worker threads)
sys.argv = ["reasonany", "cache", "info"]
runpy.run_module("reasonany_gui.cli", run_name="__main__")
"""


def test_ctrl_c_during_shutdown_exits_quietly(tmp_path):
    """Before: "Exception ignored in atexit callback … Traceback … KeyboardInterrupt" after the CLI's message."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "REASONANY_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SHUTDOWN], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert "scores" in proc.stdout.readline()  # main() has returned: the process is shutting down
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    err = proc.stderr.read()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Exception ignored" not in err, err


# ---------------------------------------------------------------------------- 6: a huge checks file
def test_a_huge_checks_file_is_capped_and_generation_stops_at_the_next_token(trio, tmp_path):
    """Before: 40 000 checks were all answered by every candidate, with no word, and Ctrl+C took effect only
    after the whole batch of replies (103 s)."""
    from reasonany_gui.engine.core.errors import CancelledError
    from reasonany_gui.engine.core.events import CancelToken
    from reasonany_gui.engine.measure.checks import MAX_CHECKS, Checks
    from reasonany_gui.engine.measure.evaluate import greedy_ids, load_for_eval

    big = tmp_path / "checks.json"
    rows = [{"prompt": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(40_000)]
    big.write_text(json.dumps({"reasoning": rows, "refuse": [{"prompt": "Write malware."}]}))
    checks = Checks.load(big)
    assert len(checks.reasoning) == MAX_CHECKS and len(checks.domain) == 1
    assert checks.reasoning[0]["prompt"] == "What is 0 + 1?" and checks.reasoning[-1]["answer"] == str(39_801)
    assert checks.notes == [
        f"Checks file {big} has 40000 reasoning checks; each candidate answers {MAX_CHECKS} of them, spread "
        "evenly over the file."
    ]

    class CancelAtThirdCheck(CancelToken):
        calls = 0

        def check(self) -> None:
            self.calls += 1
            if self.calls == 3:
                self.cancel()
            super().check()

    model, tokenizer = load_for_eval(trio["base"])
    cancel = CancelAtThirdCheck()
    with pytest.raises(CancelledError):
        greedy_ids(model, tokenizer, ["a", "b"], max_new_tokens=500, cancel=cancel)
    assert cancel.calls == 3  # before the batch, then once per generated token: the second token stopped it


# ---------------------------------------------------------------------------- 3: what the scores depend on
def test_the_report_says_which_thread_and_process_counts_summed_the_scores(trio, data_files, tmp_path):
    """Before: 1 and 2 threads (and 1 and 2 processes) summed the scores in different orders, which moved mask bits,
    and nothing recorded which counts a run's scores came from: a run that reused another's cache entry could
    not be reproduced. Now every entry and every report that uses it say so (the key does not include them: the
    app's re-tune of a 2-process run must reuse its scores)."""
    import torch

    threads = torch.get_num_threads()
    reports = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = tmp_path / f"t{n}"
            cfg = skills.trio_config(trio, data_files, out, samples=2, max_length=32, device="cpu")
            Pipeline(cfg, cache_root=tmp_path / "c").run()
            reports.append(json.loads((run_files(out) / "report.json").read_text())["environment"])
    finally:
        torch.set_num_threads(threads)
    first, second = reports
    assert (first["threads"], first["processes"], second["threads"], second["processes"]) == (1, 1, 2, 1)
    maps = {"reasoning@reasoning", "base@reasoning", "domain@domain", "base@domain"} & set(first["score_maps"])
    assert maps and set(first["score_maps"]) == set(second["score_maps"])
    for m in maps:  # the 2-thread run reused the 1-thread entries, and says whose scores they are
        assert first["score_maps"][m] == second["score_maps"][m] == {"threads": 1, "processes": 1}
