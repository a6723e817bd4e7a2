/**
 * `RunStateStore`: a session's RunState snapshots in the Postgres tables the Python package
 * (`timestep.RunStateStore`) uses, so that a run interrupted in one language resumes in the other.
 *
 * Format rules (the same as Python's; `test/fixtures/store_rules.json` drives both test suites):
 *
 * - `save()` appends a row of format `typescript` holding the payload exactly as
 *   `RunState.toString()` wrote it (Python converts such rows when it loads them);
 * - `load()` reads a `typescript` row's payload, or a `python` row's `payload_typescript` (the
 *   TypeScript form Python stores beside its own since Timestep schema 2);
 * - `state_type` is `interrupted` when the state has pending approvals, else `checkpoint`;
 * - payloads over `TIMESTEP_MAX_STATE_BYTES` (default 16 MiB) are refused;
 * - configured secrets (OPENAI_API_KEY, OLLAMA_API_KEY, FIRECRAWL_API_KEY, TIMESTEP_API_TOKEN)
 *   never reach the database;
 * - a state of an agent outside the store's agent graph, or of an unknown schema version, is
 *   refused with a typed error.
 *
 * The tables are created and migrated by the Python package (run it once against the
 * database); this store only reads and writes rows.
 */
import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { Agent, RunState } from '@openai/agents';

import {
  ConfigurationError,
  MalformedStateError,
  StateAgentMismatchError,
  StateNotFoundError,
  StateTooLargeError,
  UnsupportedSchemaVersionError,
} from './errors.js';

export type StateType = 'interrupted' | 'checkpoint' | 'completed';
export type StateFormat = 'python' | 'typescript';

/** One row of a session's history (without its payload). */
export interface StoredState {
  stateId: string;
  sessionId: string;
  agentName: string;
  workflowId: string | null;
  stateType: StateType;
  schemaVersion: string;
  format: StateFormat;
  size: number;
  createdAt: Date;
}

export interface RunStateStoreOptions {
  /** The starting agent of the graph the states belong to. */
  agent: Agent<any, any>;
  /** Defaults to a new `session_<hex>` id. */
  sessionId?: string;
  /** Postgres URL; defaults to PG_CONNECTION_URI, then TIMESTEP_DATABASE_URL. */
  connectionString?: string;
  /** Use this pool instead of one created (and shared) per connection string. */
  pool?: pg.Pool;
  /** Defaults to TIMESTEP_MAX_STATE_BYTES, then 16 MiB. */
  maxStateBytes?: number;
}

export interface SaveOptions {
  /** Defaults to `interrupted` with pending approvals, else `checkpoint`. */
  stateType?: StateType;
  workflowId?: string | null;
}

/** The newest Timestep database schema this package works with (see timestep/_storage.py).
 * Schema 2 added `payload_typescript`, which it needs; schemas 3 to 10 added tables of the
 * Python recorder's, rate limits', first-wins decisions' and the token limits' and budgets'
 * ledger, daily usage sums (and a `tags` column of `timestep_usage`), providers' rate-limit
 * feedback, step retries and the ledger's waiting line, that it does not touch. */
export const TIMESTEP_SCHEMA_VERSION = 10;
const OLDEST_TIMESTEP_SCHEMA_VERSION = 2;
/** The RunState schema versions the store accepts: what the pinned @openai/agents writes and
 * what the Python package converts. */
export const SUPPORTED_SCHEMA_VERSIONS: readonly string[] = ['1.22'];
export const DEFAULT_MAX_STATE_BYTES = 16 * 1024 * 1024;

const REDACTED = '[redacted]';
const SECRET_VARIABLES = [
  'OPENAI_API_KEY',
  'OLLAMA_API_KEY',
  'FIRECRAWL_API_KEY',
  'TIMESTEP_API_TOKEN',
];
const PYTHON_KEYS = ['current_turn', 'current_agent', 'original_input', 'generated_items'];
const TYPESCRIPT_KEYS = ['currentTurn', 'currentAgent', 'originalInput', 'generatedItems'];
const STATE_TYPES: readonly StateType[] = ['interrupted', 'checkpoint', 'completed'];

/** A python-format row saved before Timestep schema 2, or whose conversion failed. */
export class StateNotExportedError extends MalformedStateError {}

