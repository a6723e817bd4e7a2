"""Timestep's own tables (beside DBOS's system tables, in the same database) and their migrations.

SQLAlchemy Core only. Every write a workflow makes is keyed so that a replay after a crash
inserts nothing twice: session items by ``item_key``, usage by ``(workflow_id, response_index)``,
tool calls by ``(workflow_id, call_id)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from timestep.errors import ConfigurationError

__all__ = [
    "SCHEMA_VERSION",
    "agents_table",
    "decisions_table",
    "budgets_table",
    "ledger_locks_table",
    "ledger_waits_table",
    "provider_feedback_table",
    "model_calls_table",
    "insert_ignoring_duplicates",
    "insert_ignoring_duplicates_statement",
    "metadata",
    "migrate",
    "rate_slots_table",
    "recorder_marks_table",
    "run_states_table",
    "session_items_table",
    "step_retries_table",
    "tool_calls_table",
    "upsert",
    "upsert_statement",
    "usage_daily_table",
    "usage_table",
    "utcnow",
]

SCHEMA_VERSION = 10

metadata = sa.MetaData()


def utcnow() -> datetime:
    return datetime.now(UTC)


_ts = sa.DateTime(timezone=True)

schema_version_table = sa.Table(
    "timestep_schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("applied_at", _ts, nullable=False, default=utcnow),
)

agents_table = sa.Table(
    "timestep_agents",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("model", sa.String(255)),
    sa.Column("instructions_hash", sa.String(64)),
    sa.Column("tools", sa.JSON, nullable=False, default=list),
    sa.Column("ref", sa.String(512)),
    sa.Column("updated_at", _ts, nullable=False, default=utcnow, onupdate=utcnow),
)

run_states_table = sa.Table(
    "timestep_run_states",
    metadata,
    # The autoincrement key orders a session's history; concurrent saves never collide on it.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("state_id", sa.String(255), nullable=False, unique=True),
    sa.Column("session_id", sa.String(255), nullable=False),
    sa.Column("agent_name", sa.String(255), nullable=False),
    sa.Column("workflow_id", sa.String(255)),
    sa.Column("state_type", sa.String(32), nullable=False),
    sa.Column("schema_version", sa.String(16), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", _ts, nullable=False, default=utcnow),
    # Schema 2: the TypeScript SDK's form of a python-format payload, for the Node package
    # (typescript/), which has no converter of its own. NULL for typescript-format rows.
    sa.Column("payload_typescript", sa.Text),
    sa.CheckConstraint(
        "state_type IN ('interrupted', 'checkpoint', 'completed')", name="ck_run_state_type"
    ),
    sa.CheckConstraint("format IN ('python', 'typescript')", name="ck_run_state_format"),
)

session_items_table = sa.Table(
    "timestep_session_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(255), nullable=False, index=True),
    sa.Column("item", sa.Text, nullable=False),
    sa.Column("item_key", sa.String(512), unique=True),
    sa.Column("created_at", _ts, nullable=False, default=utcnow),
)

tool_calls_table = sa.Table(
    "timestep_tool_calls",
    metadata,
    sa.Column("workflow_id", sa.String(255), primary_key=True),
    sa.Column("call_id", sa.String(255), primary_key=True),
    sa.Column("session_id", sa.String(255)),
    sa.Column("agent_name", sa.String(255)),
    sa.Column("tool_name", sa.String(255), nullable=False),
    sa.Column("arguments", sa.Text),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("decision", sa.Text),  # JSON: approve, always, message
    sa.Column("decided_by", sa.String(255)),
    sa.Column("decided_at", _ts),
    sa.Column("created_at", _ts, nullable=False, default=utcnow),
)

usage_table = sa.Table(
    "timestep_usage",
    metadata,
    sa.Column("workflow_id", sa.String(255), primary_key=True),
    sa.Column("response_index", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(255), index=True),
    sa.Column("agent_name", sa.String(255), index=True),
    sa.Column("model", sa.String(255)),
    sa.Column("requests", sa.Integer, nullable=False, default=1),
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cached_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cost_usd", sa.Float),
    sa.Column("created_at", _ts, nullable=False, default=utcnow),
    # Schema 6: the run's tags, ",tenant-a,user-7," ("" for none), for get_usage(tag=...).
    sa.Column("tags", sa.Text),
)

# Schema 3: how far the recorder (timestep._recorder) has written each executor's finished runs.
recorder_marks_table = sa.Table(
    "timestep_recorder_marks",
    metadata,
    sa.Column("executor_id", sa.String(255), primary_key=True),
    # Epoch ms: the rows of every run this executor completed before it are written.
    sa.Column("recorded_through_ms", sa.BigInteger, nullable=False),
)

# Schema 4: rate-limit slots handed on before they are free (timestep._limits). A permit's
# row lives about a minute; a starter reads only the rows still cooling down, by the index.
rate_slots_table = sa.Table(
    "timestep_rate_slots",
    metadata,
    sa.Column("permit_id", sa.String(255), primary_key=True),
    sa.Column("queue_name", sa.String(255), nullable=False),
    # Epoch seconds: the permit ends (hands its slot on) at handed_at; the slot is free at free_at.
    sa.Column("handed_at", sa.Float, nullable=False),
    sa.Column("free_at", sa.Float, nullable=False),
)

# Schema 5: the decision each tool call of a waiting run got. The first insert of a call's row
# wins (the primary key); every later decision on it is refused and told this one.
decisions_table = sa.Table(
    "timestep_decisions",
    metadata,
    sa.Column("workflow_id", sa.String(255), primary_key=True),
    sa.Column("call_id", sa.String(255), primary_key=True),
    # Who inserted the row: a decider's random id, or ``timeout:<call_id>`` for the run itself.
    sa.Column("decision_id", sa.String(255), nullable=False),
    sa.Column("approve", sa.Boolean, nullable=False),
    sa.Column("always", sa.Boolean, nullable=False, default=False),
    sa.Column("message", sa.Text),
    sa.Column("decided_by", sa.String(255)),
    sa.Column("decided_at", sa.String(64), nullable=False),  # ISO 8601, as in the message
)

# Schema 6: the ledger of model calls guarded by a token limit or a budget
# (timestep._core.ledger). A row holds ``tokens`` of its provider's limit until ``expires_at``:
# the estimate while the call is in flight, the real usage once settled.
model_calls_table = sa.Table(
    "timestep_model_calls",
    metadata,
    sa.Column("call_id", sa.String(255), primary_key=True),  # <workflow id>:<step id>
    sa.Column("limit_key", sa.String(255)),  # a limited provider's prefix, else NULL
    sa.Column("workflow_id", sa.String(255), nullable=False, index=True),
    sa.Column("session_id", sa.String(255), index=True),
    sa.Column("agent_name", sa.String(255), index=True),
    sa.Column("tags", sa.Text, nullable=False, default=""),  # ",tenant-a,user-7," (or "")
    sa.Column("model", sa.String(255)),
    sa.Column("estimate_tokens", sa.Integer, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Float),
    sa.Column("settled", sa.Boolean, nullable=False, default=False),
    sa.Column("reserved_at", sa.Float, nullable=False, index=True),  # epoch seconds
    sa.Column("expires_at", sa.Float, nullable=False),
)

budgets_table = sa.Table(
    "timestep_budgets",
    metadata,
    sa.Column("scope", sa.String(255), primary_key=True),  # run:ID session:ID agent:NAME tag:T
    sa.Column("max_cost_usd", sa.Float),
    sa.Column("max_tokens", sa.BigInteger),
    sa.Column("per", sa.String(16), nullable=False),
    # "stop": the run fails with BudgetExceededError; "wait": the call waits until it fits.
    sa.Column("on_exceed", sa.String(8), nullable=False, default="stop"),
    sa.Column("updated_at", _ts, nullable=False, default=utcnow),
    sa.CheckConstraint("per IN ('run', 'day', 'month')", name="ck_budget_per"),
    sa.CheckConstraint("on_exceed IN ('stop', 'wait')", name="ck_budget_on_exceed"),
)

# One row per token limit or budget; a ledger transaction updates the rows it reads under, so
# transactions on the same limit or budget run one after another (Postgres row locks; SQLite's
# write lock). ``blocked_until``: a provider's 429 with Retry-After, for every worker.
ledger_locks_table = sa.Table(
    "timestep_ledger_locks",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False, default=0),
    sa.Column("blocked_until", sa.Float, nullable=False, default=0.0),
)

sa.Index(
    "ix_model_calls_limit_expires", model_calls_table.c.limit_key, model_calls_table.c.expires_at
)

# Schema 7: usage of the runs retention deleted, summed per day, agent and model, so that
# totals (get_usage(), get_usage(agent_name=...), /metrics) survive the runs' own rows.
usage_daily_table = sa.Table(
    "timestep_usage_daily",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD (UTC)
    sa.Column("agent_name", sa.String(255), primary_key=True),  # '' when unknown
    sa.Column("model", sa.String(255), primary_key=True),  # '' when unknown
    sa.Column("requests", sa.BigInteger, nullable=False, default=0),
    sa.Column("input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_usd", sa.Float, nullable=False, default=0.0),
    # How many of the summed calls had a price (none: the cost is unknown, not 0).
    sa.Column("priced_rows", sa.BigInteger, nullable=False, default=0),
)

# Schema 8: the newest word of each limited provider on its own limits per model, from the
# x-ratelimit-remaining-* / x-ratelimit-reset-* headers of its responses (epoch seconds;
# timestep._core.provider_feedback). Admissions of the provider's calls obey it (ledger.admit).
provider_feedback_table = sa.Table(
    "timestep_provider_feedback",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),  # "<prefix> <model>" (feedback_key)
    sa.Column("observed_at", sa.Float, nullable=False),
    sa.Column("remaining_requests", sa.BigInteger),
    sa.Column("requests_reset_at", sa.Float),
    sa.Column("remaining_tokens", sa.BigInteger),
    sa.Column("tokens_reset_at", sa.Float),
)

# Schema 9: the retries of a step that needed more than one attempt (timestep._core.retries):
# DBOS retries a step inside one step record, and a model client its HTTP request inside one
# execution of the step, and neither keeps a count.
step_retries_table = sa.Table(
    "timestep_step_retries",
    metadata,
    sa.Column("workflow_id", sa.String(255), primary_key=True),
    sa.Column("step_id", sa.Integer, primary_key=True),  # DBOS's function_id
    sa.Column("retries", sa.Integer, nullable=False),
    sa.Column("updated_at", _ts, nullable=False, default=utcnow, onupdate=utcnow),
)

# Schema 10: the calls of a limited provider waiting for room, in the order they began to
# wait (timestep._core.ledger: admission is first come, first served).
ledger_waits_table = sa.Table(
    "timestep_ledger_waits",
    metadata,
    sa.Column("call_id", sa.String(255), primary_key=True),
    sa.Column("limit_key", sa.String(255), nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False),  # the call's estimate
    sa.Column("since", sa.Float, nullable=False),  # epoch seconds
    sa.Column("look_at", sa.Float, nullable=False),  # when the call looks again
)
sa.Index("ix_ledger_waits_key_since", ledger_waits_table.c.limit_key, ledger_waits_table.c.since)

sa.Index("ix_rate_slots_queue_free_at", rate_slots_table.c.queue_name, rate_slots_table.c.free_at)
sa.Index("ix_run_states_session_seq", run_states_table.c.session_id, run_states_table.c.seq)
sa.Index("ix_tool_calls_status", tool_calls_table.c.status)
sa.Index(
    "ix_session_items_session_id_id", session_items_table.c.session_id, session_items_table.c.id
)


def _migrate_to_1(conn: sa.Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


def _migrate_to_2(conn: sa.Connection) -> None:
    # Migration 1 creates tables from the current metadata, so a database created at this
    # version already has the column: add it only where it is missing (SQLite and Postgres).
    columns = {c["name"] for c in sa.inspect(conn).get_columns(run_states_table.name)}
    if "payload_typescript" not in columns:
        conn.execute(
            sa.text(f"ALTER TABLE {run_states_table.name} ADD COLUMN payload_typescript TEXT")
        )


def _migrate_to_3(conn: sa.Connection) -> None:
    recorder_marks_table.create(conn, checkfirst=True)  # migration 1 may have made it already


def _migrate_to_4(conn: sa.Connection) -> None:
    rate_slots_table.create(conn, checkfirst=True)  # with its index


def _migrate_to_5(conn: sa.Connection) -> None:
    decisions_table.create(conn, checkfirst=True)


def _migrate_to_6(conn: sa.Connection) -> None:
    columns = {c["name"] for c in sa.inspect(conn).get_columns(usage_table.name)}
    if "tags" not in columns:
        conn.execute(sa.text(f"ALTER TABLE {usage_table.name} ADD COLUMN tags TEXT"))
    for table in (model_calls_table, budgets_table, ledger_locks_table):
        table.create(conn, checkfirst=True)  # with their indexes


def _migrate_to_7(conn: sa.Connection) -> None:
    usage_daily_table.create(conn, checkfirst=True)


def _migrate_to_8(conn: sa.Connection) -> None:
    provider_feedback_table.create(conn, checkfirst=True)


def _migrate_to_9(conn: sa.Connection) -> None:
    step_retries_table.create(conn, checkfirst=True)


def _migrate_to_10(conn: sa.Connection) -> None:
    ledger_waits_table.create(conn, checkfirst=True)


# Append-only: entry N upgrades a database at version N-1 to N. Never edit a released entry.
_MIGRATIONS: tuple[Callable[[sa.Connection], None], ...] = (
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_to_4,
    _migrate_to_5,
    _migrate_to_6,
    _migrate_to_7,
    _migrate_to_8,
    _migrate_to_9,
    _migrate_to_10,
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


def migrate(conn: sa.Connection) -> None:
    """Bring Timestep's tables on ``conn`` up to ``SCHEMA_VERSION``, in the caller's transaction.

    Concurrent first launches of several workers are serialised: by an advisory lock on
    Postgres, and on SQLite by the caller's ``BEGIN IMMEDIATE`` (the database's write lock)."""
    if conn.dialect.name == "postgresql":
        # Serialise concurrent first launches of several workers on one database.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274656)"))
    schema_version_table.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar() or 0
    if current > SCHEMA_VERSION:
        raise ConfigurationError(
            f"the database holds Timestep schema version {current}, newer than this "
            f"version of Timestep understands ({SCHEMA_VERSION}); upgrade timestep"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        _MIGRATIONS[version - 1](conn)
        conn.execute(sa.insert(schema_version_table).values(version=version, applied_at=utcnow()))


def insert_ignoring_duplicates_statement(dialect_name: str, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, on either dialect: replays re-insert the same keys."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def upsert_statement(dialect_name: str, table: sa.Table, keys: list[str], update: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE the ``update`` columns, on either dialect."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in update}
    )


async def insert_ignoring_duplicates(
    conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    if rows:
        await conn.execute(insert_ignoring_duplicates_statement(conn.dialect.name, table), rows)


async def upsert(
    conn: AsyncConnection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: list[str],
    update: list[str],
) -> None:
    if rows:
        await conn.execute(upsert_statement(conn.dialect.name, table, keys, update), rows)
