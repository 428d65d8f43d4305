"""ReasonAny GUI: training-free "Reasoning + X" model merging (ReasonAny, arXiv 2601.05560)."""

__version__ = "0.1.0"
