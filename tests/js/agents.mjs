// The agents both SDKs run in the interop tests. tests/test_runstate_js.py defines the same
// agents in Python (same names, tools and approval rules): a RunState only resumes against
// the agent graph that produced it.
import {
  Agent,
  OpenAIProvider,
  Runner,
  setDefaultOpenAIClient,
  setTracingDisabled,
  tool,
} from '@openai/agents';
import OpenAI from 'openai';
import { z } from 'zod';

export const add = tool({
  name: 'add',
  description: 'Add two integers.',
  parameters: z.object({ a: z.number().int(), b: z.number().int() }),
  execute: async ({ a, b }) => a + b,
});

export const getWeather = tool({
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `sunny in ${city}`,
});

export const deleteFile = tool({
  name: 'delete_file',
  description: 'Delete a file (needs approval).',
  parameters: z.object({ path: z.string() }),
  needsApproval: true,
  execute: async ({ path }) => `deleted ${path}`,
});

/** The agent graph: `ops` (the tools above) can hand off to `billing`. */
export function makeAgents() {
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

/** A Runner that talks to the fake model server at `baseURL`; tracing off (no network). */
export function makeRunner(baseURL) {
  setTracingDisabled(true);
  const openAIClient = new OpenAI({ baseURL, apiKey: 'test', maxRetries: 0 });
  setDefaultOpenAIClient(openAIClient);
  return new Runner({
    modelProvider: new OpenAIProvider({ openAIClient }),
    tracingDisabled: true,
  });
}

/** What a finished or interrupted run looks like, for the Python side to assert on. */
export function summarize(result) {
  return {
    finalOutput: result.finalOutput ?? null,
    interruptions: (result.interruptions ?? []).map((item) => ({
      toolName: item.toolName ?? item.rawItem?.name,
      callId: item.rawItem?.callId,
    })),
    newItems: result.newItems.map((item) => ({ type: item.type, rawItem: item.rawItem })),
    history: result.history,
    currentAgent: result.lastAgent?.name ?? null,
    state: JSON.parse(result.state.toString()),
  };
}
