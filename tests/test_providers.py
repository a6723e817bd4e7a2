"""Model routing, OpenAI client policy and Ollama, through the real SDK and real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from agents import Agent, ModelSettings, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.exceptions import AgentsException, UserError
from agents.models.interface import Model, ModelProvider
from agents.models.multi_provider import MultiProviderMap
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from openai import OpenAIError
from pydantic import BaseModel

from timestep._core.process import process_state
from timestep.errors import TimestepError
from timestep.providers import (
    ModelRoute,
    MultiModelProvider,
    MultiModelProviderMap,
    OllamaModelProvider,
    ProviderUnavailableError,
    web_search,
)
from timestep.testing import FakeFirecrawlServer, FakeModelServer, Turn, function_call
from timestep.testing import text as fake_text

set_tracing_disabled(True)

PROVIDER_ENV = (
    "FIRECRAWL_API_KEY",
    "FIRECRAWL_API_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OLLAMA_API_KEY",
    "OLLAMA_BASE_URL",
    "TIMESTEP_OLLAMA_CLOUD_URL",
    "TIMESTEP_MODEL_MAX_RETRIES",
    "TIMESTEP_MODEL_TIMEOUT_SEC",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Hermetic provider settings: nothing from the real environment leaks in."""

    def configure(**values: str | None) -> None:
        for key, value in values.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        process_state().reload_settings()

    configure(**dict.fromkeys(PROVIDER_ENV))
    configure(OPENAI_API_KEY="sk-test", TIMESTEP_MODEL_MAX_RETRIES="0")
    yield configure
    process_state().reload_settings()


class RecordingProvider(ModelProvider):
    """A user-supplied provider for a custom prefix; it records the names it is asked for."""

    def __init__(self) -> None:
        self.requested: list[str | None] = []

    def get_model(self, model_name: str | None) -> Model:
        self.requested.append(model_name)
        return OpenAIChatCompletionsModel(model=model_name or "default", openai_client=None)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpt-4.1", "openai/gpt-4.1"])
def test_openai_names_use_the_responses_api(env: Callable[..., None], name: str) -> None:
    provider = MultiModelProvider()
    model = provider.get_model(name)
    assert isinstance(model, OpenAIResponsesModel)
    assert model.model == "gpt-4.1"
    assert provider.route(name) == ModelRoute("openai", provider.openai_provider, "gpt-4.1")


def test_openai_can_use_chat_completions(env: Callable[..., None]) -> None:
    model = MultiModelProvider(openai_use_responses=False).get_model("gpt-4.1")
    assert type(model) is OpenAIChatCompletionsModel


def test_no_model_name_means_the_openai_default(env: Callable[..., None]) -> None:
    provider = MultiModelProvider()
    assert provider.route(None) == ModelRoute("openai", provider.openai_provider, None)
    assert isinstance(provider.get_model(None), OpenAIResponsesModel)


def test_names_with_colons_split_on_the_first_slash(env: Callable[..., None]) -> None:
    provider = MultiModelProvider()
    assert provider.route("gpt-oss:20b").prefix == "openai"
    route = provider.route("ollama/hf.co/org/model:Q4")
    assert (route.prefix, route.model_name) == ("ollama", "hf.co/org/model:Q4")


def test_ollama_routes_to_the_local_server(env: Callable[..., None]) -> None:
    provider = MultiModelProvider()
    route = provider.route("ollama/llama3")
    assert route.prefix == "ollama" and route.model_name == "llama3"
    assert isinstance(route.provider, OllamaModelProvider)
    assert not route.provider.is_cloud
    assert route.provider.base_url == "http://localhost:11434"
    model = provider.get_model("ollama/llama3")
    assert isinstance(model, OpenAIChatCompletionsModel) and model.model == "llama3"
    # Providers are reused, not rebuilt per call.
    assert provider.route("ollama/qwen3").provider is route.provider


