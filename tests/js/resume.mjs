// Load a RunState JSON file with the real SDK's RunState.fromString, apply decisions to its
// pending approvals, resume against the fake model server and print a JSON summary.
//
//   node resume.mjs <baseURL> <state.json> [approve|reject|approve-always|reject-always|none]
import fs from 'node:fs';
import { RunState } from '@openai/agents';
import { makeAgents, makeRunner, summarize } from './agents.mjs';

const [baseURL, statePath, decision = 'approve'] = process.argv.slice(2);
const runner = makeRunner(baseURL);
const { ops } = makeAgents();
const state = await RunState.fromString(ops, fs.readFileSync(statePath, 'utf8'));
for (const item of state.getInterruptions()) {
  if (decision === 'approve') state.approve(item);
  else if (decision === 'approve-always') state.approve(item, { alwaysApprove: true });
  else if (decision === 'reject') state.reject(item);
  else if (decision === 'reject-always') state.reject(item, { alwaysReject: true });
}
const result = await runner.run(ops, state);
process.stdout.write(JSON.stringify(summarize(result)));
