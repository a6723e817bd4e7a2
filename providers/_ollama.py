"""Ollama, local or Ollama Cloud, through its OpenAI-compatible Chat Completions endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agents.agent_output import AgentOutputSchemaBase
from agents.exceptions import UserError
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelProvider, ModelTracing
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.tool import Tool
from openai import APIConnectionError, APITimeoutError, AsyncOpenAI
from openai.types.responses.response_prompt_param import ResponsePromptParam

from timestep._core.process import get_settings

from ._errors import ProviderUnavailableError

__all__ = ["OllamaModelProvider"]

_CLOUD_SUFFIX = "-cloud"

# Ollama ignores the key locally, but the OpenAI client refuses to start without one.
_LOCAL_PLACEHOLDER_KEY = "ollama"


class OllamaModelProvider(ModelProvider):
    """Models served by Ollama, through its OpenAI-compatible ``/v1`` Chat Completions API.

    Where requests go:

    - ``api_key`` given: Ollama Cloud (``settings.ollama_cloud_url``, https://ollama.com), with
      ``Authorization: Bearer <api_key>``;
    - otherwise ``base_url`` if given, else ``settings.ollama_base_url`` (``OLLAMA_BASE_URL``,
      default http://localhost:11434): a local or self-hosted Ollama.

    ``base_url`` always wins when given, and ``cloud=`` overrides the inference from ``api_key``
    (``cloud=True`` without a key falls back to ``OLLAMA_API_KEY``).

    Models are the SDK's ``OpenAIChatCompletionsModel``, so system prompts, multi-turn history
    with tool calls, function tools, streaming, ``ModelSettings``, usage and structured output
    all work as they do for OpenAI. Against Ollama Cloud a ``-cloud`` suffix is dropped from the
    model name (``gpt-oss:20b-cloud`` -> ``gpt-oss:20b``): that suffix is how a local Ollama names
    cloud models, while ollama.com's API expects the bare name. A local Ollama receives the name
    unchanged, so a signed-in local daemon can still proxy ``-cloud`` models itself.

    If a local Ollama cannot be reached, calls raise ``ProviderUnavailableError`` naming the URL
    instead of the OpenAI client's generic "Connection error.".

    The client is created on first use and honours ``settings.model_max_retries`` (429, 5xx,
    timeouts and connection errors, with Retry-After) and ``settings.model_timeout_sec`` when
    they are set (else the OpenAI client's defaults).

    Args:
        api_key: An Ollama Cloud key; giving one means Ollama Cloud unless ``cloud=False``.
        base_url: The server's root URL (with or without ``/v1``); wins when given.
        cloud: Talk to Ollama Cloud (True) or a local Ollama (False); default: whether
            ``api_key`` is given.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        cloud: bool | None = None,
    ) -> None:
        settings = get_settings()
        # An empty key (``os.environ.get("OLLAMA_API_KEY", "")``) means "no key", not a key.
        api_key = api_key or None
        self._cloud = cloud if cloud is not None else api_key is not None
        if self._cloud and api_key is None and settings.ollama_api_key is not None:
            api_key = settings.ollama_api_key.get_secret_value() or None
        if base_url:
            root = base_url
        elif self._cloud:
            root = settings.ollama_cloud_url
        else:
            root = settings.ollama_base_url
        self._base_url = _normalize_base_url(root)
        self._api_key = api_key
        self._max_retries = settings.model_max_retries
        self._timeout = settings.model_timeout_sec
        self._client: AsyncOpenAI | None = None

    @property
    def base_url(self) -> str:
        """The Ollama server's root URL, without the ``/v1`` suffix."""
        return self._base_url

    @property
    def is_cloud(self) -> bool:
        """True when this provider talks to Ollama Cloud rather than a local/self-hosted Ollama."""
        return self._cloud

    def api_model_name(self, model_name: str) -> str:
        """The model name sent to the server for ``model_name``.

        Args:
            model_name: The name without the ``ollama/`` prefix, e.g. ``"gpt-oss:20b-cloud"``.

        Returns:
            The name, without a ``-cloud`` suffix when talking to Ollama Cloud.
        """
        if self._cloud and model_name.endswith(_CLOUD_SUFFIX):
            return model_name[: -len(_CLOUD_SUFFIX)]
        return model_name

    def get_model(self, model_name: str | None) -> Model:
        """A Chat Completions model for ``model_name`` on this Ollama server.

        Args:
            model_name: The model, e.g. ``"llama3.2"`` (required: Ollama has no default).

        Returns:
            The model; its calls raise ``ProviderUnavailableError`` when a local Ollama is
            not running.

        Raises:
            agents.exceptions.UserError: No model name was given.
        """
        if not model_name:
            raise UserError(
                "Ollama needs an explicit model name, e.g. 'llama3.2' "
                "('ollama/llama3.2' through MultiModelProvider)."
            )
        return _OllamaChatCompletionsModel(
            model=self.api_model_name(model_name),
            openai_client=self._get_client(),
            unreachable_url=None if self._cloud else self._base_url,
        )

    async def aclose(self) -> None:
        """Close the HTTP client, if one was made (a later call makes a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _get_client(self) -> AsyncOpenAI:
        if self._client is None:
            if self._cloud and self._api_key is None:
                raise UserError(
                    f"Ollama Cloud ({self._base_url}) needs an API key: set OLLAMA_API_KEY "
                    "or pass OllamaModelProvider(api_key=...)."
                )
            options: dict[str, Any] = {}
            if self._max_retries is not None:
                options["max_retries"] = self._max_retries
            if self._timeout is not None:
                options["timeout"] = self._timeout
            self._client = AsyncOpenAI(
                base_url=f"{self._base_url}/v1",
                api_key=self._api_key or _LOCAL_PLACEHOLDER_KEY,
                **options,
            )
        return self._client

    def __repr__(self) -> str:
        where = "cloud" if self._cloud else "local"
        return f"OllamaModelProvider({where}, base_url={self._base_url!r})"


class _OllamaChatCompletionsModel(OpenAIChatCompletionsModel):
    """The SDK's Chat Completions model, with Ollama-specific error reporting and defaults."""

    def __init__(
        self, *, model: str, openai_client: AsyncOpenAI, unreachable_url: str | None
    ) -> None:
        super().__init__(model=model, openai_client=openai_client)
        # Only a local/self-hosted server gets the "is it running?" diagnosis; a connection
        # failure to Ollama Cloud is an ordinary (transient) network error and stays one.
        self._unreachable_url = unreachable_url

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> ModelResponse:
        try:
            return await super().get_response(
                system_instructions,
                input,
                model_settings,
                tools,
                output_schema,
                handoffs,
                tracing,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            )
        except APIConnectionError as error:
            unavailable = self._as_unavailable(error)
            if unavailable is None:
                raise
            raise unavailable from error

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        # The SDK only asks non-OpenAI servers for usage in streams when told to; Ollama supports
        # it, and without it streamed runs would record zero tokens.
        if model_settings.include_usage is None:
            model_settings = model_settings.resolve(ModelSettings(include_usage=True))
        try:
            async for event in super().stream_response(
                system_instructions,
                input,
                model_settings,
                tools,
                output_schema,
                handoffs,
                tracing,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            ):
                yield event
        except APIConnectionError as error:
            unavailable = self._as_unavailable(error)
            if unavailable is None:
                raise
            raise unavailable from error

    def _as_unavailable(self, error: APIConnectionError) -> ProviderUnavailableError | None:
        # A timeout means something accepted the connection: the server runs but is slow.
        if self._unreachable_url is None or isinstance(error, APITimeoutError):
            return None
        reason = str(error.__cause__) if error.__cause__ is not None else str(error)
        return ProviderUnavailableError(
            f"Ollama is not running at {self._unreachable_url} (could not connect: {reason}). "
            "Start it with `ollama serve`, or set OLLAMA_BASE_URL to a running Ollama server.",
            provider="ollama",
            url=self._unreachable_url,
        )


def _normalize_base_url(url: str) -> str:
    """``host:port``, ``http://host:port/`` and ``http://host:port/v1`` all mean the same server."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url