def test_ollama_base_url_comes_from_settings(env: Callable[..., None]) -> None:
    env(OLLAMA_BASE_URL="http://gpu-box:11434/v1/")
    route = MultiModelProvider().route("ollama/llama3")
    assert route.provider.base_url == "http://gpu-box:11434"  # type: ignore[attr-defined]


def test_ollama_cloud_suffix_routes_to_ollama_cloud(env: Callable[..., None]) -> None:
    env(OLLAMA_API_KEY="ollama-key")
    provider = MultiModelProvider()
    route = provider.route("ollama/gpt-oss:20b-cloud")
    assert route.prefix == "ollama"
    assert isinstance(route.provider, OllamaModelProvider)
    assert route.provider.is_cloud
    assert route.provider.base_url == "https://ollama.com"
    model = provider.get_model("ollama/gpt-oss:20b-cloud")
    assert isinstance(model, OpenAIChatCompletionsModel)
    assert model.model == "gpt-oss:20b"  # the name Ollama Cloud's API expects
    assert provider.route("ollama/llama3").provider is not route.provider


def test_ollama_cloud_without_a_key_fails_clearly(env: Callable[..., None]) -> None:
    provider = MultiModelProvider()
    assert provider.route("ollama/gpt-oss:20b-cloud").provider.is_cloud  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="OLLAMA_API_KEY"):
        provider.get_model("ollama/gpt-oss:20b-cloud")


def test_ollama_provider_modes(env: Callable[..., None]) -> None:
    local = OllamaModelProvider()
    assert (local.is_cloud, local.base_url) == (False, "http://localhost:11434")
    # A local Ollama gets "-cloud" names unchanged: a signed-in daemon proxies them itself.
    assert local.api_model_name("gpt-oss:20b-cloud") == "gpt-oss:20b-cloud"
    assert OllamaModelProvider(api_key="").is_cloud is False  # os.environ.get(..., "")

    cloud = OllamaModelProvider(api_key="k")
    assert (cloud.is_cloud, cloud.base_url) == (True, "https://ollama.com")
    assert cloud.api_model_name("gpt-oss:120b-cloud") == "gpt-oss:120b"
    assert cloud.api_model_name("gemma3:27b") == "gemma3:27b"

    self_hosted = OllamaModelProvider(api_key="k", base_url="https://ollama.internal/")
    assert (self_hosted.is_cloud, self_hosted.base_url) == (True, "https://ollama.internal")

    with pytest.raises(UserError, match="explicit model name"):
        local.get_model(None)


def test_mapped_prefixes_win_over_defaults(env: Callable[..., None]) -> None:
    cloud = OllamaModelProvider(api_key="seed-key")
    custom = RecordingProvider()
    provider_map = MultiModelProviderMap({"ollama": cloud})
    provider_map.add_provider("openai", custom)
    provider_map.add_provider("acme", custom)
    provider = MultiModelProvider(provider_map=provider_map)

    assert provider.route("ollama/llama3") == ModelRoute("ollama", cloud, "llama3")
    assert provider.get_model("ollama/gpt-oss:20b-cloud").model == "gpt-oss:20b"  # type: ignore[attr-defined]
    provider.get_model("openai/gpt-4.1")
    provider.get_model("acme/rocket-1")
    assert custom.requested == ["gpt-4.1", "rocket-1"]
    # Bare names still go to OpenAI: the map only sees prefixed names.
    assert isinstance(provider.get_model("gpt-4.1"), OpenAIResponsesModel)


def test_sdk_provider_maps_are_accepted(env: Callable[..., None]) -> None:
    sdk_map = MultiProviderMap()
    custom = RecordingProvider()
    sdk_map.add_provider("acme", custom)
    assert MultiModelProvider(provider_map=sdk_map).route("acme/x").provider is custom


def test_unknown_prefix_lists_known_prefixes(env: Callable[..., None]) -> None:
    provider = MultiModelProvider(provider_map=MultiModelProviderMap({"acme": RecordingProvider()}))
    with pytest.raises(UserError) as raised:
        provider.get_model("mystery/model-1")
    message = str(raised.value)
    assert "'mystery'" in message
    for prefix in ("acme", "any-llm", "litellm", "ollama", "openai"):
        assert prefix in message
    assert provider.known_prefixes() == ["acme", "any-llm", "litellm", "ollama", "openai"]


