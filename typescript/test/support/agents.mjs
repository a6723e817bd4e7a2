// The ops/billing agent graph of tests/js/agents.mjs and tests/test_typescript_package.py (same
// names, tools, approval rule and handoff), built on this package's copy of @openai/agents.
import { Agent, setTracingDisabled, tool } from '@openai/agents';
import { z } from 'zod';

setTracingDisabled(true);
export const deleted = [];

export function makeAgents() {
  const add = tool({
    name: 'add',
    description: 'Add two integers.',
    parameters: z.object({ a: z.number().int(), b: z.number().int() }),
    execute: async ({ a, b }) => a + b,
  });
  const getWeather = tool({
    name: 'get_weather',
    description: 'The weather in a city.',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => `sunny in ${city}`,
  });
  const deleteFile = tool({
    name: 'delete_file',
    description: 'Delete a file (needs approval).',
    parameters: z.object({ path: z.string() }),
    needsApproval: true,
    execute: async ({ path }) => {
      deleted.push(path);
      return `deleted ${path}`;
    },
  });
  const billing = new Agent({
    name: 'billing',
    instructions: 'Answer billing questions.',
    model: 'gpt-4.1',
    tools: [add, deleteFile],
  });
  const ops = new Agent({
    name: 'ops',
    instructions: 'Be careful.',
    model: 'gpt-4.1',
    tools: [add, getWeather, deleteFile],
    handoffs: [billing],
  });
  return { ops, billing };
}
