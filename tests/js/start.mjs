// Start a run of `ops` with the real SDK against the fake model server and print a JSON
// summary (including the RunState) once it finishes or stops for approvals.
//
//   node start.mjs <baseURL> <input text>
import { makeAgents, makeRunner, summarize } from './agents.mjs';

const [baseURL, input] = process.argv.slice(2);
const runner = makeRunner(baseURL);
const { ops } = makeAgents();
const result = await runner.run(ops, input);
process.stdout.write(JSON.stringify(summarize(result)));
