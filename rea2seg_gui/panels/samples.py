"""The sample queue: status / category / verdict / text filters, the sample table and counts.

The table is a :class:`QtWidgets.QTableView` over :class:`SampleTableModel`, a model over the
rows of a :class:`~core.store.listing.SampleListing` (every sample's id, external id, category,
status and question). The model keeps the ids that pass the filters in sort order and each id's
position in a dict, so finding a sample's row is one lookup; a change of a few samples updates,
removes or inserts those rows only, and the view asks for the cells it paints and no others.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.store.listing import SampleRow
from core.store.models import CATEGORIES, STATUSES
from rea2seg_gui.panels.questions import VERDICT_FILTERS
from rea2seg_gui.panels.reasoning import reasoning_filter_items

HEADERS = ("id", "category", "status", "question")
DOUBT_COLUMN = len(HEADERS)  # shown while the list is ordered by doubt
# more rows than this entering or leaving the list in one update rebuild it instead (each
# move renumbers the rows after it: up to ~5 ms at 100,000 rows; a rebuild costs 20-60 ms)
MOVES_MAX = 8

_DISPLAY = QtCore.Qt.ItemDataRole.DisplayRole
_TOOLTIP = QtCore.Qt.ItemDataRole.ToolTipRole
_NO_PARENT = QtCore.QModelIndex()


class SampleTableModel(QtCore.QAbstractTableModel):
    """The rows of ``rows`` (id → :class:`SampleRow`) that pass the filters, sorted by one column.

    ``_ids`` holds the shown ids in ascending order of the sort key (the column's value, then the
    id); a descending sort reads it from the end. ``_pos`` maps an id to its index in ``_ids``.
    """

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: Mapping[int, SampleRow] = {}
        self._ids: list[int] = []
        self._pos: dict[int, int] = {}
        self._column = 0
        self._descending = False
        self._passes: Callable[[SampleRow], bool] = lambda _r: True
        self._allowed: set[int] | None = None
        self._unfiltered = True
        self._doubt: Mapping[int, float] | None = None  # the doubt column's values

    # ------------------------------------------------------------------------ Qt's interface
    def rowCount(self, parent: QtCore.QModelIndex = _NO_PARENT) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: QtCore.QModelIndex = _NO_PARENT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(HEADERS) + (self._doubt is not None)

    def data(self, index: QtCore.QModelIndex, role: int = _DISPLAY) -> Any:
        if role != _DISPLAY and role != _TOOLTIP:
            return None
        row = self._rows.get(self.id_at(index.row()))
        if row is None:
            return None
        col = index.column()
        if col == DOUBT_COLUMN:
            d = None if self._doubt is None else self._doubt.get(row.id)
            if role == _TOOLTIP:
                return "how doubtful this sample is (0 none … 1 most); see docs/analytics.md"
            return "—" if d is None else f"{d:.3f}"
        if role == _TOOLTIP:
            return row.external_id if col == 0 else (row.question if col == 3 else None)
        return (row.id, row.category, row.status, row.question)[col]

    def headerData(  # noqa: N802 - Qt's name
        self, section: int, orientation: QtCore.Qt.Orientation, role: int = _DISPLAY
    ) -> Any:
        if orientation == QtCore.Qt.Orientation.Horizontal and role == _DISPLAY:
            return "doubt" if section == DOUBT_COLUMN else HEADERS[section]
        return None

    def sort(
        self, column: int, order: QtCore.Qt.SortOrder = QtCore.Qt.SortOrder.AscendingOrder
    ) -> None:
        """Sort by ``column`` (ties by id); the selection stays on the same samples."""
        descending = order == QtCore.Qt.SortOrder.DescendingOrder
        if (column, descending) == (self._column, self._descending):
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        held = [(self.id_at(ix.row()), ix.column()) for ix in old]
        if column != self._column:
            self._column = column
            self._ids.sort(key=self._key)
            self._pos = {sid: i for i, sid in enumerate(self._ids)}
        self._descending = descending
        new = [
            self.index(r, col) if (r := self.row_of(sid)) is not None else QtCore.QModelIndex()
            for sid, col in held
        ]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def doubt(self) -> Mapping[int, float] | None:
        """The doubt column's values (``None``: no doubt column)."""
        return self._doubt

    def set_doubt(self, scores: Mapping[int, float] | None) -> None:
        """Show a doubt column with ``scores`` (sample id → doubt in [0, 1]) and order the rows
        by it, most doubtful first; ``None`` removes the column and orders by id again."""
        self.beginResetModel()
        self._doubt = None if scores is None else dict(scores)
        self._column, self._descending = (0 if scores is None else DOUBT_COLUMN), False
        self._ids.sort(key=self._key)
        self._pos = {sid: i for i, sid in enumerate(self._ids)}
        self.endResetModel()

    # ------------------------------------------------------------------------------- rows
    def id_at(self, row: int) -> int | None:
        n = len(self._ids)
        if not 0 <= row < n:
            return None
        return self._ids[n - 1 - row if self._descending else row]

    def row_of(self, sample_id: int | None) -> int | None:
        i = self._pos.get(sample_id)  # type: ignore[arg-type]
        if i is None:
            return None
        return len(self._ids) - 1 - i if self._descending else i

    def ids(self) -> list[int]:
        return self._ids[::-1] if self._descending else list(self._ids)

    def _key(self, sample_id: int) -> tuple[Any, int] | int:
        if self._column == 0:
            return sample_id
        if self._column == DOUBT_COLUMN:  # most doubtful first; samples without a value last
            d = (self._doubt or {}).get(sample_id)
            return (1.0 if d is None else -float(d), sample_id)
        return (self._rows[sample_id][self._column + 1], sample_id)

    def _shown(self, sample_id: int) -> bool:
        row = self._rows.get(sample_id)
        return (
            row is not None
            and (self._allowed is None or sample_id in self._allowed)
            and self._passes(row)
        )

    def set_filter(
        self,
        status: str | None = None,
        category: str | None = None,
        text: str | None = None,
        allowed: set[int] | None = None,
    ) -> None:
        """Show the rows with this status / category, whose question or external id holds
        ``text`` (case-insensitive) and whose id is in ``allowed`` (``None``: no condition).
        Takes effect at the next :meth:`reset`."""
        needle = text.casefold() if text else None

        def passes(r: SampleRow) -> bool:
            return (
                (status is None or r.status == status)
                and (category is None or r.category == category)
                and (
                    needle is None
                    or needle in r.question.casefold()
                    or needle in r.external_id.casefold()
                )
            )

        self._passes = passes
        self._allowed = allowed
        self._unfiltered = allowed is None and status is None and category is None and not needle

    def reset(self, rows: Mapping[int, SampleRow]) -> None:
        """Show ``rows`` (held by reference: the caller updates it and calls :meth:`update`)."""
        self.beginResetModel()
        self._rows = rows
        if self._unfiltered:
            self._ids = list(rows)
        else:
            passes, allowed = self._passes, self._allowed
            self._ids = [
                sid for sid, r in rows.items() if (allowed is None or sid in allowed) and passes(r)
            ]
        if self._column == 0:
            self._ids.sort()  # ids arrive in order: a linear pass
        else:
            self._ids.sort(key=self._key)
        self._pos = {sid: i for i, sid in enumerate(self._ids)}
        self.endResetModel()

    def update(
        self,
        changed: Iterable[int],
        removed: Iterable[int] = (),
        allowed: Mapping[int, bool] | None = None,
    ) -> None:
        """The rows of ``changed`` ids are new or changed in ``rows``, those of ``removed`` are
        gone; ``allowed`` says for some ids whether they now pass the id condition."""
        if allowed and self._allowed is not None:
            for sid, ok in allowed.items():
                (self._allowed.add if ok else self._allowed.discard)(sid)
        changed, removed = list(changed), list(removed)
        moves = sum(sid in self._pos for sid in removed) + sum(
            (sid in self._pos) != self._shown(sid) for sid in changed
        )
        if len(changed) + len(removed) > 1 and (self._column != 0 or moves > MOVES_MAX):
            # Several rows at once: sorted by a column whose values changed, one row's place
            # would be searched among neighbours that are themselves out of place; and each
            # move renumbers the rows after it. One reset is then both right and cheaper.
            self.reset(self._rows)
            return
        for sid in removed:
            if sid in self._pos:
                self._remove(self._pos[sid])
        for sid in changed:
            i = self._pos.get(sid)
            shown = self._shown(sid)
            if i is not None and shown and self._in_order(i):
                r = self.row_of(sid)
                self.dataChanged.emit(self.index(r, 0), self.index(r, len(HEADERS) - 1))
                continue
            if i is not None:
                self._remove(i)
            if shown:
                self._insert(sid)

    def _in_order(self, i: int) -> bool:
        """Whether ``_ids[i]``'s key still lies between its neighbours' keys."""
        k = self._key(self._ids[i])
        return (i == 0 or self._key(self._ids[i - 1]) <= k) and (
            i == len(self._ids) - 1 or k <= self._key(self._ids[i + 1])
        )

    def _view_row(self, i: int, n: int) -> int:
        return n - 1 - i if self._descending else i

    def _remove(self, i: int) -> None:
        r = self._view_row(i, len(self._ids))
        self.beginRemoveRows(_NO_PARENT, r, r)
        del self._pos[self._ids.pop(i)]
        self._reindex(i)
        self.endRemoveRows()

    def _insert(self, sample_id: int) -> None:
        i = bisect.bisect_left(self._ids, self._key(sample_id), key=self._key)
        r = self._view_row(i, len(self._ids) + 1)
        self.beginInsertRows(_NO_PARENT, r, r)
        self._ids.insert(i, sample_id)
        self._reindex(i)
        self.endInsertRows()

    def _reindex(self, start: int) -> None:
        ids, pos = self._ids, self._pos
        for j in range(start, len(ids)):
            pos[ids[j]] = j


