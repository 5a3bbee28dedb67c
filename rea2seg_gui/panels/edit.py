"""The edit panel: tools (pan / brush / eraser / polygon / SAM clicks / SAM box), brush size, SAM options,
clean-up."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from rea2seg_gui.panels.text_prompt import TextPromptBox

TOOLS = (
    ("none", "Pan (Esc)"),
    ("brush", "Brush (B)"),
    ("eraser", "Eraser (E)"),
    ("polygon", "Polygon (L)"),
    ("sam", "SAM clicks (S)"),
    ("box", "SAM box (X)"),
)
SAM_PROMPTS = (
    ("none", "no mask prompt"),
    ("current", "current mask (edited, else ground truth)"),
    ("candidate", "selected candidate"),
    ("gt", "ground truth"),
)


class EditPanel(QtWidgets.QWidget):
    """Emits ``tool_chosen(name)``, ``brush_changed(radius)``, ``sam_prompt_changed``,
    ``mask_only_requested`` and ``cleanup_requested("fill_holes" | "remove_specks" | "clear")``."""

    tool_chosen = QtCore.Signal(str)
    brush_changed = QtCore.Signal(int)
    sam_prompt_changed = QtCore.Signal()
    mask_only_requested = QtCore.Signal()
    cleanup_requested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        f = QtWidgets.QFormLayout(self)
        self.tool_group = QtWidgets.QButtonGroup(self)
        grid = QtWidgets.QGridLayout()
        self.tool_buttons: dict[str, QtWidgets.QRadioButton] = {}
        for i, (name, label) in enumerate(TOOLS):
            rb = QtWidgets.QRadioButton(label)
            rb.setObjectName(f"tool_{name}")
            rb.setChecked(name == "none")
            rb.toggled.connect(lambda on, n=name: on and self.tool_chosen.emit(n))
            self.tool_group.addButton(rb)
            self.tool_buttons[name] = rb
            grid.addWidget(rb, i // 3, i % 3)
        f.addRow(grid)
        self.brush_size = QtWidgets.QSpinBox()
        self.brush_size.setRange(1, 200)
        self.brush_size.setValue(8)
        self.brush_size.valueChanged.connect(self.brush_changed)
        f.addRow("Brush radius (px)  [ / ]", self.brush_size)
        f.addRow(QtWidgets.QLabel("<b>SAM click refinement</b>"))
        self.sam_preset = QtWidgets.QComboBox()
        self.sam_preset.setToolTip(
            "The SAM of this preset; greyed-out presets are not configured (hover for why)"
        )
        f.addRow("SAM from preset", self.sam_preset)
        self.sam_prompt = QtWidgets.QComboBox()
        for key, label in SAM_PROMPTS:
            self.sam_prompt.addItem(label, key)
        self.sam_prompt.setCurrentIndex(1)
        self.sam_prompt.setToolTip(
            "A mask given to SAM with the clicks (fixed for the click session; not used while a box is drawn)"
        )
        self.sam_prompt.currentIndexChanged.connect(lambda _: self.sam_prompt_changed.emit())
        f.addRow("Mask prompt", self.sam_prompt)
        self.mask_only_button = QtWidgets.QPushButton("Re-prompt SAM with this mask alone (M)")
        self.mask_only_button.clicked.connect(self.mask_only_requested)
        f.addRow(self.mask_only_button)
        f.addRow(QtWidgets.QLabel("<b>Clean up</b>"))
        row = QtWidgets.QHBoxLayout()
        self.cleanup_buttons: dict[str, QtWidgets.QPushButton] = {}
        for label, what in (
            ("Fill holes", "fill_holes"),
            ("Remove specks", "remove_specks"),
            ("Clear", "clear"),
        ):
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(lambda _=False, w=what: self.cleanup_requested.emit(w))
            row.addWidget(b)
            self.cleanup_buttons[what] = b
        f.addRow(row)
        self.speck_area = QtWidgets.QSpinBox()
        self.speck_area.setRange(1, 100000)
        self.speck_area.setValue(20)
        f.addRow("Speck area (px)", self.speck_area)
        self.text_prompt = TextPromptBox()  # SAM 3: every instance of a typed concept
        f.addRow(self.text_prompt)
        hint = QtWidgets.QLabel(
            "Every stroke, polygon and SAM click is saved at once, with the prompts "
            "that produced it; Ctrl+Z undoes it."
        )
        hint.setWordWrap(True)
        f.addRow(hint)
        self.state_label = QtWidgets.QLabel("")
        self.state_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.state_label.setWordWrap(True)
        f.addRow(self.state_label)

    def choose_tool(self, name: str) -> None:
        """Check the tool's button (emits ``tool_chosen`` when it changes)."""
        self.tool_buttons[name].setChecked(True)

    def tool(self) -> str:
        return next(n for n, b in self.tool_buttons.items() if b.isChecked())

    def brush_radius(self) -> int:
        return self.brush_size.value()

    def set_brush_radius(self, r: int) -> None:
        self.brush_size.setValue(max(1, r))

    def sam_preset_name(self) -> str:
        return self.sam_preset.currentText()

    def set_sam_preset(self, name: str) -> None:
        self.sam_preset.setCurrentText(name)

    def sam_prompt_key(self) -> str:
        return self.sam_prompt.currentData()

    def set_sam_prompt(self, key: str) -> None:
        self.sam_prompt.setCurrentIndex(self.sam_prompt.findData(key))

    def min_speck_area(self) -> int:
        return self.speck_area.value()

    def show_state(self, text: str) -> None:
        self.state_label.setText(text)

    def state(self) -> str:
        return self.state_label.text()
