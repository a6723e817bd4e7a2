"""Which database Timestep uses, and the SQLAlchemy engines on it.

Resolution order (first that applies wins):

1. an explicit URL passed by the caller;
2. ``PG_CONNECTION_URI`` (must answer: no silent fallback when the user asked for Postgres);
3. DBOS's own setting: ``DBOS_SYSTEM_DATABASE_URL`` or ``system_database_url`` in ``dbos-config.yaml``;
4. Postgres on localhost:5432, if it answers within about a second;
5. an embedded SQLite file under ``TIMESTEP_DATA_DIR`` (the newcomer's default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from timestep.errors import ConfigurationError, DatabaseUnreachableError

from .settings import Settings, dbos_config_file, redact_url
from .tables import migrate

__all__ = [
    "Engines",
    "ResolvedDatabase",
    "DEFAULT_CONNECT_TIMEOUT_SEC",
    "async_engine_for",
    "connect_timeout_url",
    "dbos_sqlite_engine",
    "ensure_postgres_database",
    "postgres_connect_timeout",
    "resolve_database",
    "sync_engine_for",
    "unreachable",
]

logger = logging.getLogger("timestep")

DEFAULT_CONNECT_TIMEOUT_SEC = 10.0
"""``TIMESTEP_DB_CONNECT_TIMEOUT_SEC``'s default, for engines made without the settings."""

Source = Literal["argument", "PG_CONNECTION_URI", "DBOS", "localhost", "sqlite"]


@dataclass(frozen=True)
class ResolvedDatabase:
    url: str
    """The URL as DBOS takes it (``postgresql://`` or ``sqlite:///``)."""
    source: Source

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def display(self) -> str:
        return redact_url(self.url)


def resolve_database(url: str | None, settings: Settings) -> ResolvedDatabase:
    """Pick the database by the documented order, and log the choice."""
    resolved = _resolve(url, settings)
    logger.info("timestep database: %s (from %s)", resolved.display, resolved.source)
    return resolved


def _resolve(url: str | None, settings: Settings) -> ResolvedDatabase:
    if url:
        return ResolvedDatabase(_checked(url, "the database_url argument"), "argument")
    if settings.database_url:
        checked = _checked(settings.database_url, "PG_CONNECTION_URI")
        if not checked.startswith("sqlite"):
            _require_reachable(checked, settings.db_connect_timeout_sec)
        return ResolvedDatabase(checked, "PG_CONNECTION_URI")
    dbos_url = _dbos_configured_url()
    if dbos_url:
        return ResolvedDatabase(_checked(dbos_url, "DBOS_SYSTEM_DATABASE_URL"), "DBOS")
    if settings.probe_local_postgres and settings.local_postgres_url:
        local = make_url(settings.local_postgres_url)
        if _answers(local.host or "localhost", local.port or 5432, timeout=1.0):
            return ResolvedDatabase(_normalise(settings.local_postgres_url), "localhost")
    path = (settings.data_dir / f"{settings.app_name}.sqlite").resolve()
    return ResolvedDatabase(f"sqlite:///{path}", "sqlite")


def _checked(url: str, setting: str) -> str:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise ConfigurationError(
            f"{setting} is not a valid database URL: {redact_url(url)!r}"
        ) from exc
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ConfigurationError(
            f"{setting} must be a postgresql:// or sqlite:// URL, got {parsed.get_backend_name()!r}"
        )
    return _normalise(url)


def _normalise(url: str) -> str:
    """DBOS wants plain ``postgresql://`` (it picks psycopg itself)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return url


def _require_reachable(url: str, timeout: float) -> None:
    parsed = make_url(url)
    host, port = parsed.host or "localhost", parsed.port or 5432
    if not _answers(host, port, timeout=min(timeout, 3.0)):
        raise DatabaseUnreachableError(
            redact_url(url), host, port, "nothing answers there (is Postgres running?)"
        )


def _answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _dbos_configured_url() -> str | None:
    env = os.environ.get("DBOS_SYSTEM_DATABASE_URL")
    if env:
        return env
    value = dbos_config_file().get("system_database_url")
    return str(value) if value else None


def postgres_connect_timeout(seconds: float) -> int:
    """psycopg's ``connect_timeout`` for a timeout in seconds: whole seconds, at least 2 (what
    psycopg enforces anyway)."""
    return max(2, math.ceil(seconds))


def _pg_connect_args(url: sa.URL, seconds: float) -> dict[str, Any]:
    """psycopg's connect arguments: the timeout, unless the URL sets its own (which wins)."""
    if "connect_timeout" in url.query:
        return {}
    return {"connect_timeout": postgres_connect_timeout(seconds)}


