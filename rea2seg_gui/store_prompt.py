"""Opening a store from the GUI: a missing one is created only when the user says so."""

from __future__ import annotations

from PySide6 import QtWidgets

from core.store import Store, StoreMissing, open_store


def ask_create(parent: QtWidgets.QWidget | None, exc: StoreMissing) -> bool:
    """Ask "create a new store?" for a store that does not exist; True for Yes."""
    box = QtWidgets.QMessageBox.question(
        parent,
        "Create a new store?",
        f"{exc}\n\nCreate a new, empty store there?",
        QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
        QtWidgets.QMessageBox.StandardButton.No,
    )
    return box == QtWidgets.QMessageBox.StandardButton.Yes


def open_or_ask(parent: QtWidgets.QWidget | None, url: str, create: bool = False) -> Store | None:
    """The store at ``url``; a missing one only after Yes to "create a new store?" (``None`` for No),
    or without asking when ``create`` (the user asked for a new store).

    Other failures (:class:`core.store.StoreError`, ``ValueError``, ``OSError``) propagate.
    """
    try:
        return open_store(url, create=False)
    except StoreMissing as exc:
        if not create and not ask_create(parent, exc):
            return None
        return open_store(url, create=True)