export class RunStateStore {
  readonly agent: Agent<any, any>;
  readonly sessionId: string;
  private readonly connectionString: string | undefined;
  private readonly maxBytes: number;
  private pool: pg.Pool | undefined;
  private readonly externalPool: boolean;

  constructor(options: RunStateStoreOptions) {
    if (!options?.agent) throw new TypeError('RunStateStore needs { agent }');
    this.agent = options.agent;
    this.sessionId = options.sessionId || `session_${randomUUID().replace(/-/g, '')}`;
    this.pool = options.pool;
    this.externalPool = options.pool !== undefined;
    this.connectionString =
      options.connectionString ||
      process.env.PG_CONNECTION_URI ||
      process.env.TIMESTEP_DATABASE_URL ||
      undefined;
    this.maxBytes = options.maxStateBytes ?? maxStateBytesFromEnv();
    if (!Number.isInteger(this.maxBytes) || this.maxBytes <= 0) {
      throw new ConfigurationError(`maxStateBytes must be a positive integer, not ${this.maxBytes}`);
    }
  }

  /** Validate and append `state` to the session's history; return its `stateId`. */
  async save(
    state: RunState<any, any> | string | Record<string, unknown>,
    options: SaveOptions = {},
  ): Promise<string> {
    let data: Record<string, any>;
    let interrupted: boolean;
    if (state instanceof RunState) {
      data = JSON.parse(state.toString());
      checkVersion(data);
      this.checkAgent(data);
      interrupted = state.getInterruptions().length > 0;
    } else {
      data = parseDocument(state);
      if (detectFormat(data) === 'python') {
        throw new MalformedStateError(
          'this RunState was written by the Python SDK: save it with the Python RunStateStore ' +
            '(the TypeScript package does not convert states)',
        );
      }
      checkVersion(data);
      this.checkAgent(data);
      await this.validated(data);
      interrupted = pendingApprovals(data).length > 0;
    }
    const stateType = options.stateType ?? (interrupted ? 'interrupted' : 'checkpoint');
    if (!STATE_TYPES.includes(stateType)) {
      throw new TypeError(`stateType must be one of ${STATE_TYPES.join(', ')}, not ${stateType}`);
    }
    const payload = withoutSecrets(JSON.stringify(data));
    const size = Buffer.byteLength(payload, 'utf8');
    if (size > this.maxBytes) {
      throw new StateTooLargeError(
        `RunState payload is ${size} bytes, over the limit of ${this.maxBytes} ` +
          '(TIMESTEP_MAX_STATE_BYTES)',
      );
    }
    const stateId = `state_${randomUUID().replace(/-/g, '')}`;
    const agentRow = agentRowOf(this.agent);
    const client = await (await this.getPool()).connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO timestep_agents (name, model, instructions_hash, tools, updated_at)
         VALUES ($1, $2, $3, $4::json, $5)
         ON CONFLICT (name) DO UPDATE SET model = EXCLUDED.model,
           instructions_hash = EXCLUDED.instructions_hash, tools = EXCLUDED.tools,
           updated_at = EXCLUDED.updated_at`,
        [agentRow.name, agentRow.model, agentRow.instructionsHash, JSON.stringify(agentRow.tools), new Date()],
      );
      await client.query(
        `INSERT INTO timestep_run_states (state_id, session_id, agent_name, workflow_id,
           state_type, schema_version, format, payload, payload_typescript, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'typescript', $7, NULL, $8)`,
        [
          stateId,
          this.sessionId,
          this.agent.name,
          options.workflowId ?? null,
          stateType,
          String(data.$schemaVersion),
          payload,
          new Date(),
        ],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    return stateId;
  }

  /** The newest snapshot of the session, or the one with `stateId`. */
  async load(stateId?: string): Promise<RunState<any, any>> {
    const params: string[] = [this.sessionId];
    let where = 'session_id = $1';
    if (stateId !== undefined) {
      params.push(stateId);
      where += ' AND state_id = $2';
    }
    const { rows } = await (await this.getPool()).query(
      `SELECT state_id, format, payload, payload_typescript FROM timestep_run_states
       WHERE ${where} ORDER BY seq DESC LIMIT 1`,
      params,
    );
    if (rows.length === 0) {
      const which = stateId ? `state '${stateId}'` : 'any state';
      throw new StateNotFoundError(`session '${this.sessionId}' has no ${which}`);
    }
    const row = rows[0];
    let text: string;
    if (row.format === 'typescript') {
      text = row.payload;
    } else if (row.payload_typescript == null) {
      throw new StateNotExportedError(
        `state '${row.state_id}' was saved by a Timestep version without TypeScript export; ` +
          're-save it from Python',
      );
    } else {
      text = row.payload_typescript;
    }
    const data = parseDocument(text);
    checkVersion(data);
    this.checkAgent(data);
    return this.validated(data);
  }

  /** The session's snapshots, oldest first. */
  async history(): Promise<StoredState[]> {
    const { rows } = await (await this.getPool()).query(
      `SELECT state_id, session_id, agent_name, workflow_id, state_type, schema_version, format,
         length(payload) AS size, created_at
       FROM timestep_run_states WHERE session_id = $1 ORDER BY seq`,
      [this.sessionId],
    );
    return rows.map((r) => ({
      stateId: r.state_id,
      sessionId: r.session_id,
      agentName: r.agent_name,
      workflowId: r.workflow_id,
      stateType: r.state_type,
      schemaVersion: r.schema_version,
      format: r.format,
      size: Number(r.size),
      createdAt: r.created_at,
    }));
  }

  /** Close the pool this store created (a pool passed in is left to its owner). */
  async close(): Promise<void> {
    if (this.externalPool || this.pool === undefined) return;
    this.pool = undefined;
    await closePool(this.connectionString);
  }

  private async validated(data: Record<string, any>): Promise<RunState<any, any>> {
    try {
      return await RunState.fromString(this.agent, JSON.stringify(data));
    } catch (error) {
      const err = error as Error;
      throw new MalformedStateError(`not a loadable RunState (${err.name}: ${err.message})`);
    }
  }

  private checkAgent(data: Record<string, any>): void {
    const current = data.currentAgent?.name;
    const known = agentNames(this.agent);
    if (current !== undefined && current !== null && !known.has(current)) {
      throw new StateAgentMismatchError(
        `the state belongs to agent '${current}', which is not '${this.agent.name}' ` +
          `or one of its handoffs (${[...known].sort().join(', ')})`,
      );
    }
  }

  private async getPool(): Promise<pg.Pool> {
    if (!this.pool) {
      if (!this.connectionString) {
        throw new ConfigurationError(
          'RunStateStore needs a Postgres database: pass { connectionString } or set ' +
            'PG_CONNECTION_URI (or TIMESTEP_DATABASE_URL)',
        );
      }
      this.pool = await sharedPool(this.connectionString);
    }
    return this.pool;
  }
}

// ------------------------------------------------------------------------------------ pools

const pools = new Map<string, Promise<pg.Pool>>();

function normalizeUrl(url: string): string {
  const scheme = url.split('://', 1)[0];
  if (!scheme.startsWith('postgres')) {
    throw new ConfigurationError(
      `the TypeScript RunStateStore supports Postgres only, not ${scheme}:// URLs`,
    );
  }
  // SQLAlchemy URLs name a driver (postgresql+psycopg://); pg does not want one.
  return url.replace(/^postgres(ql)?\+[a-z0-9_]+:\/\//, 'postgresql://');
}