@pytest.mark.parametrize("name", ["ollama/", "/gpt-4.1"])
def test_malformed_names_are_user_errors(env: Callable[..., None], name: str) -> None:
    with pytest.raises(UserError, match="Invalid model name"):
        MultiModelProvider().route(name)


def test_provider_map_editing(env: Callable[..., None]) -> None:
    custom = RecordingProvider()
    provider_map = MultiModelProviderMap()
    provider_map.add_provider("ollama", custom)
    provider = MultiModelProvider(provider_map=provider_map)
    assert provider_map.has_prefix("ollama")
    assert provider_map.get_provider("ollama") is custom
    assert provider.route("ollama/llama3").provider is custom

    provider_map.remove_provider("ollama")
    assert not provider_map.has_prefix("ollama")
    assert provider_map.get_provider("ollama") is None
    assert isinstance(provider.route("ollama/llama3").provider, OllamaModelProvider)
    with pytest.raises(KeyError, match="ollama"):
        provider_map.remove_provider("ollama")


def test_get_mapping_returns_a_copy(env: Callable[..., None]) -> None:
    custom = RecordingProvider()
    source = {"acme": custom}
    provider_map = MultiModelProviderMap(source)
    source["other"] = custom  # the map copied its input
    mapping = provider_map.get_mapping()
    assert mapping == {"acme": custom}
    mapping.clear()
    assert provider_map.get_mapping() == {"acme": custom}
    provider_map.set_mapping(source)
    source.clear()
    assert set(provider_map.get_mapping()) == {"acme", "other"}


def test_provider_map_validates_entries() -> None:
    provider_map = MultiModelProviderMap()
    with pytest.raises(ValueError, match="prefix"):
        provider_map.add_provider("a/b", RecordingProvider())
    with pytest.raises(ValueError, match="prefix"):
        provider_map.add_provider("", RecordingProvider())
    with pytest.raises(TypeError, match="ModelProvider"):
        provider_map.add_provider("acme", object())  # type: ignore[arg-type]


# -- OpenAI client policy --------------------------------------------------------------------


def test_empty_openai_key_does_not_fail_at_construction(env: Callable[..., None]) -> None:
    env(OPENAI_API_KEY=None)
    provider = MultiModelProvider(openai_api_key="")  # what the seeds pass when the var is unset
    assert provider.route("gpt-4.1").prefix == "openai"  # routing needs no client
    with pytest.raises(OpenAIError, match="Missing credentials"):
        provider.get_model("gpt-4.1")


def test_openai_client_conflicts_are_rejected(env: Callable[..., None]) -> None:
    from openai import AsyncOpenAI

    with pytest.raises(UserError):
        MultiModelProvider(openai_client=AsyncOpenAI(api_key="k"), openai_api_key="other")


# -- local Ollama not running ----------------------------------------------------------------


@pytest.fixture
def dead_ollama(env: Callable[..., None]) -> str:
    url = f"http://127.0.0.1:{closed_port()}"
    env(OLLAMA_BASE_URL=url)
    return url


async def test_local_ollama_not_running_names_the_url(dead_ollama: str) -> None:
    agent = Agent(name="local", instructions="Be brief.", model="ollama/llama3")
    with pytest.raises(ProviderUnavailableError) as raised:
        await Runner.run(agent, "hi", run_config=RunConfig(model_provider=MultiModelProvider()))
    error = raised.value
    assert f"Ollama is not running at {dead_ollama}" in str(error)
    assert (error.provider, error.url) == ("ollama", dead_ollama)
    assert isinstance(error, AgentsException) and isinstance(error, TimestepError)
    assert isinstance(error.__cause__, OpenAIError)


