"""How many elements a ratio selects, exactly: one count shared by selection (masks) and the methods (TIES trim).

Why its own module: both the scoring floor and the methods floor need it, and the methods floor sits below."""

from __future__ import annotations

import math
from fractions import Fraction


def exact_k(ratio: float, n: int) -> int:
    """floor(ratio·n) computed exactly for the ratio as written (0.29 · 100 = 29, where the float product
    0.29 * 100 = 28.999999999999996 floors to 28). repr() gives the shortest decimal that is the float."""
    return math.floor(Fraction(repr(float(ratio))) * int(n))
