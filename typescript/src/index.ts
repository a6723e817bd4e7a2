/**
 * @timestep-ai/timestep for TypeScript: the Python package's API on @openai/agents.
 *
 * - `runAgent(agent, inputOrState, session, stream)`: run or resume an agent (not durable);
 * - `RunStateStore`: RunState snapshots in the same Postgres tables as the Python package, so
 *   runs interrupted in one language resume in the other;
 * - `MultiModelProvider`, `MultiModelProviderMap`, `OllamaModelProvider`: prefix routing;
 * - `webSearch`: a Firecrawl-backed function tool.
 */
export { runAgent } from './runAgent.js';
export type { RunAgentInput, RunAgentOptions } from './runAgent.js';
export {
  RunStateStore,
  StateNotExportedError,
  closeAllStores,
  detectFormat,
  withoutSecrets,
  DEFAULT_MAX_STATE_BYTES,
  SUPPORTED_SCHEMA_VERSIONS,
  TIMESTEP_SCHEMA_VERSION,
} from './store.js';
export type {
  RunStateStoreOptions,
  SaveOptions,
  StateFormat,
  StateType,
  StoredState,
} from './store.js';
export {
  MultiModelProvider,
  MultiModelProviderMap,
  OllamaModelProvider,
  DEFAULT_OLLAMA_BASE_URL,
  DEFAULT_OLLAMA_CLOUD_URL,
} from './providers.js';
export type {
  ModelRoute,
  MultiModelProviderOptions,
  OllamaModelProviderOptions,
} from './providers.js';
export {
  webSearch,
  makeWebSearch,
  searchFirecrawl,
  formatResults,
  WEB_SEARCH_TOOL_NAME,
} from './webSearch.js';
export type { WebSearchOptions } from './webSearch.js';
export {
  TimestepError,
  ConfigurationError,
  MalformedStateError,
  StateAgentMismatchError,
  StateNotFoundError,
  StateTooLargeError,
  UnsupportedSchemaVersionError,
} from './errors.js';
