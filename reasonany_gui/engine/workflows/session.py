"""What one session of the app knows, without Qt: the models picked, the run shown, its version, and the results
computed for it.

Why a plain object: the window used to keep this state in its own attributes, spread over 800 lines, so nothing
said which evaluation or search belonged to which masks. Here every result is stamped with the run and version it
was computed for (`Stamp`), and `result()` hands back only what belongs to the run and version shown now; a later
change (a new merge, an opened run, a re-tune) moves the stamp on, and what no longer belongs is no longer handed
out. The window and its screens read and write this object; the tests drive it without a display.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..core.errors import InputError
from ..measure.candidates import SETTING_KEYS
from ..settings.config import MergeConfig

if TYPE_CHECKING:
    from ..run.pipeline import Pipeline

#: the results a session keeps for the version shown: the evaluation, the search, the answers to the user's question
ResultKind = Literal["evaluation", "tune", "answers"]


@dataclass(frozen=True)
class Stamp:
    """Which run (a merge or an opened folder, counted from 1) and which version of it (0: as merged or opened;
    each re-tune adds one) something was computed for."""

    run: int = 0
    version: int = 0


@dataclass
class Session:
    """The state behind the screens. `pipeline` is the last merge kept open for re-tuning (None after "Open run…",
    whose masks come from disk), `selection` the masks shown (the engine's Selection, or the opened run's RunView),
    `out_dir` the saved folder of the run shown, `saved` whether the masks shown are that folder's."""

    models: dict[str, str] = field(default_factory=dict)
    pipeline: Pipeline | None = None
    selection: Any = None
    out_dir: Path | None = None
    saved: bool = True
    #: options of the post-merge evaluation (engine.measure.evaluate.evaluate_run keywords)
    eval_options: dict[str, int] = field(
        default_factory=lambda: {"max_samples": 32, "max_length": 256, "max_new_tokens": 64}
    )
    stamp: Stamp = Stamp()
    _results: dict[ResultKind, tuple[Stamp, Any]] = field(default_factory=dict)

    # ------------------------------------------------------------------ what is shown
    @property
    def opened_config(self) -> MergeConfig | None:
        """The setting of the opened earlier run (from its report); None when none is opened or it is unreadable."""
        return config_of(getattr(self.selection, "report", None))

    @property
    def config(self) -> MergeConfig | None:
        """The setting of the masks shown: the kept pipeline's, else the opened run's."""
        return self.pipeline.config if self.pipeline is not None else self.opened_config

    @property
    def searchable(self) -> bool:
        """Whether a re-tune or a search can start: measured scores are at hand (a kept pipeline or a readable run)."""
        return self.config is not None

    def setting(self) -> dict[str, Any] | None:
        """The setting shown now (method, shares, strengths, scope), e.g. for the search's ring."""
        config = self.config
        return None if config is None else {k: getattr(config, k) for k in SETTING_KEYS}

    # ------------------------------------------------------------------ changes
    def merge_started(self) -> None:
        """A new merge replaces the kept pipeline; until it finishes, no masks are shown."""
        self.close_pipeline()
        self.selection = None

    def merged(self, pipeline: Pipeline, selection: Any, out_dir: Path | str | None) -> None:
        """A merge finished and is saved: a new run."""
        self._show(pipeline, selection, out_dir, saved=True)
        self._new_run()

    def version_saved(self, pipeline: Pipeline, selection: Any, out_dir: Path | str | None) -> None:
        """The re-tuned version shown was written to its own folder: the same masks, now saved."""
        self._show(pipeline, selection, out_dir, saved=True)

    def retuned(self, pipeline: Pipeline, selection: Any) -> None:
        """New masks from the measured scores (a re-tune or a search): a new version of the run, not saved yet."""
        self._show(pipeline, selection, self.out_dir, saved=False)
        self.stamp = Stamp(self.stamp.run, self.stamp.version + 1)

    def opened(self, view: Any) -> None:
        """An earlier output folder was opened (report.load_run): a new run, its masks read from disk."""
        self.close_pipeline()
        self.selection = view if getattr(view, "names", None) else None
        self.out_dir = Path(view.out_dir)
        self.saved = True
        self._new_run()

    def close_pipeline(self) -> None:
        """Release the kept pipeline (its models and scores); closing never raises."""
        if self.pipeline is not None:
            with contextlib.suppress(Exception):
                self.pipeline.close()
        self.pipeline = None

    # ------------------------------------------------------------------ results, stamped
    def record(self, kind: ResultKind, value: Any) -> None:
        """Keep a result computed for the run and version shown now."""
        self._results[kind] = (self.stamp, value)

    def result(self, kind: ResultKind) -> Any:
        """The kept result of this kind when it was computed for the run and version shown now, else None."""
        stamp, value = self._results.get(kind, (None, None))
        return value if stamp == self.stamp else None

    def run_result(self, kind: ResultKind) -> Any:
        """The kept result of this kind when it was computed for the run shown now, whatever its version.

        Why apart from result(): a search belongs to the run (it measured the run's scores), and every version picked
        from its plot (the recommendation, a clicked point) is one of its candidates, so its plot stays while the user
        moves between them; a new merge or an opened run ends it."""
        stamp, value = self._results.get(kind, (None, None))
        return value if stamp is not None and stamp.run == self.stamp.run else None

    def _show(self, pipeline: Pipeline, selection: Any, out_dir: Path | str | None, saved: bool) -> None:
        self.pipeline = pipeline
        self.selection = selection
        self.out_dir = Path(out_dir) if out_dir else self.out_dir
        self.saved = saved

    def _new_run(self) -> None:
        self.stamp = Stamp(self.stamp.run + 1, 0)


def config_of(report: Mapping[str, Any] | None) -> MergeConfig | None:
    """A report's setting; None without a report or for one this version cannot read."""
    try:
        return MergeConfig.from_dict(dict(report["config"])) if report and "config" in report else None
    except InputError:
        return None
