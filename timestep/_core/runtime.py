"""``configure_dbos`` and ``ensure_dbos_launched``: one DBOS per process, set up once.

The launch applies what the process declared before it: agent modules to import (so pending
runs can be recovered), provider limits and queues, and schedules. ``reset_process`` undoes
everything, for tests and embedding applications.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig
from sqlalchemy.ext.asyncio import AsyncEngine

from timestep.errors import ConfigurationError, ScheduleError

from .database import (
    ResolvedDatabase,
    connect_timeout_url,
    dbos_sqlite_engine,
    ensure_postgres_database,
    resolve_database,
)
from .ledger import BUDGET_COLUMNS, budget_row
from .limits import LIMIT_OPTIONS, QueueSpec, provider_limit_queues
from .logs import install_log_format
from .process import DBOSRuntime, process_state
from .protocol import RETENTION_SCHEDULE, RETENTION_WORKFLOW
from .secrets import install_log_redaction
from .serializer import TimestepSerializer
from .settings import load_settings
from .tables import budgets_table, upsert_statement

__all__ = [
    "apply_declared_queues",
    "budgets_in_force",
    "configure_dbos",
    "current_database",
    "dbos_schema",
    "dbos_table",
    "ensure_dbos_launched",
    "flush_records",
    "is_dbos_launched",
    "off_loop",
    "register_queues",
    "reset_process",
    "tables_engine",
]

logger = logging.getLogger("timestep")

T = TypeVar("T")


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

    ``database_url`` overrides the resolution order documented in ``timestep._core.database``.
    Extra keyword arguments are passed into ``DBOSConfig`` unchanged.
    Safe to call from sync code and from inside a running event loop.

    Args:
        database_url: The database (``postgresql://`` or ``sqlite://``) for DBOS and Timestep.
        name: The application name (default ``TIMESTEP_APP_NAME``).
        application_version: DBOS's application version (default
            ``TIMESTEP_APPLICATION_VERSION``).
        executor_id: This process's DBOS executor id (default ``TIMESTEP_EXECUTOR_ID``).
        log_level: DBOS's log level (default ``TIMESTEP_DBOS_LOG_LEVEL``).
        **dbos_config: More ``DBOSConfig`` keys, passed unchanged.

    Returns:
        The DBOS configuration in effect.

    Raises:
        ConfigurationError: The database URL is invalid.
        DatabaseUnreachableError: The Postgres database asked for does not answer.
    """
    process = process_state()
    with process.lock:
        if process.runtime is not None:
            return process.runtime.config
        settings = process.settings
        if name is not None:
            load_settings(app_name=name)  # the same rules as TIMESTEP_APP_NAME
        database = resolve_database(database_url, settings)
        timeout = settings.db_connect_timeout_sec
        config: DBOSConfig = {
            "name": name or settings.app_name,
            # DBOS's engine takes psycopg's connect_timeout from the URL's query.
            "system_database_url": connect_timeout_url(database.url, timeout),
            "application_version": application_version or settings.application_version,
            # Errors stored as secret-free records, never pickles (serializer.py).
            "serializer": TimestepSerializer(),
        }
        if database.is_sqlite:
            # Prepares the file (folder, WAL) before DBOS opens it.
            config["system_database_engine"] = dbos_sqlite_engine(database.url, timeout)
            # SQLite has no LISTEN/NOTIFY: DBOS polls, 1 s by default, which makes approvals late.
            config["notification_listener_polling_interval_sec"] = (
                settings.sqlite_polling_interval_sec
            )
        else:
            ensure_postgres_database(database.url, timeout)
        config["scheduler_polling_interval_sec"] = settings.scheduler_polling_interval_sec
        executor_id = executor_id or settings.executor_id
        if executor_id:
            config["executor_id"] = executor_id
        log_level = log_level or settings.dbos_log_level
        if log_level:
            config["log_level"] = log_level
        config.update(dbos_config)  # type: ignore[typeddict-item]
        install_log_redaction()
        install_log_format(settings.log_format)
        DBOS(config=config)
        process.runtime = DBOSRuntime(database=database, config=config)
        return config


