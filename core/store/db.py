"""Opening a store: SQLite by default (WAL, foreign keys, busy timeout), any SQLAlchemy URL.

One :meth:`Store.session` per user action: a short transaction that commits on exit. On
SQLite, write transactions start with ``BEGIN IMMEDIATE`` so two processes reviewing the same
file serialise instead of failing with "database is locked" half-way through.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, OperationalError
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

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """One transaction; commits on exit, rolls back on error.

        ``write=True`` takes SQLite's write lock up front (``BEGIN IMMEDIATE``).
        """
        with self._sessions() as s:
            if self.is_sqlite:
                s.connection(execution_options={"sqlite_begin": "IMMEDIATE" if write else "DEFERRED"})
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
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


def _is_busy(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg or "could not serialize" in msg or "deadlock" in msg


def _make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
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
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def _check_sqlite_file(path: Path) -> None:
    """Raise :class:`StoreCorruptError` (after moving the file aside) if it is not a database."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            row = con.execute("PRAGMA quick_check(1)").fetchone()
        finally:
            con.close()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc).lower():
            return
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        moved = path.with_name(f"{path.name}.corrupt-{stamp}")
        shutil.move(str(path), moved)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                shutil.move(str(side), moved.with_name(moved.name + suffix))
        raise StoreCorruptError(
            f"{path}: the database is corrupt ({exc}). It was moved aside to {moved}; "
            f"opening {path} again starts an empty store. Recover data from {moved} or a backup.",
            moved,
        ) from exc


def open_store(url_or_path: str | Path, *, upgrade: bool = True) -> Store:
    """Open (and create or migrate) a store at a file path or SQLAlchemy URL."""
    url = store_url(url_or_path)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database:
        path = Path(u.database)
        if not path.parent.exists():
            raise StoreError(f"{path}: folder {path.parent} does not exist")
        _check_sqlite_file(path)
    try:
        engine = _make_engine(url)
        current = _current_revision(engine)
    except DatabaseError as exc:
        raise StoreError(f"{u.render_as_string(hide_password=True)}: cannot open the store ({exc.orig})") from exc
    head = _head_revision()
    if current != head:
        if not upgrade:
            raise StoreError(f"store schema is at {current}, this version needs {head}; open it with upgrade")
        migrate(engine)
    return Store(engine)
