// Driven by tests/test_typescript_package.py: the TypeScript half of the cross-language runs,
// through the package's public API only. Prints a JSON summary.
//
//   node crosslang.mjs start  <modelBaseURL> <databaseURL> <sessionId> <input>
//   node crosslang.mjs resume <modelBaseURL> <databaseURL> <sessionId>
//
// With TIMESTEP_TEST_STREAM=1 the run streams (runAgent(..., true)) and counts its events.
import { MemorySession } from '@openai/agents';
import { timestep } from './load.mjs';
import { deleted, makeAgents } from './agents.mjs';

const { runAgent, RunStateStore, MultiModelProvider, closeAllStores } = timestep;
const [command, baseURL, connectionString, sessionId, input] = process.argv.slice(2);
const { ops } = makeAgents();
const store = new RunStateStore({ agent: ops, sessionId, connectionString });
const modelProvider = new MultiModelProvider({ openaiApiKey: 'test', openaiBaseURL: baseURL });
const session = new MemorySession();

const stream = process.env.TIMESTEP_TEST_STREAM === '1';
let streamedEvents = null;
async function run(inputOrState) {
  if (!stream) return runAgent(ops, inputOrState, session, false, { modelProvider });
  const streamed = await runAgent(ops, inputOrState, session, true, { modelProvider });
  streamedEvents = 0;
  for await (const _event of streamed) streamedEvents += 1;
  await streamed.completed;
  return streamed;
}

let result;
if (command === 'start') {
  result = await run(input);
} else if (command === 'resume') {
  const state = await store.load();
  for (const interruption of state.getInterruptions()) state.approve(interruption);
  result = await run(state);
} else {
  throw new Error(`unknown command ${command}`);
}
const stateId = await store.save(result.state);
const history = await store.history();
await closeAllStores();
process.stdout.write(
  JSON.stringify({
    finalOutput: result.finalOutput ?? null,
    interruptions: result.interruptions.map((i) => ({
      toolName: i.rawItem?.name,
      callId: i.rawItem?.callId,
    })),
    lastAgent: result.lastAgent?.name ?? null,
    deleted,
    streamedEvents,
    stateId,
    history: history.map((h) => ({ stateType: h.stateType, format: h.format })),
  }),
);