def ensure_dbos_launched() -> None:
    """Configure DBOS if needed, then launch it once.

    Agents must be registered first: DBOS recovers pending runs at launch, and a recovered run
    looks its agent up by name. So the launch imports ``TIMESTEP_AGENT_MODULES`` before it.

    Raises:
        ConfigurationError: A setting (the database, ``TIMESTEP_BUDGETS``...) is invalid.
        DatabaseUnreachableError: The Postgres database asked for does not answer.
    """
    process = process_state()
    with process.lock:
        if process.runtime is None:
            configure_dbos()
        runtime = process.runtime
        assert runtime is not None
        if runtime.launched:
            return
        settings = process.settings
        for module_name in filter(None, (settings.agent_modules or "").split(",")):
            importlib.import_module(module_name.strip())
        process.recorder.flush_interval = settings.records_flush_interval_sec
        launched_at_ms = int(time.time() * 1000)
        DBOS.launch()
        install_log_format(settings.log_format)  # DBOS (re)configures its handlers at launch
        runtime.launched = True
        process.recorder.start_reconciliation(runtime.database.url, launched_at_ms)
        apply_declared_queues()
        _apply_declared_schedules()
        _apply_budgets(runtime.database.url)


def _apply_budgets(url: str) -> None:
    """Write ``TIMESTEP_BUDGETS``; enforce budgets if any exist (or the settings say so)."""
    process = process_state()
    settings = process.settings
    rows = []
    for scope, options in settings.budgets.items():
        unknown = set(options) - {"max_cost_usd", "max_tokens", "per", "on_exceed"}
        if unknown:
            raise ConfigurationError(
                f"TIMESTEP_BUDGETS[{scope!r}]: unknown option(s) {sorted(unknown)}"
            )
        rows.append(
            budget_row(
                scope,
                max_cost_usd=options.get("max_cost_usd"),
                max_tokens=_whole(options.get("max_tokens")),
                per=str(options.get("per", "run")),
                on_exceed=str(options.get("on_exceed", "stop")),
            )
        )
    with process.engines.sync(url).begin() as conn:
        if rows:
            conn.execute(
                upsert_statement(conn.dialect.name, budgets_table, ["scope"], list(BUDGET_COLUMNS)),
                rows,
            )
        exists = conn.execute(sa.select(budgets_table.c.scope).limit(1)).first() is not None
    if exists or settings.enforce_budgets:
        process.budgets_enforced = True


def apply_declared_queues() -> None:
    """Register the declared queues and provider limits with DBOS, with the limits of
    ``TIMESTEP_PROVIDER_LIMITS`` (a limit set in code wins). Called by the launch."""
    process = process_state()
    for prefix, options in process.settings.provider_limits.items():
        unknown = set(options) - LIMIT_OPTIONS
        if unknown:
            raise ConfigurationError(
                f"TIMESTEP_PROVIDER_LIMITS[{prefix!r}]: unknown option(s) {sorted(unknown)}"
            )
        if process.limits.provider_limit(prefix) is None:
            limit, queues = provider_limit_queues(
                prefix,
                requests=_whole(options.get("requests")),
                per_seconds=options.get("per_seconds"),
                concurrency=_whole(options.get("concurrency")),
                worker_concurrency=_whole(options.get("worker_concurrency")),
                tokens=_whole(options.get("tokens")),
                output_tokens=_whole(options.get("output_tokens")),
            )
            process.limits.set_provider_limit(limit, queues)
    register_queues(process.limits.queues())


def _whole(value: float | None) -> int | None:
    return int(value) if value is not None else None


def register_queues(queues: dict[str, QueueSpec]) -> None:
    """Register (or update) DBOS queues; DBOS must be launched."""
    polling = process_state().settings.queue_polling_interval_sec

    def register() -> None:
        for name, spec in queues.items():
            DBOS.register_queue(
                name, polling_interval_sec=polling, on_conflict="always_update", **spec
            )

    off_loop(register)


def _retention_schedule() -> dict[str, Any] | None:
    """The schedule of the retention pass when ``TIMESTEP_RETENTION`` is set; without it, an
    earlier deploy's retention schedule is removed."""
    process = process_state()
    settings = process.settings
    policy = settings.retention_policy
    if policy is None:
        if DBOS.get_schedule(RETENTION_SCHEDULE) is not None:
            DBOS.delete_schedule(RETENTION_SCHEDULE)
        return None
    return {
        "schedule_name": RETENTION_SCHEDULE,
        "workflow_fn": process.workflow_functions[RETENTION_WORKFLOW],
        "schedule": settings.retention_schedule,
        "context": {"policy": policy.to_json(), "batch_size": settings.retention_batch_size},
        "automatic_backfill": False,
    }


