"""Opening a store from the GUI: a missing one is created only when the user says so."""

from __future__ import annotations

from PySide6 import QtWidgets

from core.store import Store, StoreError, StoreMissing, StoreUnusable, move_aside, open_store


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


def ask_move_aside(parent: QtWidgets.QWidget | None, exc: StoreUnusable) -> bool:
    """Ask before a file that is not a usable store is moved aside; True for "Move it aside"."""
    box = QtWidgets.QMessageBox.question(
        parent,
        "Not a usable store",
        f"{exc.path}: {exc.verdict}.\n\nMove it aside (renamed to {exc.path.name}.corrupt-<time>, "
        "nothing deleted), so that this path can hold a new store? No leaves it as it is.",
        QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
        QtWidgets.QMessageBox.StandardButton.No,
    )
    return box == QtWidgets.QMessageBox.StandardButton.Yes


def open_or_ask(parent: QtWidgets.QWidget | None, url: str, create: bool = False) -> Store | None:
    """The store at ``url``; a missing one only after Yes to "create a new store?" (``None`` for No),
    or without asking when ``create`` (the user asked for a new store).

    A file that is not a usable database is moved aside only after Yes to "move it aside?" (the
    :class:`~core.store.StoreCorruptError` saying where is raised; No raises a
    :class:`~core.store.StoreError` and nothing changes). Other failures
    (:class:`core.store.StoreError`, ``ValueError``, ``OSError``) propagate.
    """
    try:
        return open_store(url, create=False, move_aside_corrupt=False)
    except StoreUnusable as exc:
        if not ask_move_aside(parent, exc):
            raise StoreError(f"{exc} (you chose to leave it)") from None
        raise move_aside(exc.path, exc.verdict) from None
    except StoreMissing as exc:
        if not create and not ask_create(parent, exc):
            return None
        return open_store(url, create=True)
