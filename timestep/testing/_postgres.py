"""Throwaway Postgres databases for tests and benchmarks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = ["postgres_unreachable", "temporary_postgres_database"]


def postgres_unreachable(server_url: str) -> str | None:
    """Whether the Postgres server of ``server_url`` answers within 3 s, and if not, why.

    Args:
        server_url: A ``postgresql://`` URL of the server (any database on it).

    Returns:
        None if it answers, else the first line of the connection error.
    """
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


@contextlib.contextmanager
def temporary_postgres_database(server_url: str, *, prefix: str = "timestep_test") -> Iterator[str]:
    """A new, empty database on the server of ``server_url`` (``<prefix>_<random>``), dropped
    afterwards even if connections to it are still open.

    Args:
        server_url: A ``postgresql://`` URL of the server (any database on it).
        prefix: The start of the database's name.

    Yields:
        The new database's URL.
    """
    engine = _admin_engine(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _admin_engine(server_url: str) -> sa.Engine:
    return sa.create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 3},
    )