def _apply_declared_schedules() -> None:
    """Create or replace the schedules declared before launch (a redeploy never duplicates),
    and the retention pass's."""
    process = process_state()
    with process.lock:
        specs = list(process.schedules.values())
        process.schedules.clear()
    retention = off_loop(_retention_schedule)
    if retention is not None:
        specs.append(retention)
    if specs:
        try:
            DBOS.apply_schedules(specs)  # type: ignore[arg-type]
        except Exception as exc:
            raise ScheduleError(str(exc)) from exc


def off_loop(call: Callable[[], T]) -> T:
    """Run a sync DBOS call that refuses to run on an event loop's thread (DBOS asks for its
    ``_async`` twin there) from a sync API that may be called from async code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def is_dbos_launched() -> bool:
    return process_state().launched


def current_database() -> ResolvedDatabase:
    """The database of the configured runtime, or the one configuration would pick."""
    process = process_state()
    if process.runtime is not None:
        return process.runtime.database
    return resolve_database(None, process.settings)


def dbos_schema() -> str | None:
    """The schema of DBOS's tables: none on SQLite, ``dbos`` (or as configured) on Postgres."""
    process = process_state()
    if current_database().is_sqlite:
        return None
    config: dict[str, Any] = dict(process.runtime.config) if process.runtime else {}
    return str(config.get("dbos_system_schema") or "dbos")


def dbos_table(name: str, *columns: str, integer: tuple[str, ...] = ()) -> sa.Table:
    """The columns of DBOS's table ``name`` a query reads (text, and ``integer`` ones), in
    DBOS's schema: DBOS owns the table, so only what is read is declared."""
    return sa.Table(
        name,
        sa.MetaData(schema=dbos_schema()),
        *(sa.Column(c, sa.Text) for c in columns),
        *(sa.Column(c, sa.BigInteger) for c in integer),
    )


BUDGETS_LOOK_EVERY_SEC = 5.0


async def budgets_in_force() -> bool:
    """Whether a run started now checks budgets: once this process knows of one (it set one,
    one existed at launch, ``TIMESTEP_ENFORCE_BUDGETS``), or another process has set one since
    (looked for at most every 5 s: one cheap query while there are none)."""
    process = process_state()
    if process.budgets_enforced:
        return True
    now = time.monotonic()
    if now - process.budgets_looked_at < BUDGETS_LOOK_EVERY_SEC:
        return False
    process.budgets_looked_at = now
    async with (await tables_engine()).connect() as conn:
        if await conn.scalar(sa.select(budgets_table.c.scope).limit(1)) is None:
            return False
    process.budgets_enforced = True
    return True


async def tables_engine() -> AsyncEngine:
    """The async engine on Timestep's tables, in this process's database."""
    return await process_state().engines.get(current_database().url)


async def flush_records(timeout_seconds: float = 30.0) -> bool:
    """Wait until this process's finished runs have their usage and tool-call rows written.

    Runs write those rows in the background; call this before reading Timestep's tables
    directly in the process that ran them (``get_usage`` and ``list_pending_approvals`` do).
    Returns False if the rows are not written within ``timeout_seconds``.

    Args:
        timeout_seconds: How long to wait.

    Returns:
        Whether every row was written in time.
    """
    recorder = process_state().recorder
    if recorder.outstanding == 0:
        return True
    return await asyncio.to_thread(recorder.flush, timeout_seconds)


def reset_process(*, destroy: bool = True, declarations: bool = False) -> None:
    """Tear this process's runtime down (DBOS, engines, caches, the DBOS configuration) and
    start it afresh; with ``declarations`` forget the registered agents, limits, schedules,
    tool options, model provider and prices too. For tests and embedding applications.

    ``destroy=False`` leaves DBOS alone (it was destroyed already, or never configured)."""
    process = process_state()
    with process.lock:
        recorder = process.recorder
        if not recorder.flush(timeout=10.0):
            logger.warning("dropped %d runs' unwritten usage rows at reset", recorder.discard())
        if destroy:
            DBOS.destroy(destroy_registry=False)
        if process.dbos_client is not None:
            process.dbos_client.destroy()
        process.engines.dispose()
        process.clear_runtime()
        if declarations:
            process.clear_declarations()
