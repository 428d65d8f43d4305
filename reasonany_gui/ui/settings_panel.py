"""Step 3: how to merge. Every field has a plain-language tooltip; defaults are `MergeConfig()`'s.

Ratios are shown as percentages (people read "5 %" more easily than 0.05); the config keeps fractions.
The estimate of memory, disk and time comes from the engine and is refreshed whenever a value changes,
so a user sees before pressing Merge whether the run fits their machine.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core import devices
from reasonany_gui.engine.io.writer import human_bytes
from reasonany_gui.engine.methods.registry import REGISTRY
from reasonany_gui.engine.settings.config import MergeConfig

from .setting_widgets import changed_signal, setting_value, setting_widget, show_setting
from .settings_store import TunePreferences
from .texts import DEMO_VALUES_NOTE, FOLLOW_HELP, FOLLOW_LABEL, LABELS, TOOLTIPS, human_range
from .tune.options import TuneOptions
from .widgets import Banner, Card, Columns, StrengthLink, page_header, strengths_follow_shares

if TYPE_CHECKING:
    from reasonany_gui.engine.io.model_info import ModelInfo
    from reasonany_gui.engine.scoring.estimate import LowRamOffer

#: below this width the cards stand in one column (two columns of ~370 px cut labels and values off)
COLUMNS_FROM = 900

log = logging.getLogger(__name__)

AUTO_TUNE_LABEL = "Find a good setting automatically"
AUTO_TUNE_HELP = (
    "Before saving, Merge measures several settings in memory (ReasonAny at other shares and strengths, "
    "and Task Arithmetic, TIES and DARE) on held-out rows of your data, and saves the one that keeps the "
    "most of both skills. The shares and strengths above are the first candidate. Each candidate costs "
    "one merge in memory and a few forward passes (no new gradients); the estimate above does not "
    "include it."
)
#: this panel's settings, and those only scored methods read (greyed out for the others); from config.Setting
PANEL_FIELDS = MergeConfig.fields_where(gui="settings", picked_by="")
SCORED_FIELDS = MergeConfig.fields_where(gui="settings", scoring_only=True, picked_by="")
#: settings of this panel with no widget of their own: the device picker sets them (Setting.picked_by)
DEVICE_PICKED = MergeConfig.fields_where(gui="settings", picked_by="device")
#: the device picker's "All GPUs" entry: device = cuda and devices = all (one torchrun process per GPU)
ALL_GPUS = "all"
#: the cards and their settings; every other setting of this panel goes to "Advanced settings" by itself
CARDS: dict[str, tuple[str, ...]] = {
    "Method": ("method",),
    "How much of each expert": ("reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale"),
    "Measuring importance": ("score", "samples", "max_length", "scope"),
    "Hardware": ("device", "compute_dtype"),
}
ADVANCED_FIELDS = tuple(n for n in PANEL_FIELDS if not any(n in names for names in CARDS.values()))


class SettingsPanel(QWidget):
    """Step 3. The window reads and sets it through `values`/`load`/`apply` and the tune-option intents below,
    never through its child widgets."""

    changed = Signal()
    search_options_changed = Signal()  # the search's options were edited here

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.base_info: ModelInfo | None = None  # the base model's, for the estimate
        #: device type -> measured/predicted time of the last run on this machine (the main window keeps it)
        self.speed_factors: dict[str, float] = {}
        self.fields: dict[str, QWidget] = {}
        self._loading = False

        for name in PANEL_FIELDS:
            self.fields[name] = setting_widget(name)
        self.method = self._combo("method")
        self.method_help = QLabel("")
        self.method_help.setObjectName("muted")
        self.method_help.setWordWrap(True)
        self.fill_devices()

        lay = QVBoxLayout(self)
        lay.addWidget(
            page_header(
                "3  Settings",
                "The recommended values are preset; hover over any setting for a one-line explanation. "
                "The estimate box tells you what the run will need before it starts.",
            )
        )
        self.columns = Columns(COLUMNS_FROM)

        method_card = Card("Method")
        method_card.body.addWidget(self.fields[CARDS["Method"][0]])
        method_card.body.addWidget(self.method_help)
        self.columns.add(method_card, span=2)

        self.follow = QCheckBox(FOLLOW_LABEL)
        self.follow.setToolTip(FOLLOW_HELP)
        follow_help = QLabel(FOLLOW_HELP)
        follow_help.setObjectName("muted")
        follow_help.setWordWrap(True)
        self.demo_note = Banner("", "warn")
        self.demo_note.setObjectName("banner")
        share_card = self._form_card("How much of each expert", CARDS["How much of each expert"])
        share_card.body.addWidget(self.follow)
        share_card.body.addWidget(follow_help)
        share_card.body.addWidget(self.demo_note)
        self.link = StrengthLink(
            self.follow,
            [
                (self.fields["reasoning_ratio"], self.fields["reasoning_scale"]),
                (self.fields["domain_ratio"], self.fields["domain_scale"]),
            ],
            self,
        )
        self.columns.add(share_card)
        self.columns.add(self._form_card("Measuring importance", CARDS["Measuring importance"]))
        self.columns.add(self._form_card("Hardware", CARDS["Hardware"]))
        self.estimate = Banner("", "info")
        self.estimate.setObjectName("estimate")
        self.estimate.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # the low-RAM mode, offered in words when the run needs more memory than is free (engine.estimate)
        self.low_ram = QPushButton("")
        self.low_ram.setObjectName("lowRamOffer")
        self.low_ram.setVisible(False)
        self.low_ram.clicked.connect(self._take_low_ram_offer)
        self._low_ram_groups = 0
        estimate_box = QWidget()
        estimate_lay = QVBoxLayout(estimate_box)
        estimate_lay.setContentsMargins(0, 0, 0, 0)
        estimate_lay.addWidget(self.estimate)
        estimate_lay.addWidget(self.low_ram, 0, Qt.AlignmentFlag.AlignLeft)
        self.columns.add(estimate_box)

        tune_card = Card("Find a good setting")
        self.auto_tune = QCheckBox(AUTO_TUNE_LABEL)
        self.auto_tune.setToolTip(AUTO_TUNE_HELP)
        auto_help = QLabel(AUTO_TUNE_HELP)
        auto_help.setObjectName("muted")
        auto_help.setWordWrap(True)
        self.tune_options = TuneOptions()
        self.tune_options.setEnabled(False)
        self.auto_tune.toggled.connect(self.tune_options.setEnabled)
        self.tune_options.changed.connect(self.search_options_changed)
        tune_card.body.addWidget(self.auto_tune)
        tune_card.body.addWidget(auto_help)
        tune_card.body.addWidget(self.tune_options)
        self.columns.add(tune_card, span=2)

        adv_card = Card()
        self.adv_toggle = QToolButton()
        self.adv_toggle.setText("▸ Advanced settings")
        self.adv_toggle.setCheckable(True)
        self.adv_toggle.setObjectName("linkButton")
        self.adv_toggle.toggled.connect(self._toggle_advanced)
        adv_card.body.addWidget(self.adv_toggle)
        self.advanced = QWidget()
        adv_form = QFormLayout(self.advanced)
        adv_form.setHorizontalSpacing(16)
        adv_form.setContentsMargins(0, 0, 0, 0)
        adv_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in ADVANCED_FIELDS:  # switches first, then labelled rows
            if isinstance(self.fields[name], QCheckBox):
                adv_form.addRow(self.fields[name])
        for name in ADVANCED_FIELDS:
            if not isinstance(self.fields[name], QCheckBox):
                adv_form.addRow(self._label(name), self.fields[name])
        self.advanced.setVisible(False)
        adv_card.body.addWidget(self.advanced)
        self.columns.add(adv_card, span=2)
        reset = QPushButton("Reset to recommended settings")
        reset.clicked.connect(self.reset_defaults)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(reset)
        lay.addWidget(self.columns)
        lay.addLayout(row)
        lay.addStretch(1)

        for w in self.fields.values():
            changed_signal(w).connect(self._on_changed)
        self.load(MergeConfig())

    # ------------------------------------------------------------------ layout helpers
    def _label(self, name: str) -> QLabel:
        label = QLabel(LABELS[name])
        label.setToolTip(TOOLTIPS.get(name, ""))
        return label

    def _form_card(self, title: str, names: tuple[str, ...]) -> Card:
        card = Card(title)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in names:
            form.addRow(self._label(name), self.fields[name])
        card.body.addLayout(form)
        card.body.addStretch(1)  # a card taller than its rows (its neighbour is taller) keeps them at the top
        return card

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.adv_toggle.setText(("▾ " if on else "▸ ") + "Advanced settings")

    def _combo(self, name: str) -> QComboBox:
        """A choice setting's widget (setting_widgets makes a combo box for every setting with choices)."""
        box = self.fields[name]
        assert isinstance(box, QComboBox), name
        return box

    def fill_devices(self) -> None:
        box = self._combo("device")
        current = box.currentData()
        box.blockSignals(True)
        box.clear()
        box.addItem("Automatic (the first GPU, else the CPU)", "auto")
        try:
            listed = devices.list_devices()
        except Exception as exc:  # noqa: BLE001 - a broken driver must not hide the settings
            log.warning("listing devices failed: %s", exc)
            listed = [devices.DeviceInfo("cpu", "CPU", None, None)]
        gpus = sum(d.id.startswith("cuda") for d in listed)
        if gpus >= 2:  # several processes, launched like `reasonany merge --devices all` (collectives.py)
            box.addItem(f"All GPUs ({gpus}, one process each)", ALL_GPUS)
        for d in listed:
            box.addItem(d.label, d.id)
        i = box.findData(current)
        box.setCurrentIndex(max(i, 0))
        box.blockSignals(False)

    # ------------------------------------------------------------------ values
    def load(self, config: MergeConfig) -> None:
        """Show a config's values (restored settings, defaults, a retry's suggestions)."""
        self._loading = True
        try:
            for name, w in self.fields.items():
                show_setting(name, w, self._shown_value(config, name))
            self.follow.setChecked(strengths_follow_shares(self.values()))
        finally:
            self._loading = False
        self._on_changed()

    @staticmethod
    def _shown_value(config: MergeConfig, name: str) -> object:
        """What a field's widget shows: the device picker shows "All GPUs" for devices = all."""
        if name == "device" and config.devices.strip() == ALL_GPUS:
            return ALL_GPUS
        return getattr(config, name)

    def values(self) -> dict[str, Any]:
        """The config values on this screen, including those the device picker sets (DEVICE_PICKED).

        Why devices is always set here: the picker is the app's one place for it ("All GPUs" or one device), so a
        devices list restored from a CLI run.yaml never silently turns an app merge into a multi-process one."""
        values = {name: setting_value(name, w) for name, w in self.fields.items()}
        all_gpus = values.get("device") == ALL_GPUS
        if all_gpus:
            values["device"] = "cuda"
        values.update(dict.fromkeys(DEVICE_PICKED, ALL_GPUS if all_gpus else ""))
        return values

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Set some fields (e.g. the out-of-memory dialog's suggestions), keep the rest.

        Returns the changes this panel has no widget for (the caller keeps them elsewhere)."""
        current = MergeConfig().replace(**self.values())
        known = {k: v for k, v in changes.items() if k in self.fields}
        self.load(current.replace(**known))
        return {k: v for k, v in changes.items() if k not in known}

    def reset_defaults(self) -> None:
        self.load(MergeConfig())

    # ------------------------------------------------------------------ the search's options
    def auto_tune_options(self) -> dict[str, Any] | None:
        """The options of "find a good setting automatically" on Merge ({"budget", "checks"}), None when it is off."""
        return self.search_options() if self.auto_tune.isChecked() else None

    def search_options(self) -> dict[str, Any]:
        """The search's options as shown here: {"budget": int, "checks": path or None}."""
        return self.tune_options.values()

    def set_search_options(self, budget: int, checks: str | None) -> None:
        """Show the search's options (without echoing search_options_changed)."""
        self.tune_options.set_values(budget, checks)

    def tune_preferences(self) -> TunePreferences:
        """What the app remembers of the search: automatic or not, the budget, the checks file."""
        options = self.search_options()
        return TunePreferences(self.auto_tune.isChecked(), int(options["budget"]), options["checks"] or "")

    def set_tune_preferences(self, prefs: TunePreferences) -> None:
        self.auto_tune.setChecked(prefs.auto)
        self.set_search_options(prefs.budget, prefs.checks)

    # ------------------------------------------------------------------ reactions
    def _on_changed(self, *_args: object) -> None:
        if self._loading:
            return
        record = REGISTRY.get(self.method.currentData())
        self.method_help.setText(record.help if record else "")
        for name in SCORED_FIELDS:  # a method without scores ignores them, unless its record says it reads them
            self.fields[name].setEnabled(record is None or record.needs_scores or name in record.uses)
        self.update_estimate()
        self.changed.emit()

    def set_demo_values(self, on: bool) -> None:
        """Say, next to the shares and strengths, that they are the demo's own setting (not for real models)."""
        self.demo_note.set_message(DEMO_VALUES_NOTE if on else "", "warn")

    def set_base_info(self, info: ModelInfo | None) -> None:
        self.base_info = info
        self.update_estimate()

    def update_estimate(self, config: MergeConfig | None = None) -> None:
        if self.base_info is None:
            self.estimate.set_message("Choose the models to see how much memory, disk and time the run needs.", "info")
            return
        config = config or MergeConfig().replace(**self.values())
        try:
            from reasonany_gui.engine.scoring.estimate import estimate_run

            try:
                device_type = devices.resolve_device(config.device).type
            except Exception:  # noqa: BLE001
                device_type = "cpu"
            est = estimate_run(config, self.base_info, self.speed_factors.get(device_type))
        except Exception as exc:  # noqa: BLE001 - an estimate is a courtesy, never a blocker
            log.info("no estimate: %s", exc)
            self.estimate.set_message("No estimate available for these settings.", "info")
            return
        device_id = str(self._combo("device").currentData())
        free = self._free_bytes(device_id)
        on_cpu = est.device_bytes == 0
        where = "on the CPU" if on_cpu else f"about {human_bytes(est.device_bytes)} of GPU memory"
        text = (
            f"<b>Estimate</b> for these settings: {where}, {human_bytes(est.host_bytes)} of RAM, "
            f"{human_bytes(est.disk_bytes)} of disk, {human_range(*est.seconds_range)} "
            + (
                "(timed from your last run on this machine)."
                if est.measured
                else "(a wide range until a first run has timed this machine)."
            )
        )
        kind = "info"
        needed = est.host_bytes if on_cpu else est.device_bytes
        if free is not None and needed > free:
            kind = "warn"
            text += (
                f"<br><b>This may not fit:</b> {human_bytes(needed)} needed, {human_bytes(free)} free. "
                "Try fewer tokens per sample, memory saving (Advanced) or another device."
            )
        ram = free if on_cpu else self._free_bytes("cpu")
        offer = self._low_ram_offer(config, ram)
        if offer is not None:
            kind = "warn"
            text += "<br><b>Memory is short.</b> " + offer.message()
        elif not on_cpu and ram is not None and est.host_bytes > ram:
            kind = "warn"
            text += (
                f"<br><b>This may not fit in RAM:</b> {human_bytes(est.host_bytes)} needed, {human_bytes(ram)} "
                "free. Close other programs."
            )
        self._low_ram_groups = offer.groups if offer is not None else 0
        self.low_ram.setText(f"Score in {offer.groups} passes" if offer is not None else "")
        self.low_ram.setToolTip(offer.message() if offer is not None else "")
        self.low_ram.setVisible(offer is not None)
        notes = list(getattr(est, "notes", []) or [])
        if notes:
            text += "<br>" + "<br>".join(f"• {n}" for n in notes)
        self.estimate.set_message(text, kind)

    def _low_ram_offer(self, config: MergeConfig, ram: int | None) -> LowRamOffer | None:
        """engine.estimate.low_ram_offer for the free RAM, None when it fits or nothing would help."""
        if ram is None or self.base_info is None:
            return None
        try:
            from reasonany_gui.engine.scoring.estimate import low_ram_offer

            device_type = devices.resolve_device(config.device).type
            return low_ram_offer(config, self.base_info, ram, self.speed_factors.get(device_type))
        except Exception as exc:  # noqa: BLE001 - an offer is a courtesy, never a blocker
            log.info("no low-RAM offer: %s", exc)
            return None

    def _take_low_ram_offer(self) -> None:
        """The user accepted: set the passes (shown under Advanced settings) and refresh the estimate."""
        if self._low_ram_groups > 1:
            self.apply({"score_groups": self._low_ram_groups})

    @staticmethod
    def _free_bytes(device_id: str) -> int | None:
        """Free memory of the chosen device (the first GPU for 'auto'), None when unknown."""
        try:
            listed = devices.list_devices()
        except Exception:  # noqa: BLE001
            return None
        if device_id in ("auto", ALL_GPUS):  # all GPUs: each process holds the models on its own GPU
            device_id = next((d.id for d in listed if d.id.startswith("cuda")), "cpu")
        return next((d.free_bytes for d in listed if d.id == device_id), None)