def connect_timeout_url(url: str, seconds: float) -> str:
    """``url`` with psycopg's ``connect_timeout`` in its query, for engines Timestep does not
    create itself (DBOS's, a ``DBOSClient``'s). A timeout already in the URL is kept; SQLite
    URLs are returned as they are."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    timeout = str(postgres_connect_timeout(seconds))
    return parsed.update_query_dict({"connect_timeout": timeout}).render_as_string(
        hide_password=False
    )


def unreachable(url: str, exc: BaseException) -> DatabaseUnreachableError:
    """The typed error for a failed connection to ``url``: its address and the driver's first
    line, never the password."""
    parsed = make_url(url)
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    reason = lines[0] if lines else type(orig).__name__
    if parsed.password:
        reason = reason.replace(str(parsed.password), "***")
    port = parsed.port or (5432 if parsed.get_backend_name() == "postgresql" else None)
    return DatabaseUnreachableError(redact_url(url), parsed.host, port, reason)


def ensure_postgres_database(url: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_SEC) -> None:
    """Create the Postgres database named in ``url`` if it does not exist yet.

    A server that does not answer within ``timeout`` seconds is a ``DatabaseUnreachableError``
    naming its address."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        return
    admin = parsed.set(drivername="postgresql+psycopg", database="postgres")
    engine = sa.create_engine(
        admin,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args=_pg_connect_args(admin, timeout),
    )
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                quoted = conn.dialect.identifier_preparer.quote(name)
                # ProgrammingError: created concurrently by another process.
                with contextlib.suppress(sa.exc.ProgrammingError):
                    conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    except sa.exc.OperationalError as exc:
        raise unreachable(url, exc) from exc
    finally:
        engine.dispose()


def _driver_url(url: str, *, asynchronous: bool) -> sa.URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")


def async_engine_for(url: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_SEC) -> AsyncEngine:
    """An async engine on Timestep's tables (psycopg 3 on Postgres, aiosqlite on SQLite);
    ``timeout`` is the connect timeout (Postgres) or busy timeout (SQLite), in seconds."""
    target = _driver_url(url, asynchronous=True)
    if target.get_backend_name() == "sqlite":
        prepare_sqlite(url, timeout)
        engine = create_async_engine(target, connect_args={"timeout": timeout})
        _tune_sqlite(engine.sync_engine, timeout)
        return engine
    return create_async_engine(
        target,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args=_pg_connect_args(target, timeout),
    )


def sync_engine_for(url: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_SEC) -> sa.Engine:
    """The sync twin of ``async_engine_for``."""
    target = _driver_url(url, asynchronous=False)
    if target.get_backend_name() == "sqlite":
        prepare_sqlite(url, timeout)
        engine = sa.create_engine(target, connect_args={"timeout": timeout})
        _tune_sqlite(engine, timeout)
        return engine
    return sa.create_engine(
        target,
        pool_pre_ping=True,
        connect_args=_pg_connect_args(target, timeout),
    )


def prepare_sqlite(url: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_SEC) -> None:
    """Create an embedded database's folder and switch the file to WAL, before DBOS opens it.

    WAL lets readers (CLI, server) work while a worker writes, and the switch needs a moment
    when nobody else has the file open."""
    target = make_url(url)
    if target.get_backend_name() != "sqlite" or not target.database:
        return
    if target.database == ":memory:" or target.database.startswith("file:"):
        return
    Path(target.database).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(target.database, timeout=timeout)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        logger.debug("could not switch %s to WAL yet: %s", target.database, exc)
    finally:
        connection.close()


