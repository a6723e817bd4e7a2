"""Route model names to providers by prefix: OpenAI by default, Ollama built in."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple

from agents.exceptions import UserError
from agents.models import _openai_shared
from agents.models.interface import Model, ModelProvider
from agents.models.multi_provider import MultiProvider, MultiProviderMap
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

from timestep._core.process import get_settings

from ._ollama import OllamaModelProvider

__all__ = ["ModelRoute", "MultiModelProvider", "MultiModelProviderMap"]

_OPENAI = "openai"
_OLLAMA = "ollama"
_OLLAMA_CLOUD_SUFFIX = "-cloud"
# Prefixes the SDK's MultiProvider resolves itself (they need the SDK's optional extras).
_SDK_FALLBACK_PREFIXES = frozenset({"litellm", "any-llm"})
_BUILT_IN_PREFIXES = frozenset({_OPENAI, _OLLAMA}) | _SDK_FALLBACK_PREFIXES


class MultiModelProviderMap(MultiProviderMap):
    """Model-name prefixes (``"ollama"`` in ``"ollama/llama3.2"``) mapped to model providers.

    The SDK's ``MultiProviderMap`` with validation, an optional initial mapping, and copy
    semantics: ``get_mapping()`` returns a copy and ``set_mapping()`` stores one.
    Entries win over ``MultiModelProvider``'s built-in prefixes.

    Args:
        mapping: The initial entries, prefix to provider (copied).

    Raises:
        ValueError: A prefix is empty or contains ``/``.
        TypeError: A provider is not an ``agents.ModelProvider``.
    """

    def __init__(self, mapping: Mapping[str, ModelProvider] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        if mapping:
            self.set_mapping(mapping)

    def add_provider(self, prefix: str, provider: ModelProvider) -> None:
        """Route ``"{prefix}/..."`` model names to ``provider``, replacing any previous one.

        Args:
            prefix: The prefix, without ``/``.
            provider: The provider those names go to (without the prefix).

        Raises:
            ValueError: The prefix is empty or contains ``/``.
            TypeError: ``provider`` is not an ``agents.ModelProvider``.
        """
        _check_entry(prefix, provider)
        super().add_provider(prefix, provider)

    def remove_provider(self, prefix: str) -> None:
        """Forget ``prefix``.

        Args:
            prefix: A mapped prefix.

        Raises:
            KeyError: ``prefix`` is not mapped.
        """
        if not self.has_prefix(prefix):
            raise KeyError(f"no provider is mapped to prefix {prefix!r}")
        super().remove_provider(prefix)

    def set_mapping(self, mapping: Mapping[str, ModelProvider]) -> None:
        """Replace every entry with (a copy of) ``mapping``.

        Args:
            mapping: Prefix to provider.

        Raises:
            ValueError: A prefix is empty or contains ``/``.
            TypeError: A provider is not an ``agents.ModelProvider``.
        """
        for prefix, provider in mapping.items():
            _check_entry(prefix, provider)
        super().set_mapping(dict(mapping))

    def __repr__(self) -> str:
        return f"MultiModelProviderMap({self.get_mapping()!r})"


class ModelRoute(NamedTuple):
    """Where a model name goes: see ``MultiModelProvider.route``."""

    prefix: str
    """The routing prefix: ``"openai"`` for bare names, else the part before the first ``/``."""

    provider: ModelProvider
    """The provider whose ``get_model`` receives ``model_name``."""

    model_name: str | None
    """The model name handed to ``provider`` (prefix removed); ``None`` means its default."""


class MultiModelProvider(MultiProvider):
    """The SDK's ``MultiProvider`` with Ollama built in and Timestep's client policy.

    Model names route on the text before the first ``/`` (names like ``gpt-oss:20b`` may contain
    ``:``, which is not a separator):

    - no prefix or ``openai/``: OpenAI, Responses API unless ``openai_use_responses=False``;
    - ``ollama/NAME``: the local Ollama (``OLLAMA_BASE_URL``, default http://localhost:11434);
    - ``ollama/NAME-cloud``: Ollama Cloud (https://ollama.com) with ``OLLAMA_API_KEY``, model
      ``NAME`` (``ollama/gpt-oss:20b-cloud`` -> ``gpt-oss:20b``);
    - ``litellm/...`` and ``any-llm/...``: the SDK's own providers (need the SDK's extras);
    - any prefix in ``provider_map``, which wins over all of the above.

    Any other prefix raises ``agents.exceptions.UserError`` listing the known ones.

    The OpenAI client is the SDK's (created on first use, following ``set_default_openai_*``),
    with ``max_retries`` and ``timeout`` from ``TIMESTEP_MODEL_MAX_RETRIES`` and
    ``TIMESTEP_MODEL_TIMEOUT_SEC`` when those are set (else the client's own: 2 retries of
    429s, 5xx, timeouts and connection errors, honouring Retry-After, as under the SDK). An empty ``openai_api_key`` counts as
    not given, so a missing key surfaces as the OpenAI client's own "Missing credentials" error
    when a model is first requested, not here. A caller-supplied ``openai_client`` is used as is.

    Args:
        provider_map: Extra prefixes and their providers (they win over the built-in ones).
        openai_api_key: The OpenAI key (default: the SDK's, ``OPENAI_API_KEY``).
        openai_base_url: The OpenAI API's URL (default: the SDK's).
        openai_client: An OpenAI client to use as is.
        openai_use_responses: Use the Responses API (True, the default) or Chat Completions.
        openai_organization: The OpenAI organization.
        openai_project: The OpenAI project.
        ollama_api_key: The Ollama Cloud key (default ``OLLAMA_API_KEY``).
        ollama_base_url: The local Ollama's URL (default ``OLLAMA_BASE_URL``).
        ollama_cloud_url: Ollama Cloud's URL (default https://ollama.com).
    """

    def __init__(
        self,
        provider_map: MultiProviderMap | None = None,
        openai_api_key: str | None = None,
        openai_base_url: str | None = None,
        openai_client: AsyncOpenAI | None = None,
        openai_use_responses: bool | None = None,
        *,
        openai_organization: str | None = None,
        openai_project: str | None = None,
        ollama_api_key: str | None = None,
        ollama_base_url: str | None = None,
        ollama_cloud_url: str | None = None,
    ) -> None:
        # Empty strings come from ``os.environ.get("...", "")``: they mean "not configured".
        openai_api_key = openai_api_key or None
        openai_base_url = openai_base_url or None
        super().__init__(
            provider_map=provider_map,
            openai_api_key=openai_api_key,
            openai_base_url=openai_base_url,
            openai_client=openai_client,
            openai_organization=openai_organization,
            openai_project=openai_project,
            openai_use_responses=openai_use_responses,
        )
        if openai_client is None:
            settings = get_settings()
            self.openai_provider = _PolicyOpenAIProvider(
                api_key=openai_api_key,
                base_url=openai_base_url,
                organization=openai_organization,
                project=openai_project,
                use_responses=openai_use_responses,
                max_retries=settings.model_max_retries,
                timeout=settings.model_timeout_sec,
            )
        self._ollama_api_key = ollama_api_key or None
        self._ollama_base_url = ollama_base_url or None
        self._ollama_cloud_url = ollama_cloud_url or None
        self._ollama_providers: dict[bool, OllamaModelProvider] = {}

    def known_prefixes(self) -> list[str]:
        """Every prefix this provider routes, sorted.

        Returns:
            The built-in prefixes and the mapped ones.
        """
        mapped = self.provider_map.get_mapping() if self.provider_map is not None else {}
        return sorted(_BUILT_IN_PREFIXES | mapped.keys())

    def route(self, model_name: str | None) -> ModelRoute:
        """Resolve ``model_name`` to its prefix, provider and provider-side model name.

        Creates no client and sends nothing, so it is cheap enough to call per request (e.g. to
        pick a per-provider rate limit). The local and cloud Ollama routes both have prefix
        ``"ollama"``; tell them apart with ``route.provider.is_cloud``.

        Args:
            model_name: A model name such as ``"gpt-4.1"`` or ``"ollama/llama3.2"``; None for
                the OpenAI default.

        Returns:
            The route: prefix, provider and the name the provider receives.

        Raises:
            agents.exceptions.UserError: The prefix is unknown, or the name is malformed
                (``"ollama/"``).
        """
        if model_name is None:
            return ModelRoute(_OPENAI, self.openai_provider, None)
        prefix, separator, rest = model_name.partition("/")
        if not separator:
            return ModelRoute(_OPENAI, self.openai_provider, model_name)
        if not prefix or not rest:
            raise UserError(
                f"Invalid model name {model_name!r}: expected 'MODEL' or 'PREFIX/MODEL', "
                "e.g. 'gpt-4.1' or 'ollama/llama3.2'."
            )
        if self.provider_map is not None:
            mapped = self.provider_map.get_provider(prefix)
            if mapped is not None:
                return ModelRoute(prefix, mapped, rest)
        if prefix == _OPENAI:
            return ModelRoute(prefix, self.openai_provider, rest)
        if prefix == _OLLAMA:
            cloud = rest.endswith(_OLLAMA_CLOUD_SUFFIX)
            return ModelRoute(prefix, self._default_ollama_provider(cloud=cloud), rest)
        if prefix in _SDK_FALLBACK_PREFIXES:
            return ModelRoute(prefix, self._get_fallback_provider(prefix), rest)
        raise UserError(
            f"Unknown model prefix {prefix!r} in {model_name!r}. Known prefixes: "
            f"{', '.join(self.known_prefixes())}. Map new ones with "
            "MultiModelProviderMap.add_provider(prefix, provider)."
        )

    def get_model(self, model_name: str | None) -> Model:
        """The model ``model_name`` routes to (see ``route``).

        Args:
            model_name: A model name, prefixed or not; None for the OpenAI default.

        Returns:
            The routed provider's model.

        Raises:
            agents.exceptions.UserError: The prefix is unknown, or the name is malformed.
        """
        route = self.route(model_name)
        return route.provider.get_model(route.model_name)

    async def aclose(self) -> None:
        """Close the clients of the Ollama providers it made, then the SDK's providers."""
        providers, self._ollama_providers = list(self._ollama_providers.values()), {}
        for provider in providers:
            await provider.aclose()
        await super().aclose()

    def _default_ollama_provider(self, *, cloud: bool) -> OllamaModelProvider:
        provider = self._ollama_providers.get(cloud)
        if provider is None:
            if cloud:
                provider = OllamaModelProvider(
                    api_key=self._ollama_api_key, base_url=self._ollama_cloud_url, cloud=True
                )
            else:
                provider = OllamaModelProvider(base_url=self._ollama_base_url, cloud=False)
            self._ollama_providers[cloud] = provider
        return provider


class _PolicyOpenAIProvider(OpenAIProvider):
    """The SDK's ``OpenAIProvider`` that follows the SDK's defaults as they change and applies
    Timestep's retry and timeout settings when they are set.

    Key, base URL and client resolution stay the SDK's (explicit values, then
    ``set_default_openai_key`` / ``set_default_openai_client``, then ``OPENAI_*`` variables).
    A plain ``Runner.run`` builds a fresh provider per run, so it sees a default changed since
    the last run; this provider lives as long as the process, so it checks them on each use:
    ``set_default_openai_api`` and a new default client or key take effect at the next model.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        organization: str | None,
        project: str | None,
        use_responses: bool | None,
        max_retries: int | None,
        timeout: float | None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            use_responses=use_responses,
        )
        self._follow_default_api = use_responses is None
        self._explicit_client_options = any(
            value is not None for value in (api_key, base_url, organization, project)
        )
        self._max_retries = max_retries
        self._timeout = timeout
        self._client_source: tuple[Any, ...] | None = None
        self._policy_client: AsyncOpenAI | None = None
        self._loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )

    def get_model(self, model_name: str | None) -> Model:
        if self._follow_default_api:
            self._use_responses = _openai_shared.get_use_responses_by_default()
        return super().get_model(model_name)

    # OpenAIProvider creates its client lazily in this hook (so a missing key only fails when a
    # model is requested); wrapping it keeps that behaviour and every model it builds.
    def _get_client(self) -> AsyncOpenAI:
        source = (
            None
            if self._explicit_client_options
            else (
                id(_openai_shared.get_default_openai_client()),
                _openai_shared.get_default_openai_key(),
            )
        )
        if self._policy_client is None or source != self._client_source:
            self._client = None  # let the SDK resolve the client from the current defaults
            client = super()._get_client()
            options: dict[str, Any] = {}
            if self._max_retries is not None:
                options["max_retries"] = self._max_retries
            if self._timeout is not None:
                options["timeout"] = self._timeout
            self._policy_client = client.with_options(**options) if options else client
            self._client_source = source
            self._loop_clients = weakref.WeakKeyDictionary()
        if self._policy_client is _openai_shared.get_default_openai_client():
            return self._policy_client  # the user's own client, used as given
        return self._client_for_loop(self._policy_client)

    def _client_for_loop(self, client: AsyncOpenAI) -> AsyncOpenAI:
        """The client on an HTTP connection pool of the running event loop's own.

        The SDK shares one pool per process, and a pool's connections belong to the loop that
        opened them. A long-lived process runs its runs on more than one loop (a server's
        requests on uvicorn's, recovered and resumed runs on DBOS's), so each loop gets its
        own pool; a loop's entry goes with the loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return client
        found = self._loop_clients.get(loop)
        if found is None:
            found = client.with_options(http_client=DefaultAsyncHttpxClient())
            self._loop_clients[loop] = found
        return found


def _check_entry(prefix: str, provider: ModelProvider) -> None:
    if not isinstance(prefix, str) or not prefix or "/" in prefix:
        raise ValueError(
            f"a provider prefix must be a non-empty string without '/', not {prefix!r}"
        )
    if not isinstance(provider, ModelProvider):
        raise TypeError(
            f"provider for prefix {prefix!r} must be an agents.ModelProvider, "
            f"not {type(provider).__name__}"
        )
