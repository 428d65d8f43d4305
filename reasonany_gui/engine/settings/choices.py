"""The legal values of the settings with a fixed set of choices, each with its words for the app and the report.

Why value -> words in one mapping: the choices and the titles the GUI's combo boxes and the run summary show were
two lists in two files (config.py and ui/texts.py), and a choice added to one was shown as its raw id. A setting's
`choices` is one of these mappings (the method's comes live from the method registry), so both follow it.
"""

from __future__ import annotations

SCORE_TITLES: dict[str, str] = {
    "gradient": "Gradient size (as in the paper)",
    "snip": "Weight x gradient (SNIP, recommended)",
    "fisher": "Squared gradient (Fisher)",
}
SCOPE_TITLES: dict[str, str] = {"global": "Whole model", "tensor": "Each weight matrix"}
#: the working precision's choices
DTYPE_TITLES: dict[str, str] = {
    "auto": "Automatic",
    "bfloat16": "bfloat16 (half size)",
    "float16": "float16 (half size)",
    "float32": "float32 (full size)",
}
#: the saved model's precision ("auto" keeps the base model's, so it is named that way)
SAVE_DTYPE_TITLES: dict[str, str] = {**DTYPE_TITLES, "auto": "Same as the base model"}
ACCUMULATOR_TITLES: dict[str, str] = {
    "auto": "Automatic",
    "device": "On the GPU (fast)",
    "host": "In RAM (saves GPU memory)",
}
ROLE_TITLES: dict[str, str] = {"base": "Base model", "reasoning": "Reasoning model", "domain": "Domain model"}
GRANULARITY_TITLES: dict[str, str] = {
    "element": "Single weights (as in the paper)",
    "tensor": "Whole matrices (comparison only)",
}
SCORE_PRECISION_TITLES: dict[str, str] = {"bfloat16": "bfloat16 (half the disk space)", "float32": "float32 (exact)"}

DEVICES_HELP = "auto, cpu, cuda or cuda:N"
