// RunStateStore against Postgres. The database must already hold Timestep's tables (the Python
// package creates them): tests/test_typescript_package.py runs this file with
// TIMESTEP_TEST_DATABASE_URL set to a fresh, migrated database.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { RunState } from '@openai/agents';
import { FIXTURES, RUNSTATE_FIXTURES, readJson, timestep } from './support/load.mjs';
import { makeAgents } from './support/agents.mjs';

const { RunStateStore, closeAllStores } = timestep;
const url = process.env.TIMESTEP_TEST_DATABASE_URL;
const skip = url
  ? false
  : 'TIMESTEP_TEST_DATABASE_URL is not set (pytest tests/test_typescript_package.py sets it)';
const rules = readJson(path.join(FIXTURES, 'store_rules.json'));
const db = url ? new pg.Pool({ connectionString: url.replace(/^postgresql\+\w+:/, 'postgresql:') }) : null;

after(async () => {
  await closeAllStores();
  await db?.end();
});

const fixture = (name) => fs.readFileSync(path.join(RUNSTATE_FIXTURES, name), 'utf8');
const newSession = () => `ts-test-${randomUUID()}`;

function casePayload(rule) {
  if (rule.payload !== undefined) return rule.payload;
  return JSON.stringify({ ...JSON.parse(fixture(rule.fixture)), ...(rule.set ?? {}) });
}

for (const rule of rules.cases) {
  test(`store rule: ${rule.name}`, { skip }, async () => {
    const saved = { ...process.env };
    Object.assign(process.env, rule.env ?? {});
    try {
      const { ops } = makeAgents();
      const store = new RunStateStore({
        agent: ops,
        sessionId: newSession(),
        connectionString: url,
        maxStateBytes: rule.maxStateBytes,
      });
      const save = () => store.save(casePayload(rule), rule.saveStateType ? { stateType: rule.saveStateType } : {});
      if (rule.error) {
        await assert.rejects(save, (error) => {
          assert.equal(error.name, rule.error, error.message);
          return true;
        });
        assert.deepEqual(await store.history(), [], 'nothing is written when validation fails');
        return;
      }
      const stateId = await save();
      const [row] = await store.history();
      assert.equal(row.stateId, stateId);
      assert.equal(row.stateType, rule.stateType);
      assert.equal(row.format, 'typescript');
      assert.equal(row.agentName, 'ops');
      assert.equal(row.schemaVersion, '1.22');
      const { rows } = await db.query('SELECT payload, payload_typescript FROM timestep_run_states WHERE state_id = $1', [stateId]);
      assert.equal(rows[0].payload_typescript, null);
      if (rule.storedContains) assert.ok(rows[0].payload.includes(rule.storedContains));
      if (rule.storedExcludes) assert.ok(!rows[0].payload.includes(rule.storedExcludes));
    } finally {
      process.env = saved;
    }
  });
}

test('load() returns the newest state, load(stateId) a given one; history() is oldest first', { skip }, async () => {
  const { ops } = makeAgents();
  const store = new RunStateStore({ agent: ops, sessionId: newSession(), connectionString: url });
  await assert.rejects(store.load(), { name: 'StateNotFoundError' });
  const first = await store.save(fixture('typescript_interrupted.json'));
  const second = await store.save(fixture('typescript_completed.json'));
  const newest = await store.load();
  assert.ok(newest instanceof RunState);
  assert.equal(newest.getInterruptions().length, 0);
  const older = await store.load(first);
  assert.deepEqual(older.getInterruptions().map((i) => i.rawItem.callId), ['call_del']);
  assert.deepEqual((await store.history()).map((h) => [h.stateId, h.stateType]), [
    [first, 'interrupted'],
    [second, 'checkpoint'],
  ]);
  await assert.rejects(store.load('state_nope'), { name: 'StateNotFoundError' });
  const { rows } = await db.query('SELECT tools FROM timestep_agents WHERE name = $1', ['ops']);
  assert.deepEqual(rows[0].tools, ['add', 'delete_file', 'get_weather']);
});

test('a RunState instance saves as written, with its pending approvals', { skip }, async () => {
  const { ops } = makeAgents();
  const store = new RunStateStore({ agent: ops, sessionId: newSession(), connectionString: url });
  const state = await RunState.fromString(ops, fixture('typescript_interrupted.json'));
  const stateId = await store.save(state, { workflowId: 'wf-1' });
  const [row] = await store.history();
  assert.deepEqual([row.stateId, row.stateType, row.workflowId], [stateId, 'interrupted', 'wf-1']);
});

test('Python-format documents are refused (save them from Python)', { skip }, async () => {
  const { ops } = makeAgents();
  const store = new RunStateStore({ agent: ops, sessionId: newSession(), connectionString: url });
  await assert.rejects(store.save(fixture('python_interrupted.json')), /Python RunStateStore/);
});

async function insertPythonRow(sessionId, payloadTypescript) {
  await db.query(
    `INSERT INTO timestep_run_states (state_id, session_id, agent_name, state_type, schema_version,
       format, payload, payload_typescript, created_at)
     VALUES ($1, $2, 'ops', 'interrupted', '1.21', 'python', $3, $4, now())`,
    [`state_${randomUUID()}`, sessionId, fixture('python_interrupted.json'), payloadTypescript],
  );
}

test('a python row loads through its payload_typescript', { skip }, async () => {
  const { ops } = makeAgents();
  const sessionId = newSession();
  await insertPythonRow(sessionId, fixture('typescript_interrupted.json'));
  const state = await new RunStateStore({ agent: ops, sessionId, connectionString: url }).load();
  assert.equal(state.getInterruptions()[0].rawItem.name, 'delete_file');
});

test('a python row without payload_typescript says how to fix it', { skip }, async () => {
  const { ops } = makeAgents();
  const sessionId = newSession();
  await insertPythonRow(sessionId, null);
  await assert.rejects(new RunStateStore({ agent: ops, sessionId, connectionString: url }).load(), {
    name: 'StateNotExportedError',
    message: /saved by a Timestep version without TypeScript export; re-save it from Python/,
  });
});

test("loading another agent's state is refused", { skip }, async () => {
  const { ops, billing } = makeAgents();
  const sessionId = newSession();
  await new RunStateStore({ agent: ops, sessionId, connectionString: url }).save(fixture('typescript_interrupted.json'));
  await assert.rejects(new RunStateStore({ agent: billing, sessionId, connectionString: url }).load(), {
    name: 'StateAgentMismatchError',
  });
});

test('non-Postgres URLs and a missing URL are configuration errors', async () => {
  const { ops } = makeAgents();
  const saved = { ...process.env };
  try {
    delete process.env.PG_CONNECTION_URI;
    delete process.env.TIMESTEP_DATABASE_URL;
    await assert.rejects(new RunStateStore({ agent: ops }).load(), { name: 'ConfigurationError' });
    await assert.rejects(
      new RunStateStore({ agent: ops, connectionString: 'sqlite:///x.db' }).load(),
      /Postgres only/,
    );
  } finally {
    process.env = saved;
  }
});