def dbos_sqlite_engine(url: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_SEC) -> sa.Engine:
    """DBOS's system database engine on SQLite, whose transactions really are IMMEDIATE.

    DBOS asks pysqlite for IMMEDIATE transactions, but pysqlite opens a transaction only at
    the first INSERT/UPDATE/DELETE: the reads before it (a queue's running count, say) run
    outside it, so two processes can both see a free slot and both take it (seen: 6 permits
    of a 5-slot queue). SQLAlchemy's recipe for SQLite transactions makes ``BEGIN IMMEDIATE``
    the first statement of each, so a claim's reads and writes are one atomic unit.
    """
    engine = sync_engine_for(url, timeout)  # the file in WAL mode, busy timeout, foreign keys

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # pysqlite issues no BEGIN of its own

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def _skip_nested_begin(connection, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        # DBOS's migrations say BEGIN IMMEDIATE themselves, inside a transaction begun above.
        if statement == "BEGIN IMMEDIATE" and connection.connection.dbapi_connection.in_transaction:
            return "SELECT 1", parameters
        return statement, parameters

    return engine


def _tune_sqlite(engine: sa.Engine, timeout: float) -> None:
    # prepare_sqlite() switched the file to WAL; each connection still needs these.
    busy_ms = max(1, int(timeout * 1000))

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


_Cached = TypeVar("_Cached")


class Engines:
    """The SQLAlchemy engines on Timestep's tables, per database URL, migrated on first use.

    Async drivers bind connections to the loop that made them, and DBOS runs recovered
    workflows on its own loop, so there is one async engine per (url, loop); one sync engine
    per URL serves every thread (for writes made from a worker thread in one hop).
    """

    def __init__(self, timeout: Callable[[], float] | None = None) -> None:
        self._timeout = timeout or (lambda: DEFAULT_CONNECT_TIMEOUT_SEC)
        self._async: dict[tuple[str, int], AsyncEngine] = {}
        self._sync: dict[str, sa.Engine] = {}
        self._migrated: set[str] = set()
        self._lock = threading.Lock()
        self._migrate_lock = threading.Lock()

    async def get(self, url: str) -> AsyncEngine:
        """The async engine for ``url`` on the running event loop."""
        engine = self._cached(
            self._async,
            (url, id(asyncio.get_running_loop())),
            lambda u: async_engine_for(u, self._timeout()),
            url,
        )
        if url not in self._migrated:
            await asyncio.to_thread(self._migrate_once, url)
        return engine

    def sync(self, url: str) -> sa.Engine:
        """The sync engine for ``url``, shared by every thread."""
        engine = self._cached(self._sync, url, lambda u: sync_engine_for(u, self._timeout()), url)
        if url not in self._migrated:
            self._migrate_once(url)
        return engine

    def dispose(self) -> None:
        """Drop every engine (their pools close with them)."""
        with self._lock:
            for engine in self._async.values():
                engine.sync_engine.dispose(close=False)
            for sync_engine in self._sync.values():
                sync_engine.dispose(close=False)
            self._async.clear()
            self._sync.clear()
            self._migrated.clear()

    def _cached(
        self, cache: dict[Any, _Cached], key: Any, make: Callable[[str], _Cached], url: str
    ) -> _Cached:
        """``cache[key]``, made by ``make(url)`` once even when threads race for it."""
        engine = cache.get(key)
        if engine is None:
            with self._lock:
                engine = cache.get(key)
                if engine is None:
                    engine = cache[key] = make(url)
        return engine

    def _migrate_once(self, url: str) -> None:
        """Bring the schema up to date, once per URL.

        Concurrent first uses (several workflows starting together, several workers launching
        on one database) must not both create the tables: a lock serialises this process,
        ``migrate`` serialises processes (an advisory lock on Postgres; on SQLite the
        transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write lock).
        """
        with self._migrate_lock:
            if url in self._migrated:
                return
            engine = sync_engine_for(url, self._timeout())
            try:
                if engine.dialect.name == "sqlite":
                    with engine.connect() as conn:
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                        migrate(conn)
                        conn.exec_driver_sql("COMMIT")
                else:
                    with engine.begin() as conn:
                        migrate(conn)
            finally:
                engine.dispose()
            self._migrated.add(url)
