"""Model providers, model pricing and provider-backed tools for Timestep agents.

- ``MultiModelProvider``: the SDK's ``MultiProvider`` routing ``gpt-4.1`` / ``openai/...`` to
  OpenAI and ``ollama/...`` to local Ollama or Ollama Cloud, with Timestep's retry policy;
- ``OllamaModelProvider``: Ollama through its OpenAI-compatible API;
- ``web_search`` / ``make_web_search``: a Firecrawl-backed function tool;
- ``PriceTable``, ``cost_of``...: what model calls cost;
- ``watch_rate_limits``: a model's client reports the provider's rate-limit headers to the
  limiter; ``watch_retries``: its own retries to the run's timeline.
"""

from ._client_hooks import watch_rate_limits, watch_retries
from ._errors import ProviderUnavailableError
from ._multi import ModelRoute, MultiModelProvider, MultiModelProviderMap
from ._ollama import OllamaModelProvider
from ._pricing import (
    DEFAULT_PRICES,
    ModelPrice,
    PriceTable,
    cost_of,
    get_price,
    get_price_table,
    reset_prices,
    set_price,
)
from ._web_search import make_web_search, web_search

__all__ = [
    "DEFAULT_PRICES",
    "ModelPrice",
    "ModelRoute",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "OllamaModelProvider",
    "PriceTable",
    "ProviderUnavailableError",
    "cost_of",
    "get_price",
    "get_price_table",
    "make_web_search",
    "reset_prices",
    "set_price",
    "watch_rate_limits",
    "watch_retries",
    "web_search",
]
