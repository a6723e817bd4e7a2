"""``configure_dbos`` and ``ensure_dbos_launched``: one DBOS per process, set up once."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from dbos import DBOS, DBOSConfig
from pydantic import ValidationError

from ._database import (
    ResolvedDatabase,
    dbos_sqlite_engine,
    ensure_postgres_database,
    resolve_database,
)
from ._settings import Settings, get_settings
from .errors import ConfigurationError

__all__ = [
    "configure_dbos",
    "ensure_dbos_launched",
    "current_database",
    "is_dbos_launched",
    "reset_runtime",
]

logger = logging.getLogger("timestep")
_lock = threading.RLock()


@dataclass
class _Runtime:
    database: ResolvedDatabase
    config: DBOSConfig
    launched: bool = False


_runtime: _Runtime | None = None


def _load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid Timestep settings: {problems}") from None


def configure_dbos(
    database_url: str | None = None,
    *,
    name: str | None = None,
    application_version: str | None = None,
    executor_id: str | None = None,
    log_level: str | None = None,
    **dbos_config: Any,
) -> DBOSConfig:
    """Configure DBOS for Timestep. Idempotent: later calls return the first configuration.

    ``database_url`` overrides the resolution order documented in ``timestep._database``.
    Extra keyword arguments are passed into ``DBOSConfig`` unchanged.
    Safe to call from sync code and from inside a running event loop.
    """
    global _runtime
    with _lock:
        if _runtime is not None:
            return _runtime.config
        settings = _load_settings()
        app_name = name or settings.app_name
        if name is not None:
            try:
                Settings(app_name=name)
            except ValidationError as exc:
                raise ConfigurationError(
                    f"invalid app name {name!r}: {exc.errors()[0]['msg']}"
                ) from None
        database = resolve_database(database_url, settings)
        config: DBOSConfig = {
            "name": app_name,
            "system_database_url": database.url,
            "application_version": application_version or settings.application_version,
        }
        if database.is_sqlite:
            # Prepares the file (folder, WAL) before DBOS opens it.
            config["system_database_engine"] = dbos_sqlite_engine(database.url)
            # SQLite has no LISTEN/NOTIFY: DBOS polls, 1 s by default, which makes approvals late.
            config["notification_listener_polling_interval_sec"] = (
                settings.sqlite_polling_interval_sec
            )
        else:
            ensure_postgres_database(database.url)
        config["scheduler_polling_interval_sec"] = settings.scheduler_polling_interval_sec
        executor_id = executor_id or settings.executor_id
        if executor_id:
            config["executor_id"] = executor_id
        if log_level:
            config["log_level"] = log_level
        config.update(dbos_config)  # type: ignore[typeddict-item]
        DBOS(config=config)
        _runtime = _Runtime(database=database, config=config)
        return config


def ensure_dbos_launched() -> None:
    """Configure DBOS if needed, then launch it once. Registration of agents must come first:
    DBOS recovers pending runs at launch, and a recovered run looks its agent up by name."""
    with _lock:
        if _runtime is None:
            configure_dbos()
        assert _runtime is not None
        if _runtime.launched:
            return
        from . import _recorder, _registry

        _registry.before_launch()
        _recorder.get_recorder().flush_interval = _load_settings().records_flush_interval_sec
        launched_at_ms = int(time.time() * 1000)
        DBOS.launch()
        _runtime.launched = True
        _recorder.start_reconciliation(_runtime.database.url, launched_at_ms)
        from ._limits import apply_declared_queues
        from ._schedules import apply_declared_schedules

        apply_declared_queues()
        apply_declared_schedules()


def is_dbos_launched() -> bool:
    return _runtime is not None and _runtime.launched


def current_database() -> ResolvedDatabase:
    """The database of the configured runtime, or the one configuration would pick."""
    if _runtime is not None:
        return _runtime.database
    return resolve_database(None, _load_settings())


def reset_runtime(*, destroy: bool = True) -> None:
    """Forget the configuration (and destroy DBOS). For tests and embedding applications."""
    global _runtime
    from ._recorder import get_recorder

    with _lock:
        recorder = get_recorder()
        if not recorder.flush(timeout=10.0):
            logger.warning("dropped %d runs' unwritten usage rows at reset", recorder.discard())
        if destroy:
            DBOS.destroy(destroy_registry=False)
        _runtime = None
        from . import _storage

        _storage.reset_engines()
