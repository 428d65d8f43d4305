"""Did the merge keep a skill? One rule for the evaluation's words and the Results screen's banners.

Why a module of its own: the thresholds were written twice (in the evaluation's plain-words lines and in the
Results view), so a change to one would have made the report and the screen disagree about the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

Verdict = Literal["kept", "partly", "lost", "unclear"]

#: a merge keeping at least this share of an expert's gain over the base has kept the skill
KEPT_FROM = 0.8
#: at least this share (but under KEPT_FROM): partly kept; below it the skill is lost
PARTLY_FROM = 0.3
#: without a kept share: a merged perplexity within 10 % of the expert's counts as "as good as the expert"
AS_GOOD_WITHIN = 1.10
#: a verdict as the evaluation's sentence says it ("The merged model partly kept the domain skill")
VERDICT_WORDS: dict[Verdict, str] = {
    "kept": "kept",
    "partly": "partly kept",
    "lost": "lost",
    "unclear": "may have kept",
}


def kept_level(fraction: float) -> Verdict:
    """kept | partly | lost for the share of an expert's gain over the base that the merge keeps."""
    return "kept" if fraction >= KEPT_FROM else "partly" if fraction >= PARTLY_FROM else "lost"


def kept_verdict(fraction: float, skill: str) -> tuple[Verdict, str]:
    """The engine's kept fraction for one skill, as a verdict and the words that explain it."""
    verdict = kept_level(fraction)
    if fraction < 0:  # worse than the base: "keeps −16 %" reads like a typo, and the evaluation says 0 %
        return verdict, (
            f"keeps none of the {skill} model's gain over the base; it is even worse than the base on "
            f"this text ({100 * fraction:.0f} %)"
        )
    return verdict, f"keeps {100 * fraction:.0f} % of the {skill} model's gain over the base"


def perplexity_verdict(ppl: Mapping[str, Mapping[str, float]], data: str, expert: str) -> tuple[Verdict, str]:
    """A verdict from the perplexities on one skill's data, for evaluations that report no kept fraction.

    A plain comparison, no new numbers: kept when the merge's perplexity on the skill's text is about as low as
    the expert's (within 10 %); partly when it is at least better than the base's."""
    row = ppl.get(data) or {}
    m, e, b = (row.get(k) for k in ("merged", expert, "base"))
    if not (_finite(m) and _finite(e) and _finite(b)):
        return "unclear", "not measured"
    assert m is not None and e is not None and b is not None  # _finite said so; mypy cannot follow it
    if e >= b:
        return "unclear", f"the {expert} model is no better than the base on this text ({e:.2f} vs {b:.2f})"
    if m <= e * AS_GOOD_WITHIN:
        return "kept", f"as good as the {expert} model ({m:.2f} vs {e:.2f}; base {b:.2f})"
    if m < b:
        return "partly", f"between the base and the {expert} model ({m:.2f}; {expert} {e:.2f}, base {b:.2f})"
    return "lost", f"no better than the base ({m:.2f}; base {b:.2f}, {expert} {e:.2f})"


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
