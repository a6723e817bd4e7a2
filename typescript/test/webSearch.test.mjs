import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FIXTURES, readJson, timestep } from './support/load.mjs';

const { formatResults, makeWebSearch, searchFirecrawl, webSearch } = timestep;
const formats = readJson(path.join(FIXTURES, 'web_search_format.json'));

for (const c of formats.cases) {
  test(`formatting: ${c.name}`, () => {
    assert.equal(formatResults(c.query, c.data), c.markdown);
  });
}

// A tiny Firecrawl: answers queued replies and records requests.
const requests = [];
const replies = [];
let server;
let baseURL;
before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, json: JSON.parse(body || 'null') });
      const reply = replies.shift() ?? { status: 200, body: { success: true, data: { web: [] } } };
      if (reply.delayMs) return setTimeout(() => res.end('{}'), reply.delayMs);
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

test('searches Firecrawl v2 with the key and limit, and formats the answer', async () => {
  requests.length = 0;
  replies.push({ status: 200, body: { success: true, data: formats.cases[0].data } });
  const out = await searchFirecrawl('  timestep ', { apiKey: 'fc-key', baseURL: `${baseURL}/`, limit: 3 });
  assert.equal(out, formats.cases[0].markdown);
  assert.equal(requests[0].method, 'POST');
  assert.equal(requests[0].url, '/v2/search');
  assert.equal(requests[0].headers.authorization, 'Bearer fc-key');
  assert.deepEqual(requests[0].json, { query: 'timestep', limit: 3 });
});

test('failures come back as text for the model, never as exceptions', async () => {
  replies.push({ status: 401, body: { error: 'Unauthorized: bad key' } });
  let out = await searchFirecrawl('q', { apiKey: 'k', baseURL });
  assert.equal(
    out,
    'web_search failed: Firecrawl answered HTTP 401: Unauthorized: bad key. ' +
      'The Firecrawl API key (FIRECRAWL_API_KEY) is missing or invalid.',
  );
  replies.push({ status: 200, body: { success: false, error: 'quota' } });
  out = await searchFirecrawl('q', { apiKey: 'k', baseURL });
  assert.equal(out, 'web_search failed: Firecrawl reported an error: quota.');
  replies.push({ status: 200, body: 'not json' });
  out = await searchFirecrawl('q', { apiKey: 'k', baseURL });
  assert.equal(out, 'web_search failed: Firecrawl returned a response that is not JSON.');
  replies.push({ delayMs: 500 });
  out = await searchFirecrawl('q', { apiKey: 'k', baseURL, timeoutMs: 50 });
  assert.match(out, /^web_search failed: Firecrawl did not answer within 0.05s/);
  out = await searchFirecrawl('q', { apiKey: 'k', baseURL: 'http://127.0.0.1:9' });
  assert.match(out, /^web_search failed: could not reach Firecrawl at http:\/\/127.0.0.1:9/);
  out = await searchFirecrawl('   ', { apiKey: 'k', baseURL });
  assert.match(out, /query is empty/);
});

test('without a key it says so, reading FIRECRAWL_API_KEY and FIRECRAWL_API_URL at call time', async () => {
  const saved = { ...process.env };
  try {
    delete process.env.FIRECRAWL_API_KEY;
    assert.match(await searchFirecrawl('q'), /no Firecrawl API key is configured/);
    process.env.FIRECRAWL_API_KEY = 'env-key';
    process.env.FIRECRAWL_API_URL = baseURL;
    requests.length = 0;
    replies.push({ status: 200, body: { success: true, data: { web: [] } } });
    assert.equal(await searchFirecrawl('q'), 'No web results for "q".');
    assert.equal(requests[0].headers.authorization, 'Bearer env-key');
    assert.deepEqual(requests[0].json, { query: 'q', limit: 5 });
  } finally {
    process.env = saved;
  }
});

test('webSearch is a function tool named web_search taking a query', () => {
  assert.equal(webSearch.type, 'function');
  assert.equal(webSearch.name, 'web_search');
  assert.deepEqual(webSearch.parameters.required, ['query']);
  assert.throws(() => makeWebSearch({ limit: 0 }), /between 1 and 100/);
});
