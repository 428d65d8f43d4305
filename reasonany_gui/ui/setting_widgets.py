"""One widget per MergeConfig field, generated from its `config.Setting`: the Settings, Save and Re-tune screens
all build, fill and read their setting widgets here.

Why one place: a setting's range, unit, choices and words are written once, on the field; a screen that built
its widgets by hand repeated them (and a new setting did not appear). The kinds of widget:
a switch is a check box; a setting with choices is a combo box of the choices in words; a number with a range is
a spin box in shown units (a percent field shows 50 % for 0.5); a size is an editable combo box of common sizes;
a path that may be empty is a line edit.
"""

from __future__ import annotations

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from reasonany_gui.engine.settings.config import FIELD_TYPES, MergeConfig

#: digits after the point in the spin boxes (an open range such as 0 < share < 1 stops one step inside)
DECIMALS = 2
#: the sizes offered for a size setting (any other size can be typed)
SIZE_SUGGESTIONS = ("1GB", "2GB", "5GB", "10GB")


def narrow_combo(box: QComboBox | None = None) -> QComboBox:
    """A combo box whose width follows its layout, not its longest entry (long entries are elided)."""
    box = box or QComboBox()
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(12)
    return box


#: a combo box's width beyond its text: the arrow, the frame and the style sheet's padding (px)
COMBO_CHROME = 52


def fit_longest_choice(box: QComboBox) -> None:
    """At least as wide as its longest choice with the app's style (a narrow combo box clips, it never elides)."""
    box.ensurePolished()
    metrics = box.fontMetrics()
    widest = max((metrics.horizontalAdvance(box.itemText(i)) for i in range(box.count())), default=0)
    box.setMinimumWidth(widest + COMBO_CHROME)


def setting_widget(name: str) -> QWidget:
    """The widget of one MergeConfig field, from its Setting (see the module's docstring for the kinds)."""
    meta = MergeConfig.settings()[name]
    kind = FIELD_TYPES[name]
    if kind == "boolean":
        box: QWidget = QCheckBox(meta.label)
    elif kind == "size":
        box = QComboBox()
        box.setEditable(True)
        box.addItems(SIZE_SUGGESTIONS)
    elif kind == "text or empty":
        box = QLineEdit()
    elif meta.options() or kind == "text":  # a text field without choices (device) is a combo filled by its panel
        box = narrow_combo()
        for option, title in meta.titles().items():
            box.addItem(title, option)
        if meta.options():  # a fixed list of choices: wide enough for the longest ("Task Arithmetic (comparison)")
            fit_longest_choice(box)
    elif kind in ("number", "whole number") and meta.low is not None and meta.high is not None:
        box = _spin_box(name, kind == "whole number")
    else:
        raise ValueError(f"{name}: no widget for a {kind} setting without a range")
    box.setToolTip(meta.tooltip)
    return box


def _spin_box(name: str, whole: bool) -> QSpinBox | QDoubleSpinBox:
    meta = MergeConfig.settings()[name]
    assert meta.low is not None and meta.high is not None, f"{name}: a spin box needs a range"
    low, high = meta.shown(meta.low), meta.shown(meta.high)
    if whole:
        box: QSpinBox | QDoubleSpinBox = QSpinBox()
        box.setRange(int(low), int(high))
        box.setSingleStep(int(meta.step))
    else:
        box = QDoubleSpinBox()
        box.setDecimals(DECIMALS)
        inset = 10.0**-DECIMALS if meta.open_range else 0.0
        box.setRange(low + inset, high - inset)
        box.setSingleStep(meta.step)
    if meta.unit:
        box.setSuffix(" %" if meta.percent else f" {meta.unit}")
    return box


def show_setting(name: str, box: QWidget, value: object) -> None:
    """Put a config value into its widget (made by setting_widget); an unknown choice stays visible."""
    meta = MergeConfig.settings()[name]
    if isinstance(box, QCheckBox):
        box.setChecked(bool(value))
    elif isinstance(box, QSpinBox):
        box.setValue(round(_number(name, value)))
    elif isinstance(box, QDoubleSpinBox):
        box.setValue(meta.shown(_number(name, value)))
    elif isinstance(box, QLineEdit):
        box.setText("" if value is None else str(value))
    elif _combo(box).isEditable():
        _combo(box).setCurrentText(str(value))
    else:
        box = _combo(box)
        i = box.findData(str(value))
        if i < 0:  # e.g. a remembered cuda:1 that is gone: keep it visible, the check explains
            box.addItem(str(value), str(value))
            i = box.findData(str(value))
        box.setCurrentIndex(i)


def _number(name: str, value: object) -> float:
    """A number setting's value as a float (settings read back from the store may be text)."""
    if isinstance(value, (int, float, str)):
        return float(value)
    raise TypeError(f"{name}: {value!r} is not a number")


def setting_value(name: str, box: QWidget) -> object:
    """The config value a widget (made by setting_widget) shows; an empty path is None."""
    if isinstance(box, QCheckBox):
        return box.isChecked()
    if isinstance(box, QSpinBox):
        return int(box.value())
    if isinstance(box, QDoubleSpinBox):
        return MergeConfig.settings()[name].stored(box.value())
    if isinstance(box, QLineEdit):
        return box.text().strip() or None
    box = _combo(box)
    if box.isEditable():
        return box.currentText().strip()
    return str(box.currentData())


def changed_signal(box: QWidget) -> SignalInstance:
    """The signal a widget made by setting_widget emits when its value changes."""
    if isinstance(box, QCheckBox):
        return box.toggled
    if isinstance(box, (QSpinBox, QDoubleSpinBox)):
        return box.valueChanged
    if isinstance(box, QLineEdit):
        return box.textChanged
    box = _combo(box)
    return box.currentTextChanged if box.isEditable() else box.currentIndexChanged


def _combo(box: QWidget) -> QComboBox:
    """The combo box setting_widget made for a setting with choices or a size (every other kind is tested first)."""
    assert isinstance(box, QComboBox), f"not a setting widget: {type(box).__name__}"
    return box
