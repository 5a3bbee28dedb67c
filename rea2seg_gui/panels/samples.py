"""The sample queue: status / category / verdict / text filters, the sample table and counts."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets

from core.store.models import CATEGORIES, STATUSES
from rea2seg_gui.panels.questions import VERDICT_FILTERS
from rea2seg_gui.panels.reasoning import reasoning_filter_items

ID_ROLE = QtCore.Qt.ItemDataRole.DisplayRole


class SamplesPanel(QtWidgets.QWidget):
    """Draws the rows it is given; emits ``filters_changed`` and ``sample_chosen(id)``.

    A row is ``(id, external_id, category, status, question)``.
    """

    filters_changed = QtCore.Signal()
    sample_chosen = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lv = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.status_filter = QtWidgets.QComboBox()
        self.status_filter.addItems(["all statuses", *STATUSES])
        self.category_filter = QtWidgets.QComboBox()
        self.category_filter.addItems(["all categories", *CATEGORIES])
        self.verdict_filter = QtWidgets.QComboBox()
        self.verdict_filter.addItems(["all verdicts", *VERDICT_FILTERS, *reasoning_filter_items()])
        self.verdict_filter.setToolTip(
            "The verifier's verdict on a generated question, or the state of a training "
            "sample's reasoning"
        )
        for w in (self.status_filter, self.category_filter, self.verdict_filter):
            row.addWidget(w)
        lv.addLayout(row)
        self.text_filter = QtWidgets.QLineEdit()
        self.text_filter.setPlaceholderText("Filter by question or id…")
        self.text_filter.setClearButtonEnabled(True)
        lv.addWidget(self.text_filter)
        t = self.table = QtWidgets.QTableWidget(0, 4)
        t.setHorizontalHeaderLabels(["id", "category", "status", "question"])
        t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        t.verticalHeader().setVisible(False)
        t.verticalHeader().setDefaultSectionSize(22)
        t.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((40, 84, 66)):
            t.setColumnWidth(col, width)
        t.setSortingEnabled(True)
        t.sortByColumn(0, QtCore.Qt.SortOrder.AscendingOrder)
        lv.addWidget(t, 1)
        self.counts_label = QtWidgets.QLabel()
        self.counts_label.setWordWrap(True)
        lv.addWidget(self.counts_label)
        self._current: int | None = None
        for combo in (self.status_filter, self.category_filter, self.verdict_filter):
            combo.currentIndexChanged.connect(lambda _: self.filters_changed.emit())
        self.text_filter.textChanged.connect(lambda _: self.filters_changed.emit())
        t.itemSelectionChanged.connect(self._on_select)

    # ---------------------------------------------------------------------------- filters
    def filters(self) -> dict[str, str | None]:
        """``status``, ``category``, ``verdict`` (``None`` = all) and ``text`` (``None`` = no text)."""

        def pick(combo: QtWidgets.QComboBox) -> str | None:
            v = combo.currentText()
            return None if v.startswith("all") else v

        return {
            "status": pick(self.status_filter),
            "category": pick(self.category_filter),
            "verdict": pick(self.verdict_filter),
            "text": self.text_filter.text().strip() or None,
        }

    # ------------------------------------------------------------------------------ rows
    def show_rows(
        self, rows: Sequence[tuple[int, str, str, str, str]], counts: dict[str, int]
    ) -> None:
        """Replace the rows (keeping sort order and the current selection when it is still shown)."""
        t = self.table
        t.blockSignals(True)
        t.setSortingEnabled(False)
        t.setRowCount(len(rows))
        for r, (sid, ext, c, st, q) in enumerate(rows):
            it = QtWidgets.QTableWidgetItem()
            it.setData(ID_ROLE, sid)
            it.setToolTip(ext)
            t.setItem(r, 0, it)
            for col, val in ((1, c), (2, st), (3, q)):
                item = QtWidgets.QTableWidgetItem(val)
                if col == 3:
                    item.setToolTip(q)
                t.setItem(r, col, item)
        t.setSortingEnabled(True)
        r = self.row_of(self._current) if self._current is not None else None
        if r is not None:
            self._select_only(r)
        t.blockSignals(False)
        self.counts_label.setText(
            f"{len(rows)} shown · " + " · ".join(f"{k} {v}" for k, v in counts.items())
        )

    def set_status(self, sample_id: int, status: str) -> None:
        """Update one row's status in place (no re-query, no re-sort)."""
        r = self.row_of(sample_id)
        if r is not None:
            self.table.item(r, 2).setText(status)

    def row_count(self) -> int:
        return self.table.rowCount()

    def ids(self) -> list[int]:
        """Sample ids in display order."""
        return [self.table.item(r, 0).data(ID_ROLE) for r in range(self.table.rowCount())]

    def row_of(self, sample_id: int | None) -> int | None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(ID_ROLE) == sample_id:
                return r
        return None

    def id_at(self, row: int) -> int | None:
        it = self.table.item(row, 0)
        return None if it is None else it.data(ID_ROLE)

    def neighbour(self, sample_id: int | None, delta: int) -> int | None:
        """The id ``delta`` rows from ``sample_id`` (clamped; the first row when it is not shown)."""
        n = self.table.rowCount()
        if n == 0:
            return None
        r = self.row_of(sample_id)
        r = 0 if r is None else min(max(r + delta, 0), n - 1)
        return self.id_at(r)

    def current_id(self) -> int | None:
        return self._current

    def select(self, sample_id: int, scroll: bool = True, emit: bool = True) -> bool:
        """Select ``sample_id``'s row and emit ``sample_chosen`` when it changes (unless ``emit`` is
        False: the caller shows it already); False when the row is not shown."""
        r = self.row_of(sample_id)
        if r is None:
            return False
        self.table.blockSignals(True)
        self._select_only(r)
        self.table.blockSignals(False)
        if scroll:
            self.table.scrollToItem(self.table.item(r, 0))
        if sample_id != self._current:
            self._current = sample_id
            if emit:
                self.sample_chosen.emit(sample_id)
        return True

    def _select_only(self, r: int) -> None:
        """Select exactly row ``r`` (``selectRow`` would add to the selection while Ctrl is held)."""
        flags = QtCore.QItemSelectionModel.SelectionFlag
        sm = self.table.selectionModel()
        idx = self.table.model().index(r, 0)
        sm.setCurrentIndex(idx, flags.ClearAndSelect | flags.Rows)

    def select_row(self, row: int) -> None:
        sid = self.id_at(row)
        if sid is not None:
            self.select(sid)

    def forget_current(self) -> None:
        self._current = None

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).data(ID_ROLE) for r in rows]

    def _on_select(self) -> None:
        ids = self.selected_ids()
        if ids and ids[0] != self._current:
            self._current = ids[0]
            self.sample_chosen.emit(ids[0])
