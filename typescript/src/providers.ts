/**
 * Model providers with the Python package's prefix rules (timestep `providers/_multi.py`):
 *
 * - no prefix or `openai/NAME`: OpenAI;
 * - `ollama/NAME`: the local Ollama (OLLAMA_BASE_URL, default http://localhost:11434);
 * - `ollama/NAME-cloud`: Ollama Cloud (https://ollama.com) with OLLAMA_API_KEY, model `NAME`;
 * - any prefix in the `MultiModelProviderMap`, which wins over the built-in ones;
 * - any other prefix: a `UserError` listing the known ones.
 */
import {
  Model,
  ModelProvider,
  OpenAIChatCompletionsModel,
  OpenAIProvider,
  UserError,
} from '@openai/agents';
import OpenAI from 'openai';

const OPENAI = 'openai';
const OLLAMA = 'ollama';
const CLOUD_SUFFIX = '-cloud';
const BUILT_IN_PREFIXES = [OPENAI, OLLAMA];
export const DEFAULT_OLLAMA_BASE_URL = 'http://localhost:11434';
export const DEFAULT_OLLAMA_CLOUD_URL = 'https://ollama.com';
// Ollama ignores the key locally, but the OpenAI client refuses to start without one.
const LOCAL_PLACEHOLDER_KEY = 'ollama';

function isModelProvider(value: unknown): value is ModelProvider {
  return typeof (value as ModelProvider | undefined)?.getModel === 'function';
}

function checkEntry(prefix: string, provider: unknown): void {
  if (typeof prefix !== 'string' || !prefix || prefix.includes('/')) {
    throw new TypeError(
      `a provider prefix must be a non-empty string without '/', not ${JSON.stringify(prefix)}`,
    );
  }
  if (!isModelProvider(provider)) {
    throw new TypeError(`provider for prefix '${prefix}' must be a ModelProvider (with getModel)`);
  }
}

/** Model-name prefixes (`"ollama"` in `"ollama/llama3.2"`) mapped to model providers. */
export class MultiModelProviderMap {
  #mapping = new Map<string, ModelProvider>();

  constructor(mapping?: Record<string, ModelProvider> | Map<string, ModelProvider>) {
    if (mapping) this.setMapping(mapping);
  }

  /** Route `"{prefix}/..."` model names to `provider`, replacing any previous one. */
  addProvider(prefix: string, provider: ModelProvider): void {
    checkEntry(prefix, provider);
    this.#mapping.set(prefix, provider);
  }

  /** Forget `prefix`; throws if it is not mapped. */
  removeProvider(prefix: string): void {
    if (!this.#mapping.delete(prefix)) {
      throw new Error(`no provider is mapped to prefix '${prefix}'`);
    }
  }

  hasPrefix(prefix: string): boolean {
    return this.#mapping.has(prefix);
  }

  getProvider(prefix: string): ModelProvider | undefined {
    return this.#mapping.get(prefix);
  }

  /** A copy of the mapping. */
  getMapping(): Map<string, ModelProvider> {
    return new Map(this.#mapping);
  }

  /** Replace every entry with (a copy of) `mapping`. */
  setMapping(mapping: Record<string, ModelProvider> | Map<string, ModelProvider>): void {
    const entries = mapping instanceof Map ? [...mapping.entries()] : Object.entries(mapping);
    for (const [prefix, provider] of entries) checkEntry(prefix, provider);
    this.#mapping = new Map(entries);
  }
}

export interface OllamaModelProviderOptions {
  /** Given: Ollama Cloud with `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The server's root URL (with or without `/v1`); always wins when given. */
  baseURL?: string;
  /** Overrides the inference from `apiKey` (`cloud: true` without a key uses OLLAMA_API_KEY). */
  cloud?: boolean;
  /** Use this client as is. */
  openAIClient?: OpenAI;
}

function normalizeBaseUrl(url: string): string {
  let root = url.trim().replace(/\/+$/, '');
  if (root.endsWith('/v1')) root = root.slice(0, -3);
  return root;
}

/** Models served by Ollama (local or Ollama Cloud) through its OpenAI-compatible `/v1` API. */
export class OllamaModelProvider implements ModelProvider {
  readonly baseURL: string;
  readonly isCloud: boolean;
  #apiKey: string | undefined;
  #client: OpenAI | undefined;

  constructor(options: OllamaModelProviderOptions = {}) {
    let apiKey = options.apiKey || undefined;
    this.isCloud = options.cloud ?? apiKey !== undefined;
    if (this.isCloud && apiKey === undefined) apiKey = process.env.OLLAMA_API_KEY || undefined;
    const root = options.baseURL
      ? options.baseURL
      : this.isCloud
        ? DEFAULT_OLLAMA_CLOUD_URL
        : process.env.OLLAMA_BASE_URL || DEFAULT_OLLAMA_BASE_URL;
    this.baseURL = normalizeBaseUrl(root);
    this.#apiKey = apiKey;
    this.#client = options.openAIClient;
  }

  /** The model name sent to the server: Ollama Cloud does not want the `-cloud` suffix. */
  apiModelName(modelName: string): string {
    if (this.isCloud && modelName.endsWith(CLOUD_SUFFIX)) {
      return modelName.slice(0, -CLOUD_SUFFIX.length);
    }
    return modelName;
  }