async function sharedPool(url: string): Promise<pg.Pool> {
  const key = normalizeUrl(url);
  let pool = pools.get(key);
  if (!pool) {
    pool = (async () => {
      const created = new pg.Pool({ connectionString: key, allowExitOnIdle: true });
      try {
        await checkSchema(created);
      } catch (error) {
        await created.end().catch(() => undefined);
        throw error;
      }
      return created;
    })();
    pools.set(key, pool);
    pool.catch(() => pools.delete(key));
  }
  return pool;
}

async function closePool(url: string | undefined): Promise<void> {
  if (!url) return;
  const key = normalizeUrl(url);
  const pool = pools.get(key);
  pools.delete(key);
  if (pool) await (await pool).end();
}

/** Close every pool the stores of this process opened. */
export async function closeAllStores(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map(async (p) => (await p).end().catch(() => undefined)));
}

async function checkSchema(pool: pg.Pool): Promise<void> {
  let version: number;
  try {
    const { rows } = await pool.query('SELECT max(version) AS version FROM timestep_schema_version');
    version = Number(rows[0]?.version ?? 0);
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') {
      throw new ConfigurationError(
        'the database has no Timestep tables: the Python package creates and migrates them ' +
          '(run any Timestep store or durable run against this database once)',
      );
    }
    throw error;
  }
  if (version < OLDEST_TIMESTEP_SCHEMA_VERSION) {
    throw new ConfigurationError(
      `the database holds Timestep schema version ${version}; this package needs ` +
        `${OLDEST_TIMESTEP_SCHEMA_VERSION} (payload_typescript): upgrade the Python package and run it ` +
        'once against this database to migrate it',
    );
  }
  if (version > TIMESTEP_SCHEMA_VERSION) {
    throw new ConfigurationError(
      `the database holds Timestep schema version ${version}, newer than this version of ` +
        `@timestep-ai/timestep understands (${TIMESTEP_SCHEMA_VERSION}); upgrade it`,
    );
  }
}

