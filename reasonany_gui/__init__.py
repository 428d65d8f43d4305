"""ReasonAny GUI: training-free "Reasoning + X" model merging (ReasonAny, arXiv 2601.05560)."""

from importlib.metadata import PackageNotFoundError, version

try:  # one source of the version: pyproject.toml, through the installed package's metadata
    __version__ = version("reasonany-gui")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
