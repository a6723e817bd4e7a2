// Load a RunState JSON file with RunState.fromString, record a decision on its pending
// approvals without running anything, and print the re-serialized state (RunState.toString).
//
//   node decide.mjs <baseURL> <state.json> <approve|reject|approve-always|reject-always> [message]
import fs from 'node:fs';
import { RunState } from '@openai/agents';
import { makeAgents, makeRunner } from './agents.mjs';

const [baseURL, statePath, decision, message] = process.argv.slice(2);
makeRunner(baseURL);
const { ops } = makeAgents();
const state = await RunState.fromString(ops, fs.readFileSync(statePath, 'utf8'));
for (const item of state.getInterruptions()) {
  if (decision === 'approve') state.approve(item);
  else if (decision === 'approve-always') state.approve(item, { alwaysApprove: true });
  else if (decision === 'reject') state.reject(item, { message });
  else if (decision === 'reject-always') state.reject(item, { alwaysReject: true, message });
}
process.stdout.write(state.toString());