class SamplesPanel(QtWidgets.QWidget):
    """Shows the rows it is given; emits ``filters_changed`` and ``sample_chosen(id)``.

    The controller hands it every sample's row (:meth:`show_listing`) and then the ids that
    changed (:meth:`apply_changes`); the panel filters and sorts them.
    """

    filters_changed = QtCore.Signal()
    sample_chosen = QtCore.Signal(int)
    import_requested = QtCore.Signal(str)  # "reasonseg" | "sgdr"

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
        self.model = SampleTableModel(self)
        t = self.table = QtWidgets.QTableView()
        t.setModel(self.model)
        t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setWordWrap(False)
        vh = t.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(22)
        t.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((40, 84, 66)):
            t.setColumnWidth(col, width)
        t.setSortingEnabled(True)
        t.sortByColumn(0, QtCore.Qt.SortOrder.AscendingOrder)
        lv.addWidget(t, 1)
        lv.addWidget(self._empty_state())
        self.only_label, self.only_clear = self._bar(lv, "Show all", self.clear_only)
        self.doubt_label, self.doubt_clear = self._bar(lv, "Order by id", self.clear_doubt)
        self._only: set[int] | None = None
        self._only_text: str | None = None
        self.counts_label = QtWidgets.QLabel()
        self.counts_label.setWordWrap(True)
        lv.addWidget(self.counts_label)
        self._current: int | None = None
        self._quiet = False  # selection changes made here are not the user's choice
        for combo in (self.status_filter, self.category_filter, self.verdict_filter):
            combo.currentIndexChanged.connect(lambda _: self.filters_changed.emit())
        self.text_filter.textChanged.connect(lambda _: self.filters_changed.emit())
        t.selectionModel().selectionChanged.connect(self._on_select)

    def _empty_state(self) -> QtWidgets.QWidget:
        """What an empty list means and what to do: import into an empty store, or clear the
        filters that hide every sample."""
        box = self.empty_box = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        self.empty_label = QtWidgets.QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        v.addWidget(self.empty_label)
        row = QtWidgets.QHBoxLayout()
        self.empty_buttons: dict[str, QtWidgets.QPushButton] = {}
        for key, label, fn in (
            (
                "reasonseg",
                "Import a ReasonSeg folder…",
                lambda: self.import_requested.emit("reasonseg"),
            ),
            ("sgdr", "Import an SGDR file…", lambda: self.import_requested.emit("sgdr")),
            ("clear", "Clear the filters", self.clear_filters),
        ):
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(fn)
            row.addWidget(b)
            self.empty_buttons[key] = b
        v.addLayout(row)
        box.hide()
        return box

    def clear_filters(self) -> None:
        for combo in (self.status_filter, self.category_filter, self.verdict_filter):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self.text_filter.blockSignals(True)
        self.text_filter.clear()
        self.text_filter.blockSignals(False)
        self._only, self._only_text = None, None  # the metrics tab's "only these samples" too
        self.only_label.bar.setVisible(False)
        self.filters_changed.emit()

    def _show_empty_state(self, total: int) -> None:
        empty = self.row_count() == 0
        self.empty_box.setVisible(empty)
        if not empty:
            return
        no_store_samples = total == 0
        self.empty_label.setText(
            "This store has no samples yet: import a dataset (also in the File menu), or open "
            "another store (File → Open store…)."
            if no_store_samples
            else f"No sample passes the filters ({total} in the store): clear or change them."
        )
        for key in ("reasonseg", "sgdr"):
            self.empty_buttons[key].setVisible(no_store_samples)
        self.empty_buttons["clear"].setVisible(not no_store_samples)

    def _bar(self, layout: QtWidgets.QVBoxLayout, button: str, slot) -> tuple:
        row = QtWidgets.QWidget()
        h = QtWidgets.QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        label = QtWidgets.QLabel()
        label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        label.setWordWrap(True)
        b = QtWidgets.QPushButton(button)
        b.clicked.connect(slot)
        h.addWidget(label, 1)
        h.addWidget(b)
        row.setVisible(False)
        layout.addWidget(row)
        label.bar = row  # type: ignore[attr-defined]
        return label, b

    # ------------------------------------------------------------------- analytics views
    def show_only(self, ids: Collection[int], label: str) -> None:
        """Show only the samples ``ids`` (e.g. a failure class's, from the metrics tab), besides
        the other filters, until :meth:`clear_only`; emits ``filters_changed``."""
        self._only, self._only_text = {int(i) for i in ids}, label
        self.only_label.setText(f"Only {len(self._only)} samples: {label}")
        self.only_label.bar.setVisible(True)
        self.filters_changed.emit()

    def clear_only(self) -> None:
        if self._only is None:
            return
        self._only, self._only_text = None, None
        self.only_label.bar.setVisible(False)
        self.filters_changed.emit()

    def forget_analytics(self) -> None:
        """Drop the id condition and the doubt order without signalling (another store)."""
        self._only, self._only_text = None, None
        self.only_label.bar.setVisible(False)
        if self.model.doubt() is not None:
            self.model.set_doubt(None)
            self.table.horizontalHeader().setSortIndicator(0, QtCore.Qt.SortOrder.AscendingOrder)
        self.doubt_label.bar.setVisible(False)

    def only_ids(self) -> set[int] | None:
        """The ids :meth:`show_only` keeps (``None``: no such condition)."""
        return self._only

    def set_doubt(self, scores: Mapping[int, float], label: str) -> None:
        """Order the list by ``scores`` (most doubtful first) with a doubt column
        (:mod:`core.analytics.doubt`); the selection stays on the same sample."""
        keep = self._current
        self._quietly(lambda: self.model.set_doubt(scores))
        self.table.horizontalHeader().setSortIndicator(
            DOUBT_COLUMN, QtCore.Qt.SortOrder.AscendingOrder
        )
        self.doubt_label.setText(f"Ordered by doubt: {label} ({len(scores)} samples scored)")
        self.doubt_label.bar.setVisible(True)
        self._reselect(keep)

    def clear_doubt(self) -> None:
        keep = self._current
        self._quietly(lambda: self.model.set_doubt(None))
        self.table.horizontalHeader().setSortIndicator(0, QtCore.Qt.SortOrder.AscendingOrder)
        self.doubt_label.bar.setVisible(False)
        self._reselect(keep)

    def _reselect(self, keep: int | None) -> None:
        r = self.row_of(keep)
        if r is not None:
            self._quietly(lambda: self._select_only(r))

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
            "only": self._only_text,
        }

    # ------------------------------------------------------------------------------ rows
    def show_listing(
        self,
        rows: Mapping[int, SampleRow],
        counts: dict[str, int],
        allowed: Collection[int] | None = None,
    ) -> None:
        """Show the rows of ``rows`` (id → row, held by reference) that pass the filters and,
        unless ``allowed`` is ``None``, whose id is in ``allowed`` (the verdict filter's ids).
        The current sample stays selected when it is still shown."""
        f = self.filters()
        self.model.set_filter(
            f["status"], f["category"], f["text"], None if allowed is None else set(allowed)
        )
        self._quietly(lambda: self.model.reset(rows))
        self._after_update(counts)

    def apply_changes(
        self,
        changed: Sequence[int],
        removed: Sequence[int],
        counts: dict[str, int],
        allowed: Mapping[int, bool] | None = None,
    ) -> None:
        """The rows of ``changed`` ids are new or changed, those of ``removed`` gone; only those
        rows are redrawn, moved, added or taken out."""
        if changed or removed:
            self._quietly(lambda: self.model.update(changed, removed, allowed))
        self._after_update(counts)

    def _after_update(self, counts: dict[str, int]) -> None:
        r = self.row_of(self._current) if self._current is not None else None
        if r is not None and self._current not in self.selected_ids():
            self._quietly(lambda: self._select_only(r))
        self.counts_label.setText(
            f"{self.row_count()} shown · " + " · ".join(f"{k} {v}" for k, v in counts.items())
        )
        self._show_empty_state(sum(counts.values()))

    def _quietly(self, fn: Callable[[], None]) -> None:
        was, self._quiet = self._quiet, True
        try:
            fn()
        finally:
            self._quiet = was

    def row_count(self) -> int:
        return self.model.rowCount()

    def ids(self) -> list[int]:
        """Sample ids in display order."""
        return self.model.ids()

    def row_of(self, sample_id: int | None) -> int | None:
        return self.model.row_of(sample_id)

    def id_at(self, row: int) -> int | None:
        return self.model.id_at(row)

    def cell_text(self, row: int, column: int) -> str:
        """The text shown in one cell (columns: id, category, status, question)."""
        v = self.model.data(self.model.index(row, column))
        return "" if v is None else str(v)

    def neighbour(self, sample_id: int | None, delta: int) -> int | None:
        """The id ``delta`` rows from ``sample_id`` (clamped; the first row when it is not shown)."""
        n = self.row_count()
        if n == 0:
            return None
        r = self.row_of(sample_id)
        r = 0 if r is None else min(max(r + delta, 0), n - 1)
        return self.id_at(r)

    def next_with_status(self, sample_id: int | None, status: str) -> int | None:
        """The first row below ``sample_id``'s (wrapping to the top; from the top when it is not
        shown) whose status is ``status``, other than ``sample_id``; ``None`` when there is none."""
        ids, rows = self.ids(), self.model._rows
        here = self.row_of(sample_id)
        start = 0 if here is None else here + 1
        for sid in ids[start:] + ids[:start]:
            if sid != sample_id and rows[sid].status == status:
                return sid
        return None

    def current_id(self) -> int | None:
        return self._current

    def select(self, sample_id: int, scroll: bool = True, emit: bool = True) -> bool:
        """Select ``sample_id``'s row and emit ``sample_chosen`` when it changes (unless ``emit`` is
        False: the caller shows it already); False when the row is not shown."""
        r = self.row_of(sample_id)
        if r is None:
            return False
        self._quietly(lambda: self._select_only(r))
        if scroll:
            self.table.scrollTo(self.model.index(r, 0))
        if sample_id != self._current:
            self._current = sample_id
            if emit:
                self.sample_chosen.emit(sample_id)
        return True

    def _select_only(self, r: int) -> None:
        """Select exactly row ``r`` (``selectRow`` would add to the selection while Ctrl is held)."""
        flags = QtCore.QItemSelectionModel.SelectionFlag
        self.table.selectionModel().setCurrentIndex(
            self.model.index(r, 0), flags.ClearAndSelect | flags.Rows
        )

    def select_row(self, row: int) -> None:
        sid = self.id_at(row)
        if sid is not None:
            self.select(sid)

    def forget_current(self) -> None:
        self._current = None

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedIndexes()})
        return [sid for r in rows if (sid := self.id_at(r)) is not None]

    def _on_select(self, *_: object) -> None:
        if self._quiet:
            return
        ids = self.selected_ids()
        if ids and ids[0] != self._current:
            self._current = ids[0]
            self.sample_chosen.emit(ids[0])
