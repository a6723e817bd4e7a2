import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, readJson, timestep } from './support/load.mjs';

const { MultiModelProvider, MultiModelProviderMap, OllamaModelProvider } = timestep;
const rules = readJson(path.join(FIXTURES, 'prefix_rules.json'));

function kindOf(route, mapped) {
  for (const [prefix, provider] of mapped) if (route.provider === provider) return `mapped:${prefix}`;
  if (route.provider instanceof OllamaModelProvider) {
    return route.provider.isCloud ? 'ollama-cloud' : 'ollama-local';
  }
  return 'openai';
}

for (const rule of rules.cases) {
  const label = `${rule.model}${rule.mapped ? ` (mapped: ${rule.mapped.join(', ')})` : ''}`;
  test(`prefix rule: ${label}`, () => {
    const map = new MultiModelProviderMap();
    const mapped = new Map();
    for (const prefix of rule.mapped ?? []) {
      const provider = new OllamaModelProvider({ baseURL: `http://${prefix}.invalid:11434` });
      map.addProvider(prefix, provider);
      mapped.set(prefix, provider);
    }
    const provider = new MultiModelProvider({ providerMap: map, openaiApiKey: 'test' });
    if (rule.error) {
      assert.throws(
        () => provider.route(rule.model),
        (error) => {
          assert.equal(error.name, 'UserError');
          assert.ok(error.message.includes(rule.error), error.message);
          for (const word of rule.errorMentions ?? []) assert.ok(error.message.includes(word));
          return true;
        },
      );
      return;
    }
    const route = provider.route(rule.model);
    assert.equal(route.prefix, rule.prefix);
    assert.equal(route.modelName, rule.modelName);
    assert.equal(kindOf(route, mapped), rule.provider);
    if (rule.apiModelName) assert.equal(route.provider.apiModelName(route.modelName), rule.apiModelName);
  });
}

test('the Python spellings of the options (as in the original docs) are accepted', () => {
  const map = new MultiModelProviderMap();
  const local = new OllamaModelProvider({ baseURL: 'http://localhost:11434' });
  map.addProvider('local', local);
  const provider = new MultiModelProvider({ provider_map: map, openai_api_key: '' });
  assert.equal(provider.route('local/llama3').provider, local);
});

test('Ollama endpoints: local default, OLLAMA_BASE_URL, cloud with a key', () => {
  const saved = { ...process.env };
  try {
    delete process.env.OLLAMA_BASE_URL;
    assert.equal(new OllamaModelProvider().baseURL, 'http://localhost:11434');
    process.env.OLLAMA_BASE_URL = 'http://gpu-box:11434/v1/';
    assert.equal(new OllamaModelProvider().baseURL, 'http://gpu-box:11434');
    const cloud = new OllamaModelProvider({ apiKey: 'k' });
    assert.equal(cloud.isCloud, true);
    assert.equal(cloud.baseURL, 'https://ollama.com');
    delete process.env.OLLAMA_API_KEY;
    assert.throws(() => new OllamaModelProvider({ cloud: true }).getModel('x'), /OLLAMA_API_KEY/);
    process.env.OLLAMA_API_KEY = 'from-env';
    const fromEnv = new MultiModelProvider().route('ollama/gpt-oss:20b-cloud').provider;
    assert.equal(fromEnv.isCloud, true);
    assert.ok(fromEnv.getModel('gpt-oss:20b-cloud'));
  } finally {
    process.env = saved;
  }
});

test('the map validates entries and copies its mapping', () => {
  const map = new MultiModelProviderMap();
  assert.throws(() => map.addProvider('a/b', new OllamaModelProvider()), /without '\/'/);
  assert.throws(() => map.addProvider('x', {}), /ModelProvider/);
  map.addProvider('x', new OllamaModelProvider());
  map.getMapping().clear();
  assert.equal(map.hasPrefix('x'), true);
  map.removeProvider('x');
  assert.throws(() => map.removeProvider('x'), /no provider/);
});

test('models route to a local Ollama through its OpenAI-compatible API', async () => {
  const provider = new MultiModelProvider({ ollamaBaseURL: 'http://127.0.0.1:9' });
  const model = await provider.getModel('ollama/llama3.2');
  assert.equal(model.constructor.name, 'OpenAIChatCompletionsModel');
});
