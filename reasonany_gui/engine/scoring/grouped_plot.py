"""The live plot of a map scored in several groups (low-RAM mode): one plot that fills in group by group.

Why a module of its own: the scoring loop only forwards events; how a grid made of several passes is shown is
a separate idea (and the one place that knows that cells are never split between groups)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.events import Listener, SensitivityUpdate


class GroupedPlot:
    """Each group's pass reports a grid with only its own cells (NaN elsewhere, and only as many layers as it
    reaches); the cells of the finished groups keep their final values, and the sample count runs over all the
    passes. Cells are never split between groups (importance.tensor_groups cuts between modules), so every
    value shown is a whole cell's mean. Every other event goes through unchanged."""

    def __init__(self, listener: Listener, groups: int, samples: int) -> None:
        self.listener = listener
        self.groups = groups
        self.samples = samples
        self.group = 0
        self._done: np.ndarray | None = None  # the finished groups' cells
        self._last: np.ndarray | None = None  # the latest grid of group `_last_group`
        self._last_group = -1

    def __call__(self, event: object) -> None:
        if self.groups <= 1 or not isinstance(event, SensitivityUpdate):
            self.listener(event)
            return
        grid = np.asarray(event.grid, dtype=float)
        if self._last is not None and self._last_group != self.group:  # a group finished: keep its cells
            self._done = overlay(self._done, self._last)
        self._last, self._last_group = grid, self.group
        shown = overlay(self._done, grid)
        self.listener(
            dataclasses.replace(
                event,
                samples_done=self.group * self.samples + event.samples_done,
                samples_total=self.groups * self.samples,
                grid=shown,
            )
        )


def overlay(under: np.ndarray | None, over: np.ndarray) -> np.ndarray:
    """`over`'s cells where it has values, `under`'s elsewhere (grids padded with NaN to the larger shape)."""
    if under is None:
        return over
    rows = max(under.shape[0], over.shape[0])
    cols = max(under.shape[1] if under.ndim == 2 else 0, over.shape[1] if over.ndim == 2 else 0)
    out = np.full((rows, cols), np.nan)
    out[: under.shape[0], : under.shape[1]] = under
    top = np.full((rows, cols), np.nan)
    top[: over.shape[0], : over.shape[1]] = over
    return np.where(np.isnan(top), out, top)