  getModel(modelName?: string): Model {
    if (!modelName) {
      throw new UserError(
        "Ollama needs an explicit model name, e.g. 'llama3.2' ('ollama/llama3.2' through " +
          'MultiModelProvider).',
      );
    }
    return new OpenAIChatCompletionsModel(this.#getClient() as any, this.apiModelName(modelName));
  }

  #getClient(): OpenAI {
    if (!this.#client) {
      if (this.isCloud && !this.#apiKey) {
        throw new UserError(
          `Ollama Cloud (${this.baseURL}) needs an API key: set OLLAMA_API_KEY or pass ` +
            'new OllamaModelProvider({ apiKey })',
        );
      }
      this.#client = new OpenAI({
        apiKey: this.#apiKey ?? LOCAL_PLACEHOLDER_KEY,
        baseURL: `${this.baseURL}/v1`,
      });
    }
    return this.#client;
  }
}

export interface MultiModelProviderOptions {
  providerMap?: MultiModelProviderMap;
  openaiApiKey?: string;
  openaiBaseURL?: string;
  openaiClient?: OpenAI;
  openaiUseResponses?: boolean;
  ollamaApiKey?: string;
  ollamaBaseURL?: string;
  ollamaCloudURL?: string;
  /** Spellings of the Python API (and of the original docs), accepted as aliases. */
  provider_map?: MultiModelProviderMap;
  openai_api_key?: string;
  openai_base_url?: string;
  openai_use_responses?: boolean;
}

/** Where a model name goes: see `MultiModelProvider.route`. */
export interface ModelRoute {
  /** `"openai"` for bare names, else the part before the first `/`. */
  prefix: string;
  provider: ModelProvider;
  /** The name handed to `provider` (prefix removed); `undefined` means its default. */
  modelName: string | undefined;
}

/** Routes model names by prefix to OpenAI, Ollama (local or cloud) or mapped providers. */
export class MultiModelProvider implements ModelProvider {
  readonly providerMap: MultiModelProviderMap | undefined;
  readonly openaiProvider: OpenAIProvider;
  #ollama: { apiKey?: string; baseURL?: string; cloudURL?: string };
  #ollamaProviders = new Map<boolean, OllamaModelProvider>();

  constructor(options: MultiModelProviderOptions = {}) {
    this.providerMap = options.providerMap ?? options.provider_map;
    const apiKey = options.openaiApiKey || options.openai_api_key || undefined;
    const baseURL = options.openaiBaseURL || options.openai_base_url || undefined;
    const useResponses = options.openaiUseResponses ?? options.openai_use_responses;
    this.openaiProvider = new OpenAIProvider({
      ...(apiKey ? { apiKey } : {}),
      ...(baseURL ? { baseURL } : {}),
      ...(options.openaiClient ? { openAIClient: options.openaiClient as any } : {}),
      ...(useResponses !== undefined ? { useResponses } : {}),
    });
    this.#ollama = {
      apiKey: options.ollamaApiKey || undefined,
      baseURL: options.ollamaBaseURL || undefined,
      cloudURL: options.ollamaCloudURL || undefined,
    };
  }

  /** Every prefix this provider routes, sorted. */
  knownPrefixes(): string[] {
    const mapped = this.providerMap ? [...this.providerMap.getMapping().keys()] : [];
    return [...new Set([...BUILT_IN_PREFIXES, ...mapped])].sort();
  }

  /** Resolve `modelName` to its prefix, provider and provider-side model name (no I/O). */
  route(modelName?: string): ModelRoute {
    if (modelName === undefined || modelName === null || modelName === '') {
      return { prefix: OPENAI, provider: this.openaiProvider, modelName: undefined };
    }
    const slash = modelName.indexOf('/');
    if (slash < 0) return { prefix: OPENAI, provider: this.openaiProvider, modelName };
    const prefix = modelName.slice(0, slash);
    const rest = modelName.slice(slash + 1);
    if (!prefix || !rest) {
      throw new UserError(
        `Invalid model name '${modelName}': expected 'MODEL' or 'PREFIX/MODEL', ` +
          "e.g. 'gpt-4.1' or 'ollama/llama3.2'.",
      );
    }
    const mapped = this.providerMap?.getProvider(prefix);
    if (mapped) return { prefix, provider: mapped, modelName: rest };
    if (prefix === OPENAI) return { prefix, provider: this.openaiProvider, modelName: rest };
    if (prefix === OLLAMA) {
      const cloud = rest.endsWith(CLOUD_SUFFIX);
      return { prefix, provider: this.#ollamaProvider(cloud), modelName: rest };
    }
    throw new UserError(
      `Unknown model prefix '${prefix}' in '${modelName}'. Known prefixes: ` +
        `${this.knownPrefixes().join(', ')}. Map new ones with ` +
        'MultiModelProviderMap.addProvider(prefix, provider).',
    );
  }

  async getModel(modelName?: string): Promise<Model> {
    const route = this.route(modelName);
    return route.provider.getModel(route.modelName);
  }

  #ollamaProvider(cloud: boolean): OllamaModelProvider {
    let provider = this.#ollamaProviders.get(cloud);
    if (!provider) {
      provider = cloud
        ? new OllamaModelProvider({
            apiKey: this.#ollama.apiKey,
            baseURL: this.#ollama.cloudURL,
            cloud: true,
          })
        : new OllamaModelProvider({ baseURL: this.#ollama.baseURL, cloud: false });
      this.#ollamaProviders.set(cloud, provider);
    }
    return provider;
  }
}
