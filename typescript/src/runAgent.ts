/**
 * `runAgent(agent, inputOrState, session, stream)`: the Python package's entry point, over the
 * SDK's `Runner.run()`. It is NOT durable: TypeScript has no DBOS integration here, so a crashed
 * Node process loses the run in flight. Persist what must survive with `RunStateStore`.
 */
import {
  Agent,
  ModelProvider,
  RunResult,
  RunState,
  Runner,
  StreamedRunResult,
} from '@openai/agents';
import type { AgentInputItem, Session } from '@openai/agents';

import { MultiModelProvider } from './providers.js';

export interface RunAgentOptions {
  /** Defaults to a `MultiModelProvider` (OpenAI, `ollama/...`) configured from the environment. */
  modelProvider?: ModelProvider;
  /** Use this runner as is (its own model provider and config). */
  runner?: Runner;
  context?: unknown;
  maxTurns?: number;
  signal?: AbortSignal;
}

export type RunAgentInput = string | AgentInputItem[] | RunState<any, any>;

let defaultProvider: ModelProvider | undefined;

function runnerFor(options: RunAgentOptions): Runner {
  if (options.runner) return options.runner;
  defaultProvider ??= new MultiModelProvider();
  return new Runner({ modelProvider: options.modelProvider ?? defaultProvider });
}

export function runAgent(
  agent: Agent<any, any>,
  inputOrState: RunAgentInput,
  session?: Session,
  stream?: false,
  options?: RunAgentOptions,
): Promise<RunResult<any, any>>;
export function runAgent(
  agent: Agent<any, any>,
  inputOrState: RunAgentInput,
  session: Session | undefined,
  stream: true,
  options?: RunAgentOptions,
): Promise<StreamedRunResult<any, any>>;
/**
 * Run `agent` on `inputOrState` (input text or items, or a `RunState` to resume, e.g. after
 * approving its interruptions), keeping the conversation in `session` when given. With
 * `stream = true` the result streams events (`for await (const e of result)`, then
 * `await result.completed`).
 */
export async function runAgent(
  agent: Agent<any, any>,
  inputOrState: RunAgentInput,
  session?: Session,
  stream = false,
  options: RunAgentOptions = {},
): Promise<RunResult<any, any> | StreamedRunResult<any, any>> {
  const runner = runnerFor(options);
  const runOptions: Record<string, unknown> = {};
  if (session) runOptions.session = session;
  if (options.context !== undefined) runOptions.context = options.context;
  if (options.maxTurns !== undefined) runOptions.maxTurns = options.maxTurns;
  if (options.signal !== undefined) runOptions.signal = options.signal;
  if (stream) return runner.run(agent, inputOrState as any, { ...runOptions, stream: true });
  return runner.run(agent, inputOrState as any, { ...runOptions, stream: false });
}
