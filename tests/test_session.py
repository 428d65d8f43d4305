"""The app's session without Qt (engine/workflows/session.py): which run and version are shown, and which results
still belong to them."""

from pathlib import Path
from types import SimpleNamespace

from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.engine.workflows.session import Session, Stamp, config_of


class FakePipeline:
    def __init__(self, config: MergeConfig) -> None:
        self.config = config
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_merge_retune_save_move_the_stamp_and_results_follow(tmp_path):
    s = Session()
    assert s.stamp == Stamp(0, 0) and s.config is None and not s.searchable and s.setting() is None
    p = FakePipeline(MergeConfig(domain_ratio=0.02))
    s.merged(p, "masks", tmp_path / "run1")
    assert s.stamp == Stamp(1, 0) and s.saved and s.out_dir == tmp_path / "run1" and s.pipeline is p
    assert s.setting() is not None and s.setting()["domain_ratio"] == 0.02 and s.searchable
    s.record("evaluation", {"kept": 0.9})
    s.record("tune", {"summary": "x"})
    assert s.result("evaluation") == {"kept": 0.9} and s.result("answers") is None

    p.config = p.config.replace(domain_ratio=0.05)
    s.retuned(p, "masks2")
    assert s.stamp == Stamp(1, 1) and not s.saved and s.out_dir == tmp_path / "run1"  # the last saved folder
    assert s.result("evaluation") is None and s.result("tune") is None  # computed for version 0
    s.record("answers", {"outputs": {}})

    s.version_saved(p, "masks2", tmp_path / "run1-v2")
    assert s.stamp == Stamp(1, 1) and s.saved and s.out_dir == tmp_path / "run1-v2"
    assert s.result("answers") == {"outputs": {}}  # the same masks, now on disk

    s.merge_started()
    assert p.closed == 1 and s.pipeline is None and s.selection is None and s.config is None
    s.merged(FakePipeline(MergeConfig()), None, None)
    assert s.stamp == Stamp(2, 0) and s.out_dir == tmp_path / "run1-v2"  # a merge without a folder keeps the last
    assert s.result("answers") is None


def test_an_opened_run_reads_its_setting_from_the_report(tmp_path):
    s = Session()
    p = FakePipeline(MergeConfig())
    s.merged(p, "masks", tmp_path)
    report = {"config": MergeConfig(reasoning_ratio=0.07).to_dict()}
    s.opened(SimpleNamespace(names=["w"], out_dir=str(tmp_path / "old"), report=report))
    assert p.closed == 1 and s.pipeline is None and s.stamp == Stamp(2, 0)
    assert s.out_dir == Path(tmp_path / "old") and s.config is not None and s.config.reasoning_ratio == 0.07
    # a run without masks (a dense method) shows none, and so has no setting to re-tune
    s.opened(SimpleNamespace(names=[], out_dir=str(tmp_path / "dense"), report=report))
    assert s.selection is None and s.config is None and not s.searchable and s.stamp == Stamp(3, 0)


def test_config_of_unreadable_reports():
    assert config_of(None) is None and config_of({}) is None
    assert config_of({"config": {"samples": "abc"}}) is None  # a setting of the wrong type
    assert config_of({"config": MergeConfig(samples=8).to_dict()}).samples == 8


def test_close_pipeline_never_raises():
    class Broken(FakePipeline):
        def close(self) -> None:
            raise RuntimeError("already gone")

    s = Session(pipeline=Broken(MergeConfig()))
    s.close_pipeline()
    assert s.pipeline is None


def test_a_search_stays_through_re_tunes_of_its_run_and_ends_with_a_new_run(tmp_path):
    """run_result: the search belongs to the run (each point picked from its plot is a re-tune of that run), so it
    stays while versions change; result() drops it at the first re-tune. A new merge or an opened run ends it."""
    s = Session()
    p = FakePipeline(MergeConfig())
    s.merged(p, "masks", tmp_path / "run1")
    search = {"summary": "Recommended: ReasonAny."}
    s.record("tune", search)
    s.retuned(p, "recommended")  # the search adopts its recommendation: version 1
    s.retuned(p, "clicked point")  # the user clicks another point: version 2
    assert s.stamp == Stamp(1, 2)
    assert s.run_result("tune") is search and s.result("tune") is None
    s.version_saved(p, "clicked point", tmp_path / "run1-v2")
    assert s.run_result("tune") is search  # saving a version is the same run

    s.merged(FakePipeline(MergeConfig()), "masks", tmp_path / "run2")
    assert s.stamp == Stamp(2, 0) and s.run_result("tune") is None
    s.record("tune", search)
    s.opened(SimpleNamespace(names=["w"], out_dir=str(tmp_path / "run1"), report=None))
    assert s.run_result("tune") is None and s.run_result("evaluation") is None
