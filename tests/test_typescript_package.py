"""The TypeScript package (typescript/, ``@timestep-ai/timestep``) against the Python one.

- Cross-language runs through the shared Postgres tables: Python stops for an approval and
  saves; TypeScript's ``RunStateStore.load()`` picks the state up, approves it and finishes it
  with ``runAgent``; and the reverse. Both talk to Timestep's fake OpenAI server.
- The shared JSON fixtures in typescript/test/fixtures/ (store format rules, provider prefix
  rules, web_search formatting) hold for the Python package here and for the TypeScript package
  in its own suite (``node --test``), which the last test runs.
- Schema 2's ``payload_typescript`` column: what Python stores for the Node package.

Needs ``npm ci --prefix typescript`` and ``npm run --prefix typescript build`` (the README's
test command runs both); Postgres only, as the TypeScript store uses ``pg``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from interop import APPROVAL_TURN, RESUMED_CALLS, TOOL_TURN, agents, calls_and_outputs, deleted

from timestep import RunStateStore, Session, run_agent
from timestep._core.database import Engines
from timestep._core.process import process_state
from timestep._core.tables import SCHEMA_VERSION, run_states_table, utcnow
from timestep.errors import (
    MalformedStateError,
    StateAgentMismatchError,
    StateTooLargeError,
    UnsupportedSchemaVersionError,
)
from timestep.runstate import TYPESCRIPT_SCHEMA_VERSION
from timestep.testing import FakeModelServer, text

TS = Path(__file__).parent.parent / "typescript"
TS_FIXTURES = TS / "test" / "fixtures"
RUNSTATE_FIXTURES = Path(__file__).parent / "fixtures" / "runstate"
POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture(autouse=True)
def _reset() -> None:
    deleted.clear()


def _require_package() -> None:
    if shutil.which("node") is None:
        pytest.fail("node (v20+) is required for the TypeScript package tests")
    if not (TS / "node_modules" / "@openai" / "agents").is_dir():
        pytest.fail(
            "typescript/node_modules is missing: run "
            "`npm ci --prefix typescript --no-audit --no-fund` (the README's test command does)"
        )
    if not (TS / "dist" / "index.js").is_file():
        pytest.fail(
            "typescript/dist is missing: run `npm run --prefix typescript build` "
            "(the README's test command does)"
        )


def _node(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    _require_package()
    proc = subprocess.run(
        ["node", *args],
        cwd=TS,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        pytest.fail(f"node {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def _crosslang(*args: str, stream: bool = False) -> dict[str, Any]:
    env = {"TIMESTEP_TEST_STREAM": "1" if stream else "0"}
    return json.loads(_node("test/support/crosslang.mjs", *args, env=env))


# --------------------------------------------------------------------------- cross-language runs


@POSTGRES_ONLY
async def test_python_interrupted_run_finished_by_typescript(
    durable: str, fake_model: FakeModelServer
):
    agent = agents()
    session = Session(f"py-to-ts-{uuid.uuid4().hex[:8]}")
    session_id = await session._get_session_id()
    fake_model.add_turns(TOOL_TURN, APPROVAL_TURN)
    result = await run_agent(agent, "do things", session)
    assert [i.raw_item.name for i in result.interruptions] == ["delete_file"]
    store = RunStateStore(agent, session_id)
    await store.save(result.to_state())

    fake_model.add_turns(text("all done"))
    before = len(fake_model.requests)
    out = _crosslang("resume", fake_model.base_url, durable, session_id)

    assert out["finalOutput"] == "all done"
    assert out["interruptions"] == []
    assert out["deleted"] == ["/tmp/x"], "TypeScript ran the approved call"
    assert deleted == [], "Python did not"
    resumed = fake_model.requests[before:]
    assert len(resumed) == 1
    sent = resumed[0].json["input"]
    assert calls_and_outputs(sent) == RESUMED_CALLS
    assert next(
        i for i in sent if i.get("type") == "function_call_output" and i["call_id"] == "call_del"
    )
    # TypeScript appended its final state to the same session's history; Python reads it back.
    assert out["history"] == [
        {"stateType": "interrupted", "format": "python"},
        {"stateType": "checkpoint", "format": "typescript"},
    ]
    assert [(h.state_type, h.format) for h in await store.history()] == [
        ("interrupted", "python"),
        ("checkpoint", "typescript"),
    ]
    final = await store.load()
    assert final.get_interruptions() == []
    assert final.to_json()["context"]["usage"]["requests"] == 3


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
@POSTGRES_ONLY
async def test_typescript_interrupted_run_finished_by_python(
    durable: str, fake_model: FakeModelServer, stream: bool
):
    agent = agents()
    session = Session(f"ts-to-py-{uuid.uuid4().hex[:8]}")
    session_id = await session._get_session_id()
    await process_state().engines.get(
        durable
    )  # the tables exist before Node writes (Python migrates them)
    fake_model.add_turns(TOOL_TURN, APPROVAL_TURN)
    out = _crosslang("start", fake_model.base_url, durable, session_id, "do things", stream=stream)
    assert (out["streamedEvents"] or 0) > 0 if stream else out["streamedEvents"] is None
    assert out["interruptions"] == [{"toolName": "delete_file", "callId": "call_del"}]
    assert out["history"] == [{"stateType": "interrupted", "format": "typescript"}]

    store = RunStateStore(agent, session_id)
    state = await store.load()
    pending = state.get_interruptions()
    assert [(p.tool_name, p.call_id) for p in pending] == [("delete_file", "call_del")]
    state.approve(pending[0])

    fake_model.add_turns(text("all done"))
    before = len(fake_model.requests)
    result = await run_agent(agent, state, session)

    assert result.final_output == "all done"
    assert deleted == ["/tmp/x"]
    sent = fake_model.requests[before].json["input"]
    assert calls_and_outputs(sent) == RESUMED_CALLS
    assert (sent[0]["role"], sent[0]["content"]) == ("user", "do things")
    assert result.to_state().to_json()["context"]["usage"]["requests"] == 3


# --------------------------------------------------------------------------- schema 2 column


async def _row(url: str, state_id: str) -> Any:
    engine = await process_state().engines.get(url)
    async with engine.connect() as conn:
        query = sa.select(run_states_table).where(run_states_table.c.state_id == state_id)
        return (await conn.execute(query)).mappings().one()


def test_the_typescript_package_knows_the_newest_schema():
    """It refuses databases newer than its TIMESTEP_SCHEMA_VERSION: a Python migration must
    raise it too (after checking the package works with the new schema)."""
    source = (TS / "src" / "store.ts").read_text()
    assert f"export const TIMESTEP_SCHEMA_VERSION = {SCHEMA_VERSION};" in source


async def test_python_save_stores_the_typescript_form(database_url: str):
    agent = agents()
    store = RunStateStore(agent, f"s-{uuid.uuid4().hex}", database_url=database_url)
    python_id = await store.save((RUNSTATE_FIXTURES / "python_interrupted.json").read_text())
    ts_id = await store.save((RUNSTATE_FIXTURES / "typescript_interrupted.json").read_text())

    python_row = await _row(database_url, python_id)
    exported = json.loads(python_row["payload_typescript"])
    assert exported["$schemaVersion"] == TYPESCRIPT_SCHEMA_VERSION
    assert exported["currentAgent"] == {"name": "ops"}
    assert (await _row(database_url, ts_id))["payload_typescript"] is None


async def test_failed_export_never_fails_the_save(database_url: str, monkeypatch, caplog):
    from timestep._core import state_rows

    def broken(_: Any) -> str:
        raise ValueError("converter bug")

    monkeypatch.setattr(state_rows, "to_typescript", broken)
    store = RunStateStore(agents(), f"s-{uuid.uuid4().hex}", database_url=database_url)
    state_id = await store.save((RUNSTATE_FIXTURES / "python_interrupted.json").read_text())
    assert (await _row(database_url, state_id))["payload_typescript"] is None
    assert "without its TypeScript form" in caplog.text
    assert (await store.load()).get_interruptions()


async def test_exported_form_holds_no_secrets(database_url: str, monkeypatch):
    secret = "sk-timestep-test-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    process_state().reload_settings()
    try:
        data = json.loads((RUNSTATE_FIXTURES / "python_interrupted.json").read_text())
        data["original_input"] = f"my key is {secret}"
        store = RunStateStore(agents(), f"s-{uuid.uuid4().hex}", database_url=database_url)
        row = await _row(database_url, await store.save(json.dumps(data)))
    finally:
        process_state().reload_settings()
    assert secret not in row["payload"] and secret not in row["payload_typescript"]
    assert "my key is [redacted]" in row["payload_typescript"]


# --------------------------------------------------------------------------- shared fixtures

_ERRORS = {
    "StateAgentMismatchError": StateAgentMismatchError,
    "UnsupportedSchemaVersionError": UnsupportedSchemaVersionError,
    "StateTooLargeError": StateTooLargeError,
    "MalformedStateError": MalformedStateError,
}
_STORE_RULES = json.loads((TS_FIXTURES / "store_rules.json").read_text())["cases"]


@pytest.mark.parametrize("rule", _STORE_RULES, ids=[r["name"] for r in _STORE_RULES])
@POSTGRES_ONLY
async def test_store_rules_hold_in_python(database_url: str, monkeypatch, rule: dict[str, Any]):
    for name, value in rule.get("env", {}).items():
        monkeypatch.setenv(name, value)
    process_state().reload_settings()
    try:
        if "payload" in rule:
            payload = rule["payload"]
        else:
            payload = json.loads((RUNSTATE_FIXTURES / rule["fixture"]).read_text())
            payload = json.dumps({**payload, **rule.get("set", {})})
        store = RunStateStore(
            agents(),
            f"s-{uuid.uuid4().hex}",
            database_url=database_url,
            max_state_bytes=rule.get("maxStateBytes"),
        )
        kwargs = {"state_type": rule["saveStateType"]} if "saveStateType" in rule else {}
        if "error" in rule:
            with pytest.raises(_ERRORS[rule["error"]]):
                await store.save(payload, **kwargs)
            assert await store.history() == []
            return
        row = await _row(database_url, await store.save(payload, **kwargs))
    finally:
        process_state().reload_settings()
    assert row["state_type"] == rule["stateType"]
    assert row["format"] == "typescript"
    assert row["payload_typescript"] is None
    if "storedContains" in rule:
        assert rule["storedContains"] in row["payload"]
    if "storedExcludes" in rule:
        assert rule["storedExcludes"] not in row["payload"]


_PREFIX_RULES = json.loads((TS_FIXTURES / "prefix_rules.json").read_text())["cases"]


@pytest.mark.parametrize(
    "rule",
    _PREFIX_RULES,
    ids=[f"{r['model']}-{'+'.join(r.get('mapped', []))}" for r in _PREFIX_RULES],
)
def test_prefix_rules_hold_in_python(rule: dict[str, Any]):
    from agents.exceptions import UserError

    from providers import MultiModelProvider, MultiModelProviderMap, OllamaModelProvider

    mapped = {
        p: OllamaModelProvider(base_url=f"http://{p}.invalid:11434") for p in rule.get("mapped", [])
    }
    provider = MultiModelProvider(provider_map=MultiModelProviderMap(mapped), openai_api_key="test")
    if "error" in rule:
        with pytest.raises(UserError) as caught:
            provider.route(rule["model"])
        assert rule["error"] in str(caught.value)
        for word in rule.get("errorMentions", []):
            assert word in str(caught.value)
        return
    route = provider.route(rule["model"])
    assert (route.prefix, route.model_name) == (rule["prefix"], rule["modelName"])
    kind = next((f"mapped:{p}" for p, v in mapped.items() if v is route.provider), None)
    if kind is None and isinstance(route.provider, OllamaModelProvider):
        kind = "ollama-cloud" if route.provider.is_cloud else "ollama-local"
    assert (kind or "openai") == rule["provider"]
    if "apiModelName" in rule:
        assert route.provider.api_model_name(route.model_name) == rule["apiModelName"]


_FORMATS = json.loads((TS_FIXTURES / "web_search_format.json").read_text())["cases"]


@pytest.mark.parametrize("case", _FORMATS, ids=[c["name"] for c in _FORMATS])
def test_web_search_format_holds_in_python(case: dict[str, Any]):
    from providers._web_search import _format_results

    assert _format_results(case["query"], case["data"]) == case["markdown"]


# --------------------------------------------------------------------------- the node suite


def test_typescript_package_suite(postgres_url: str):
    """``node --test`` over typescript/test/*.test.mjs, with a migrated Postgres database."""
    import asyncio

    asyncio.run(_migrate(postgres_url))
    tests = sorted(str(p.relative_to(TS)) for p in (TS / "test").glob("*.test.mjs"))
    assert tests, "typescript/test/*.test.mjs is missing"
    out = _node(
        "--test",
        "--test-reporter=tap",
        *tests,
        env={"TIMESTEP_TEST_DATABASE_URL": postgres_url},
        timeout=180,
    )
    assert "# fail 0" in out and "# skipped 0" in out, out[-4000:]


async def _migrate(url: str) -> None:
    engines = Engines()
    await engines.get(url)
    engines.dispose()


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_migrations_upgrade_a_schema_1_database(database_url: str, tmp_path):
    """A database created by schema 1 gains ``payload_typescript`` (2), whose rows keep NULL
    there, the recorder's marks table (3) and the rate limits' slots table (4)."""
    from sqlalchemy.engine import make_url

    from timestep._core.database import sync_engine_for
    from timestep._core.tables import metadata, schema_version_table

    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.sqlite'}"
        schema = None
    else:
        url, schema = database_url, f"old_{uuid.uuid4().hex[:8]}"
    engine = sync_engine_for(url)
    try:
        with engine.begin() as conn:
            if schema:  # a schema 1 database of its own, on the same server
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
                conn.execute(sa.text(f"SET search_path TO {schema}"))
            metadata.create_all(conn)
            conn.execute(sa.text("ALTER TABLE timestep_run_states DROP COLUMN payload_typescript"))
            conn.execute(sa.text("DROP TABLE timestep_recorder_marks"))
            conn.execute(sa.text("DROP TABLE timestep_rate_slots"))
            conn.execute(sa.insert(schema_version_table).values(version=1, applied_at=utcnow()))
        if schema:
            url = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
            url = url.render_as_string(hide_password=False)
        Engines().sync(url).dispose()  # a fresh cache migrates on first use
        check = sync_engine_for(url)
        try:
            with check.connect() as conn:
                columns = {c["name"] for c in sa.inspect(conn).get_columns("timestep_run_states")}
                tables = set(sa.inspect(conn).get_table_names())
                versions = conn.execute(sa.select(schema_version_table.c.version)).scalars().all()
                if schema:
                    assert conn.execute(sa.text("SELECT current_schema()")).scalar() == schema
        finally:
            check.dispose()
        assert "payload_typescript" in columns
        assert {"timestep_recorder_marks", "timestep_rate_slots"} <= tables
        assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        if schema:
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
