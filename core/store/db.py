"""Opening a store: SQLite by default (WAL, foreign keys, busy timeout), any SQLAlchemy URL.

One :meth:`Store.session` per user action: a short transaction that commits on exit. On
SQLite, write transactions start with ``BEGIN IMMEDIATE`` so two processes reviewing the same
file serialise instead of failing with "database is locked" half-way through.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


class StoreError(RuntimeError):
    """The store could not be opened or used; the message says why and what to do."""


class StoreCorruptError(StoreError):
    """The database file is corrupt. It was moved aside (``moved_to``); nothing was replaced."""

    def __init__(self, message: str, moved_to: Path | None) -> None:
        super().__init__(message)
        self.moved_to = moved_to


class StoreUnusable(StoreError):
    """The file is not a usable database (``verdict`` says why) and was left where it is, as the
    caller asked (``open_store(..., move_aside=False)``); :func:`move_aside` moves it."""

    def __init__(self, message: str, path: Path, verdict: str) -> None:
        super().__init__(message)
        self.path, self.verdict = path, verdict


class StoreFull(StoreError):
    """The disk (or the database server's) is full: the change in flight was rolled back."""


class StoreGone(StoreError):
    """The store's file was deleted or replaced while it was open: nothing more is written."""


class StoreMissing(StoreError):
    """No store at that path (or an empty database) and the caller asked not to create one.

    ``path`` is the missing file (``None`` for a URL): a GUI can offer to create it there.
    """

    def __init__(self, message: str, path: Path | None) -> None:
        super().__init__(message)
        self.path = path


def store_url(url_or_path: str | Path) -> str:
    """A SQLAlchemy URL for a path (SQLite) or an URL given as is."""
    s = str(url_or_path)
    if "://" in s:
        return s
    return f"sqlite:///{Path(s).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Autocommit at the driver level: SQLAlchemy's begin hook below issues BEGIN itself.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Store:
    """An open store. Thread-safe to share; sessions are not (one per action, per thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        db = engine.url.database if self.is_sqlite else None
        self._file = (
            Path(db).absolute() if db and db != ":memory:" and not db.startswith("file:") else None
        )
        self._identity = _file_identity(self._file) if self._file else None

    def _check_file(self) -> None:
        """Refuse to commit into a file that is no longer the store's: a SQLite connection goes
        on writing into a deleted file, and every change would be lost while reported saved."""
        if self._file is not None and (
            self._identity is None or _file_identity(self._file) != self._identity
        ):
            raise StoreGone(
                f"{self._file}: the store file was deleted or replaced while in use; the last "
                "change was not saved and nothing more is written"
            )

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """One transaction; commits on exit, rolls back on error.

        ``write=True`` takes SQLite's write lock up front (``BEGIN IMMEDIATE``).
        """
        with self._sessions() as s:
            if self.is_sqlite:
                s.connection(
                    execution_options={"sqlite_begin": "IMMEDIATE" if write else "DEFERRED"}
                )
            try:
                yield s
                if write:
                    self._check_file()
                s.commit()
            except BaseException as exc:
                s.rollback()
                if isinstance(exc, DBAPIError) and _is_full(exc):
                    where = self._file or self.url
                    raise StoreFull(
                        f"{where}: the disk is full; the last change was not saved (what was "
                        "saved before stays). Free some space and run the command again"
                    ) from None
                raise

    def run(self, action: Callable[[Session], T], *, write: bool = True, retries: int = 5) -> T:
        """Run ``action(session)`` in one transaction, retrying when the database is busy."""
        delay = 0.05
        for attempt in range(retries + 1):
            try:
                with self.session(write=write) as s:
                    return action(s)
            except OperationalError as exc:
                if attempt == retries or not _is_busy(exc):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_full(exc: DBAPIError) -> bool:
    """SQLite's SQLITE_FULL (or an I/O error from a write that found no space) and
    PostgreSQL's disk_full (SQLSTATE 53100)."""
    orig = exc.orig
    name = getattr(orig, "sqlite_errorname", "") or ""
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    msg = str(orig).lower()
    return (
        name.startswith("SQLITE_FULL")
        or state == "53100"
        or "database or disk is full" in msg
        or "no space left on device" in msg
    )


def _is_busy(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg or "could not serialize" in msg or "deadlock" in msg


def _make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # noqa: ANN001
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _script_directory():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


def _head_revision() -> str:
    """The newest revision among the migration scripts (read from them, never hard-coded)."""
    return _script_directory().get_current_head() or ""


def _known_revisions() -> set[str]:
    return {rev.revision for rev in _script_directory().walk_revisions()}


def schema_number(revision: str | None) -> str:
    """The schema number shown to users: ``"0002_x"`` → ``"2"``; other ids as they are."""
    if not revision:
        return "none"
    m = re.match(r"0*(\d+)", revision)
    return m.group(1) if m else revision


@functools.cache
def schema_version() -> str:
    """The schema this version of rea2seg writes: the head of ``migrations/versions``."""
    return schema_number(_head_revision())


def _schema_state(engine: Engine) -> tuple[str | None, set[str]]:
    """(revision in ``alembic_version`` or None, names of the tables present)."""
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables:
            return None, tables
        rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return rev, tables


# SQLite's own verdicts that a file is not a usable database (sqlite3 error names).
_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_BUSY_CODES = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


def _sqlite_code(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", None) or ""
    # extended codes (SQLITE_CORRUPT_VTAB, SQLITE_IOERR_READ, …) keep their primary prefix
    for primary in (*_CORRUPT_CODES, *_BUSY_CODES):
        if name == primary or name.startswith(primary + "_"):
            return primary
    return name or "unknown"


def _move_aside(path: Path, verdict: str) -> StoreCorruptError:
    """Move a file that is not a usable database (and its -wal/-shm) aside; the error to raise.

    ``verdict`` completes "``path``: …", e.g. "SQLite reports the database is corrupt (…)".
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        os.rename(path, moved)
    except OSError as exc:
        return StoreCorruptError(
            f"{path}: {verdict}; it could not be moved aside "
            f"({exc.strerror or exc}) and was left as it is. Recover data from a backup.",
            None,
        )
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            with contextlib.suppress(OSError):
                os.rename(side, moved.with_name(moved.name + suffix))
    return StoreCorruptError(
        f"{path}: {verdict}. It was moved aside to {moved}; "
        f"opening {path} again starts an empty store. Recover data from {moved} or a backup.",
        moved,
    )


def move_aside(path: Path, verdict: str) -> StoreCorruptError:
    """Move a file that is not a usable database aside (``<name>.corrupt-<time>``, with its
    -wal/-shm); the :class:`StoreCorruptError` that says where (not raised)."""
    return _move_aside(path, verdict)


def _unusable(path: Path, verdict: str, move: bool) -> StoreError:
    if move:
        return _move_aside(path, verdict)
    return StoreUnusable(f"{path}: {verdict}; nothing was moved or changed", path, verdict)


def _check_sqlite_file(
    path: Path, *, create: bool, move: bool = True
) -> tuple[str | None, set[str]] | None:
    """Refuse paths that are not database files; move aside only what SQLite calls corrupt.

    A directory, an unreadable file or an I/O error raises :class:`StoreError` and the path is
    left untouched. A missing file raises :class:`StoreMissing` unless ``create``. A file
    SQLite itself reports as malformed (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``, or a failed
    ``quick_check``) is moved aside and :class:`StoreCorruptError` says where; with ``move``
    False it is left where it is and :class:`StoreUnusable` is raised instead.

    Returns (revision, tables) read without writing anything, or ``None`` when there is no file
    yet, it is empty, or another process holds it.
    """
    if not path.parent.is_dir():
        raise StoreError(f"{path}: folder {path.parent} does not exist")
    try:
        st = path.stat()
    except FileNotFoundError:
        if create:
            return None
        raise StoreMissing(f"{path}: no store there (nothing was created)", path) from None
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot read the store ({exc.strerror or exc}); nothing was changed"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(
            f"{path}: is a folder, not a store file; give a file path such as {path / 'store.sqlite'}"
        )
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path}: not a regular file; nothing was changed")
    if not os.access(path, os.R_OK):
        raise StoreError(f"{path}: permission denied (cannot read the store); nothing was changed")
    if st.st_size == 0:
        if create:
            return None
        raise StoreMissing(f"{path}: empty file, no store in it (nothing was created)", path)
    with open(path, "rb") as f:
        magic = f.read(16)
    if magic != b"SQLite format 3\x00":
        raise _unusable(path, "not an SQLite database (no SQLite header)", move)
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            row = con.execute("PRAGMA quick_check(1)").fetchone()
            rev = None
            if "alembic_version" in tables:
                rev = con.execute("SELECT version_num FROM alembic_version").fetchone()
                rev = None if rev is None else rev[0]
        finally:
            con.close()
    except sqlite3.Error as exc:
        code = _sqlite_code(exc)
        if code in _BUSY_CODES:
            return None  # another process holds it; the busy timeout handles the rest
        if code in _CORRUPT_CODES:
            raise _unusable(path, f"SQLite reports the database is corrupt ({exc})", move) from None
        raise StoreError(
            f"{path}: cannot open the store ({exc}; {code}); it was left untouched. "
            "Check permissions, free space and that the folder is writable (SQLite needs its -wal/-shm files)."
        ) from None
    if row is None or row[0] != "ok":
        raise _unusable(
            path,
            f"SQLite reports the database is corrupt (quick_check: {row[0] if row else 'no answer'})",
            move,
        )
    tables.discard("sqlite_sequence")
    return rev, tables


def _check_schema(shown: str, current: str | None, tables: set[str], *, create: bool) -> None:
    """Refuse another program's database, a newer schema, or (``create=False``) an empty one."""
    if current is None:
        if tables:
            listed = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
            raise StoreError(
                f"{shown}: not a rea2seg store (it holds other tables: {listed}); nothing was changed"
            )
        if not create:
            raise StoreMissing(
                f"{shown}: empty database, no rea2seg store in it (nothing was created)", None
            )
    elif current not in _known_revisions():
        raise StoreError(
            f"{shown}: made by a newer rea2seg (schema {schema_number(current)}); this version knows schema "
            f"{schema_version()} at most. Update rea2seg to open it; nothing was changed"
        )


def open_store(
    url_or_path: str | Path,
    *,
    upgrade: bool = True,
    create: bool = True,
    move_aside_corrupt: bool = True,
) -> Store:
    """Open (and migrate) a store at a file path or SQLAlchemy URL.

    ``create=False`` (read commands) raises :class:`StoreMissing` when there is no store yet
    instead of creating one. A database of another program (tables but no rea2seg schema) and
    one written by a newer rea2seg are refused, never given new tables. On SQLite these checks
    read the file read-only before anything (even the WAL pragma) writes to it. A file that is
    not a usable database is moved aside, or with ``move_aside_corrupt=False`` left alone
    (:class:`StoreUnusable`; the GUI asks first, then calls :func:`move_aside`).
    """
    url = store_url(url_or_path)
    u = make_url(url)
    shown = u.render_as_string(hide_password=True)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        path = Path(u.database)
        shown = str(path)
        state = _check_sqlite_file(path, create=create, move=move_aside_corrupt)
        if state is not None:
            _check_schema(shown, *state, create=create)
    try:
        engine = _make_engine(url)
        current, tables = _schema_state(engine)
    except DatabaseError as exc:
        raise StoreError(f"{shown}: cannot open the store ({exc.orig})") from exc
    try:
        _check_schema(shown, current, tables, create=create)
    except StoreError:
        engine.dispose()
        raise
    head = _head_revision()
    if current != head:
        if not upgrade:
            engine.dispose()
            raise StoreError(
                f"store schema is {schema_number(current)}, this version needs {schema_version()}; open it with upgrade"
            )
        try:
            migrate(engine)
        except DatabaseError as exc:
            engine.dispose()
            raise StoreError(
                f"{shown}: cannot bring the store to schema {schema_version()} ({exc.orig})"
            ) from exc
    return Store(engine)