// ---------------------------------------------------------------------------------- helpers

function maxStateBytesFromEnv(): number {
  const raw = process.env.TIMESTEP_MAX_STATE_BYTES;
  if (raw === undefined || raw === '') return DEFAULT_MAX_STATE_BYTES;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new ConfigurationError(`TIMESTEP_MAX_STATE_BYTES must be a positive integer, not ${raw}`);
  }
  return value;
}

/** `python` (snake_case, openai-agents) or `typescript` (camelCase, @openai/agents). */
export function detectFormat(data: Record<string, unknown>): StateFormat {
  const python = PYTHON_KEYS.filter((k) => k in data).length;
  const typescript = TYPESCRIPT_KEYS.filter((k) => k in data).length;
  if (python === typescript) {
    throw new MalformedStateError(
      'cannot tell whether this RunState was written by the Python or the TypeScript SDK ' +
        '(it has neither current_turn/current_agent nor currentTurn/currentAgent)',
    );
  }
  return python > typescript ? 'python' : 'typescript';
}

function parseDocument(value: string | Record<string, unknown>): Record<string, any> {
  let data: unknown = value;
  if (typeof value === 'string') {
    try {
      data = JSON.parse(value);
    } catch (error) {
      throw new MalformedStateError(`RunState payload is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data) || !('$schemaVersion' in data)) {
    throw new MalformedStateError('RunState payload is not a JSON object with a $schemaVersion');
  }
  return data as Record<string, any>;
}

function checkVersion(data: Record<string, any>): void {
  const version = data.$schemaVersion;
  if (!SUPPORTED_SCHEMA_VERSIONS.includes(version)) {
    throw new UnsupportedSchemaVersionError(
      `RunState schema version ${JSON.stringify(version)} is not supported (this package reads ` +
        `${SUPPORTED_SCHEMA_VERSIONS.join(', ')}, what @openai/agents 0.20 writes)`,
    );
  }
}

function pendingApprovals(data: Record<string, any>): unknown[] {
  const step = data.currentStep;
  if (!step || typeof step !== 'object' || step.type !== 'next_step_interruption') return [];
  const items = step.data?.interruptions;
  return Array.isArray(items) ? items : [];
}

/** Configured keys must never reach the database, whatever the run's context holds. */
export function withoutSecrets(payload: string): string {
  for (const name of SECRET_VARIABLES) {
    const value = process.env[name] ?? '';
    if (value.length >= 8 && payload.includes(value)) payload = payload.split(value).join(REDACTED);
  }
  return payload;
}

function agentNames(agent: Agent<any, any>): Set<string> {
  const names = new Set<string>();
  const stack: unknown[] = [agent];
  while (stack.length) {
    const current = stack.pop();
    if (!(current instanceof Agent) || names.has(current.name)) continue;
    names.add(current.name);
    for (const h of current.handoffs as unknown[]) {
      stack.push(h instanceof Agent ? h : (h as { agent?: unknown })?.agent);
    }
  }
  return names;
}

function agentRowOf(agent: Agent<any, any>) {
  const model =
    typeof agent.model === 'string'
      ? agent.model || null
      : agent.model
        ? (agent.model as object).constructor.name
        : null;
  const instructions = typeof agent.instructions === 'string' ? agent.instructions : '';
  return {
    name: agent.name,
    model,
    instructionsHash: instructions ? createHash('sha256').update(instructions).digest('hex') : null,
    tools: agent.tools.map((t) => (t as { name?: string }).name ?? t.constructor.name).sort(),
  };
}