async def test_local_ollama_not_running_names_the_url_when_streaming(dead_ollama: str) -> None:
    agent = Agent(name="local", instructions="Be brief.", model="ollama/llama3")
    result = Runner.run_streamed(
        agent, "hi", run_config=RunConfig(model_provider=MultiModelProvider())
    )
    with pytest.raises(ProviderUnavailableError, match=f"Ollama is not running at {dead_ollama}"):
        async for _ in result.stream_events():
            pass


# -- the shipped fake OpenAI server, with fixed usage numbers -------------------------------

USAGE_IN, USAGE_OUT = 11, 7


def text(content: str) -> Turn:
    return fake_text(content, usage={"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT})


@pytest.fixture
def model_server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


# -- end to end through Runner ----------------------------------------------------------------


def openai_provider_for(server: FakeModelServer, **kwargs: Any) -> MultiModelProvider:
    return MultiModelProvider(openai_api_key="sk-test", openai_base_url=server.base_url, **kwargs)


@pytest.mark.parametrize("name", ["gpt-4.1", "openai/gpt-4.1"])
async def test_openai_responses_round_trip(
    env: Callable[..., None], model_server: FakeModelServer, name: str
) -> None:
    model_server.add_turns(text("Hello from Responses."))
    agent = Agent(name="assistant", instructions="Be brief.", model=name)
    result = await Runner.run(
        agent, "hi", run_config=RunConfig(model_provider=openai_provider_for(model_server))
    )
    assert result.final_output == "Hello from Responses."
    (request,) = model_server.requests
    assert request.path == "/v1/responses"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json["model"] == "gpt-4.1"
    assert request.json["instructions"] == "Be brief."
    assert result.context_wrapper.usage.input_tokens == USAGE_IN


async def test_openai_responses_streaming(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    model_server.add_turns(text("one two three"))
    agent = Agent(name="assistant", model="gpt-4.1")
    result = Runner.run_streamed(
        agent, "count", run_config=RunConfig(model_provider=openai_provider_for(model_server))
    )
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert deltas == ["one ", "two ", "three"]
    assert result.final_output == "one two three"
    assert model_server.requests[0].json["stream"] is True


async def test_openai_chat_completions_when_asked(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    model_server.add_turns(text("Hello from Chat Completions."))
    provider = openai_provider_for(model_server, openai_use_responses=False)
    agent = Agent(name="assistant", model="gpt-4.1")
    result = await Runner.run(agent, "hi", run_config=RunConfig(model_provider=provider))
    assert result.final_output == "Hello from Chat Completions."
    assert model_server.requests[0].path == "/v1/chat/completions"


async def test_openai_client_retries_transient_errors_per_settings(
    env: Callable[..., None],
) -> None:
    """``model_max_retries`` reaches the client: 503s are retried, then the call succeeds."""
    attempts: list[str] = []

    class Flaky(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            attempts.append(self.path)
            if len(attempts) < 3:
                status, body = 503, b'{"error": {"message": "overloaded"}}'
            else:
                status, body = 200, json.dumps(
                    {"id": "r", "object": "response", "created_at": 0, "status": "completed",
                     "model": "gpt-4.1", "output": [{"type": "message", "id": "m",
                     "status": "completed", "role": "assistant", "content": [
                         {"type": "output_text", "text": "finally", "annotations": []}]}]}
                ).encode()  # fmt: skip
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("retry-after-ms", "10")  # honoured: keeps the test fast
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    agent = Agent(name="assistant", model="gpt-4.1")
    try:
        env(TIMESTEP_MODEL_MAX_RETRIES="2")
        provider = MultiModelProvider(openai_api_key="sk-test", openai_base_url=base_url)
        result = await Runner.run(agent, "hi", run_config=RunConfig(model_provider=provider))
        assert result.final_output == "finally"
        assert len(attempts) == 3

        attempts.clear()
        env(TIMESTEP_MODEL_MAX_RETRIES="0")
        provider = MultiModelProvider(openai_api_key="sk-test", openai_base_url=base_url)
        with pytest.raises(openai.InternalServerError):
            await Runner.run(agent, "hi", run_config=RunConfig(model_provider=provider))
        assert len(attempts) == 1
    finally:
        server.shutdown()
        server.server_close()


async def test_openai_client_timeout_comes_from_settings(env: Callable[..., None]) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        env(TIMESTEP_MODEL_TIMEOUT_SEC="0.2")
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        provider = MultiModelProvider(openai_api_key="sk-test", openai_base_url=base_url)
        agent = Agent(name="assistant", model="gpt-4.1")
        with pytest.raises(openai.APITimeoutError):
            await asyncio.wait_for(
                Runner.run(agent, "hi", run_config=RunConfig(model_provider=provider)), 10
            )


async def test_local_ollama_chat_completions(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    env(OLLAMA_BASE_URL=model_server.root_url)
    model_server.add_turns(text("Hi from llama."))
    agent = Agent(name="local", instructions="You are terse.", model="ollama/llama3")
    result = await Runner.run(
        agent, "hi", run_config=RunConfig(model_provider=MultiModelProvider())
    )

    assert result.final_output == "Hi from llama."
    (request,) = model_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["host"] == model_server.root_url.removeprefix("http://")
    assert request.headers["authorization"] == "Bearer ollama"  # placeholder; Ollama ignores it
    assert request.json["model"] == "llama3"
    assert request.json["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]
    assert result.context_wrapper.usage.output_tokens == USAGE_OUT


async def test_ollama_cloud_sends_the_key_and_the_cloud_model_name(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    env(OLLAMA_API_KEY="ollama-secret", TIMESTEP_OLLAMA_CLOUD_URL=model_server.root_url)
    model_server.add_turns(text("Hi from the cloud."))
    agent = Agent(name="cloud", model="ollama/gpt-oss:20b-cloud")
    result = await Runner.run(
        agent, "hi", run_config=RunConfig(model_provider=MultiModelProvider())
    )

    assert result.final_output == "Hi from the cloud."
    (request,) = model_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer ollama-secret"
    assert request.json["model"] == "gpt-oss:20b"


async def test_seeded_ollama_provider_with_a_key_wins(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    model_server.add_turns(text("mapped"))
    provider_map = MultiModelProviderMap()
    provider_map.add_provider(
        "ollama", OllamaModelProvider(api_key="seed-key", base_url=model_server.root_url)
    )
    agent = Agent(name="seeded", model="ollama/llama3")
    provider = MultiModelProvider(provider_map=provider_map, openai_api_key="")
    result = await Runner.run(agent, "hi", run_config=RunConfig(model_provider=provider))
    assert result.final_output == "mapped"
    assert model_server.requests[0].headers["authorization"] == "Bearer seed-key"


async def test_ollama_streaming_with_usage(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    env(OLLAMA_BASE_URL=model_server.root_url)
    model_server.add_turns(text("streamed from ollama"))
    agent = Agent(name="local", model="ollama/llama3")
    result = Runner.run_streamed(
        agent, "hi", run_config=RunConfig(model_provider=MultiModelProvider())
    )
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert "".join(deltas) == "streamed from ollama" and len(deltas) == 3
    body = model_server.requests[0].json
    assert body["stream"] is True
    # Asked for by default so streamed Ollama runs still record tokens.
    assert body["stream_options"] == {"include_usage": True}
    assert result.context_wrapper.usage.input_tokens == USAGE_IN


async def test_ollama_function_tool_round_trip_and_history(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    env(OLLAMA_BASE_URL=model_server.root_url)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"Sunny in {city}"

    model_server.add_turns(
        function_call("get_weather", {"city": "Oslo"}, call_id="call_w1"),
        text("It is sunny in Oslo."),
        text("You asked about Oslo."),
    )
    agent = Agent(
        name="weather", instructions="Use tools.", model="ollama/llama3", tools=[get_weather]
    )
    run_config = RunConfig(model_provider=MultiModelProvider())
    first = await Runner.run(agent, "Weather in Oslo?", run_config=run_config)
    assert first.final_output == "It is sunny in Oslo."
    assert calls == ["Oslo"]

    tools = model_server.requests[0].json["tools"]
    assert tools[0]["type"] == "function"
    assert tools[0]["function"]["name"] == "get_weather"
    assert tools[0]["function"]["parameters"]["required"] == ["city"]

    messages = model_server.requests[1].json["messages"]
    assert messages[2]["role"] == "assistant"
    assert messages[2]["tool_calls"][0]["id"] == "call_w1"
    assert messages[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[3] == {"role": "tool", "tool_call_id": "call_w1", "content": "Sunny in Oslo"}

    # A second turn carries the whole history, tool call and result included.
    history = first.to_input_list() + [{"role": "user", "content": "Which city was it?"}]
    second = await Runner.run(agent, history, run_config=run_config)
    assert second.final_output == "You asked about Oslo."
    roles = [m["role"] for m in model_server.requests[2].json["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]


async def test_ollama_model_settings_reach_the_request(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    env(OLLAMA_BASE_URL=model_server.root_url)
    model_server.add_turns(text("ok"))
    agent = Agent(
        name="tuned",
        model="ollama/llama3",
        model_settings=ModelSettings(temperature=0.2, top_p=0.9, max_tokens=64),
    )
    await Runner.run(agent, "hi", run_config=RunConfig(model_provider=MultiModelProvider()))
    body = model_server.requests[0].json
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 64)


async def test_ollama_structured_output(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    class Forecast(BaseModel):
        city: str
        celsius: int

    env(OLLAMA_BASE_URL=model_server.root_url)
    model_server.add_turns(text('{"city": "Oslo", "celsius": 21}'))
    agent = Agent(name="structured", model="ollama/llama3", output_type=Forecast)
    result = await Runner.run(
        agent, "hi", run_config=RunConfig(model_provider=MultiModelProvider())
    )
    assert result.final_output == Forecast(city="Oslo", celsius=21)
    response_format = model_server.requests[0].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["required"] == ["city", "celsius"]


async def test_web_search_through_a_real_agent(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    with FakeFirecrawlServer(api_key="fc-key") as firecrawl:
        env(FIRECRAWL_API_KEY="fc-key", FIRECRAWL_API_URL=firecrawl.base_url)
        firecrawl.queue_results(
            [{"url": "https://dbos.dev", "title": "DBOS", "description": "Durable execution."}]
        )
        model_server.add_turns(
            function_call("web_search", {"query": "what is DBOS"}, call_id="call_s1"),
            text("DBOS does durable execution."),
        )
        agent = Agent(name="researcher", model="gpt-4.1", tools=[web_search])
        result = await Runner.run(
            agent,
            "What is DBOS?",
            run_config=RunConfig(model_provider=openai_provider_for(model_server)),
        )

    assert result.final_output == "DBOS does durable execution."
    assert firecrawl.search_requests[0].json == {"query": "what is DBOS", "limit": 5}
    (tool_output,) = [
        item
        for item in model_server.requests[1].json["input"]
        if item.get("type") == "function_call_output"
    ]
    assert tool_output["call_id"] == "call_s1"
    assert "1. [DBOS](https://dbos.dev)" in tool_output["output"]
    assert "Durable execution." in tool_output["output"]


async def test_aclose_releases_ollama_clients(
    env: Callable[..., None], model_server: FakeModelServer
) -> None:
    env(OLLAMA_BASE_URL=model_server.root_url)
    model_server.add_turns(text("a"), text("b"))
    provider = MultiModelProvider()
    agent = Agent(name="local", model="ollama/llama3")
    await Runner.run(agent, "hi", run_config=RunConfig(model_provider=provider))
    await provider.aclose()
    # Closing is not terminal: the next call builds fresh clients.
    result = await Runner.run(agent, "hi", run_config=RunConfig(model_provider=provider))
    assert result.final_output == "b"
