/**
 * `webSearch`: a function tool backed by Firecrawl's search API (v2), with the Python
 * package's behaviour (`providers/_web_search.py`): `POST {baseURL}/v2/search` with
 * `{ query, limit }` and `Authorization: Bearer <apiKey>`, answered as compact numbered markdown.
 * Failures come back as text starting with "web_search failed: " and never abort the run.
 */
import { tool } from '@openai/agents';
import { z } from 'zod';

export const WEB_SEARCH_TOOL_NAME = 'web_search';
export const DEFAULT_FIRECRAWL_URL = 'https://api.firecrawl.dev';
const FAILED = `${WEB_SEARCH_TOOL_NAME} failed: `;
const DESCRIPTION_CHARS = 300;
const DEFAULT_TIMEOUT_MS = 30_000;
const STATUS_HINTS: Record<number, string> = {
  401: ' The Firecrawl API key (FIRECRAWL_API_KEY) is missing or invalid.',
  402: ' The Firecrawl account is out of credits.',
  429: ' Firecrawl is rate limiting; search again later.',
};

export interface WebSearchOptions {
  /** Defaults to FIRECRAWL_API_KEY, read at call time. */
  apiKey?: string;
  /** Defaults to FIRECRAWL_API_URL, then https://api.firecrawl.dev, read at call time. */
  baseURL?: string;
  /** Results per search, 1 to 100 (default 5). */
  limit?: number;
  /** Default 30 000. */
  timeoutMs?: number;
}

/** A `web_search` function tool that searches the web through Firecrawl. */
export function makeWebSearch(options: WebSearchOptions = {}) {
  const limit = options.limit ?? 5;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new RangeError(`limit must be between 1 and 100 (Firecrawl's range), not ${limit}`);
  }
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, not ${timeoutMs}`);
  return tool({
    name: WEB_SEARCH_TOOL_NAME,
    description:
      'Search the web; returns the top results (title, URL, short description) as markdown.\n\n' +
      'Use it for recent events and for facts you are not sure about.',
    parameters: z.object({
      query: z
        .string()
        .describe('What to search for, as you would type it into a search engine.'),
    }),
    execute: async ({ query }) => searchFirecrawl(query, { ...options, limit, timeoutMs }),
  });
}

/** The search itself, as the tool runs it (exported for direct use and tests). */
export async function searchFirecrawl(query: string, options: WebSearchOptions = {}): Promise<string> {
  query = query.trim();
  if (!query) return FAILED + 'the query is empty; call web_search with some search terms.';
  const apiKey = options.apiKey ?? process.env.FIRECRAWL_API_KEY;
  if (!apiKey) {
    return (
      FAILED +
      'no Firecrawl API key is configured (set FIRECRAWL_API_KEY). Web search is ' +
      'unavailable: answer from what you know and say that you could not search.'
    );
  }
  const root = (options.baseURL || process.env.FIRECRAWL_API_URL || DEFAULT_FIRECRAWL_URL).replace(
    /\/+$/,
    '',
  );
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let response: Response;
  try {
    response = await fetch(`${root}/v2/search`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ query, limit: options.limit ?? 5 }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const err = error as Error;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') {
      return FAILED + `Firecrawl did not answer within ${timeoutMs / 1000}s; try again later.`;
    }
    const cause = (err as { cause?: Error }).cause;
    const detail = cause ? `${cause.name}: ${cause.message}` : `${err.name}: ${err.message}`;
    return FAILED + `could not reach Firecrawl at ${root} (${detail}).`;
  }
  let body: unknown = null;
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = errorDetail(body) || response.statusText;
    const hint = STATUS_HINTS[response.status] ?? '';
    return FAILED + `Firecrawl answered HTTP ${response.status}: ${detail}.${hint}`;
  }
  if (!isObject(body)) return FAILED + 'Firecrawl returned a response that is not JSON.';
  if (body.success === false) {
    return FAILED + `Firecrawl reported an error: ${errorDetail(body) || 'unknown'}.`;
  }
  return formatResults(query, body.data);
}

function isObject(value: unknown): value is Record<string, any> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Firecrawl v2 `data` (`{ web: [...], news: [...] }`) as compact numbered markdown. */
export function formatResults(query: string, data: unknown): string {
  if (Array.isArray(data)) data = { web: data }; // v1-shaped servers answer a flat list
  const sources = isObject(data) ? data : {};
  const lines: string[] = [];
  let number = 0;
  for (const source of ['web', 'news']) {
    const items = sources[source];
    if (!Array.isArray(items)) continue;
    for (const item of items) {
      if (!isObject(item) || !item.url) continue;
      number += 1;
      let title = oneLine(item.title) || String(item.url);
      if (source === 'news') {
        const date = oneLine(item.date);
        title = `${title} (news${date ? ', ' + date : ''})`;
      }
      lines.push(`${number}. [${title}](${item.url})`);
      const description = describe(item);
      if (description) lines.push(`   ${description}`);
    }
  }
  if (!lines.length) return `No web results for "${query}".`;
  return `Web results for "${query}":\n\n` + lines.join('\n');
}

function describe(item: Record<string, any>): string {
  // Web results carry "description", news results "snippet"; scraped ones may only have "markdown".
  let text = oneLine(item.description || item.snippet || item.markdown);
  const chars = [...text];
  if (chars.length > DESCRIPTION_CHARS) {
    text = chars.slice(0, DESCRIPTION_CHARS - 1).join('').trimEnd() + '…';
  }
  return text;
}

function oneLine(value: unknown): string {
  return value ? String(value).split(/\s+/).filter(Boolean).join(' ') : '';
}

function errorDetail(body: unknown): string {
  if (isObject(body)) {
    for (const key of ['error', 'message', 'detail']) {
      if (body[key]) return oneLine(body[key]);
    }
  }
  return '';
}

/** Search the web through Firecrawl (FIRECRAWL_API_KEY, FIRECRAWL_API_URL). */
export const webSearch = makeWebSearch();
