"""``web_search`` against a real HTTP fake of Firecrawl v2."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from agents import FunctionTool, set_tracing_disabled
from agents.tool_context import ToolContext

from timestep._core.process import process_state
from timestep.providers import make_web_search, web_search
from timestep.testing._fake_firecrawl import FakeFirecrawlServer

set_tracing_disabled(True)

ENV_KEYS = ("FIRECRAWL_API_KEY", "FIRECRAWL_API_URL")


@pytest.fixture
def firecrawl() -> Iterator[FakeFirecrawlServer]:
    with FakeFirecrawlServer(api_key="fc-test-key") as server:
        yield server


@pytest.fixture
def firecrawl_env(
    monkeypatch: pytest.MonkeyPatch, firecrawl: FakeFirecrawlServer
) -> Iterator[Callable[..., None]]:
    """Point the settings at the fake (or at nothing) for the module-level ``web_search``."""

    def configure(*, api_key: str | None = "fc-test-key") -> None:
        for key in ENV_KEYS:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("FIRECRAWL_API_URL", firecrawl.base_url)
        if api_key is not None:
            monkeypatch.setenv("FIRECRAWL_API_KEY", api_key)
        process_state().reload_settings()

    configure()
    yield configure
    process_state().reload_settings()


async def invoke(tool: FunctionTool, query: str) -> str:
    arguments = json.dumps({"query": query})
    context = ToolContext(
        context=None, tool_name=tool.name, tool_call_id="call_1", tool_arguments=arguments
    )
    return await tool.on_invoke_tool(context, arguments)


def test_tool_shape() -> None:
    assert isinstance(web_search, FunctionTool)
    assert web_search.name == "web_search"
    assert web_search.params_json_schema["required"] == ["query"]
    assert web_search.strict_json_schema
    assert "Search the web" in web_search.description


async def test_search_returns_numbered_markdown(
    firecrawl: FakeFirecrawlServer, firecrawl_env: Callable[..., None]
) -> None:
    long_text = "word " * 200
    firecrawl.queue_results(
        [
            {
                "url": "https://docs.dbos.dev/",
                "title": "DBOS Docs",
                "description": "Durable\nworkflows  in Postgres.",
            },
            {"url": "https://example.org/long", "title": "Long", "description": long_text},
            {"url": "https://example.org/scraped", "markdown": "# Heading\n\nBody text."},
            {"title": "no url, skipped"},
        ],
        news=[
            {
                "url": "https://news.example/1",
                "title": "DBOS raises",
                "snippet": "Funding news.",
                "date": "2 days ago",
            }
        ],
    )

    output = await invoke(web_search, "durable workflows")

    assert output.startswith('Web results for "durable workflows":')
    assert "1. [DBOS Docs](https://docs.dbos.dev/)\n   Durable workflows in Postgres." in output
    assert "2. [Long](https://example.org/long)" in output
    long_line = output.split("2. [Long](https://example.org/long)\n   ", 1)[1].split("\n", 1)[0]
    assert len(long_line) == 300 and long_line.endswith("…")
    # No title: the URL stands in; no description: the start of the scraped markdown.
    assert "3. [https://example.org/scraped](https://example.org/scraped)" in output
    assert "   # Heading Body text." in output
    assert "4. [DBOS raises (news, 2 days ago)](https://news.example/1)\n   Funding news." in output
    assert "no url" not in output

    (request,) = firecrawl.requests
    assert (request.method, request.path) == ("POST", "/v2/search")
    assert request.json == {"query": "durable workflows", "limit": 5}
    assert request.headers["authorization"] == "Bearer fc-test-key"
    assert request.headers["content-type"] == "application/json"


async def test_settings_are_read_at_call_time(
    firecrawl: FakeFirecrawlServer, firecrawl_env: Callable[..., None]
) -> None:
    firecrawl_env(api_key=None)
    assert (await invoke(web_search, "q")).startswith("web_search failed: ")
    firecrawl_env(api_key="fc-test-key")
    assert "Result for q" in await invoke(web_search, "q")


async def test_no_results(
    firecrawl: FakeFirecrawlServer, firecrawl_env: Callable[..., None]
) -> None:
    firecrawl.queue_results([])
    assert await invoke(web_search, "nothing at all") == 'No web results for "nothing at all".'


async def test_missing_key_is_readable_and_sends_nothing(
    firecrawl: FakeFirecrawlServer, firecrawl_env: Callable[..., None]
) -> None:
    firecrawl_env(api_key=None)
    output = await invoke(web_search, "anything")
    assert output.startswith("web_search failed: no Firecrawl API key")
    assert "FIRECRAWL_API_KEY" in output
    assert firecrawl.requests == []


async def test_empty_query_is_readable_and_sends_nothing(
    firecrawl: FakeFirecrawlServer, firecrawl_env: Callable[..., None]
) -> None:
    assert (await invoke(web_search, "   ")).startswith("web_search failed: the query is empty")
    assert firecrawl.requests == []


async def test_wrong_key_gets_401(firecrawl: FakeFirecrawlServer) -> None:
    tool = make_web_search(api_key="fc-wrong", base_url=firecrawl.base_url)
    output = await invoke(tool, "q")
    assert output.startswith("web_search failed: Firecrawl answered HTTP 401")
    assert "Unauthorized: Invalid token" in output
    assert "FIRECRAWL_API_KEY" in output
    assert firecrawl.requests[0].headers["authorization"] == "Bearer fc-wrong"


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (500, "Internal server error", "HTTP 500: Internal server error."),
        (402, "Insufficient credits", "out of credits"),
        (429, "Rate limit exceeded", "search again later"),
    ],
)
async def test_http_errors_are_readable(
    firecrawl: FakeFirecrawlServer, status: int, error: str, expected: str
) -> None:
    firecrawl.queue_error(status, error)
    tool = make_web_search(api_key="fc-test-key", base_url=firecrawl.base_url)
    output = await invoke(tool, "q")
    assert output.startswith(f"web_search failed: Firecrawl answered HTTP {status}")
    assert expected in output


async def test_non_json_error_body_uses_reason_phrase(firecrawl: FakeFirecrawlServer) -> None:
    firecrawl.queue_error(502, body="<html>bad gateway</html>")
    tool = make_web_search(api_key="fc-test-key", base_url=firecrawl.base_url)
    assert await invoke(tool, "q") == "web_search failed: Firecrawl answered HTTP 502: Bad Gateway."


async def test_unsuccessful_200_is_readable(firecrawl: FakeFirecrawlServer) -> None:
    firecrawl.queue_error(200, body={"success": False, "error": "Search engine unavailable"})
    tool = make_web_search(api_key="fc-test-key", base_url=firecrawl.base_url)
    assert await invoke(tool, "q") == (
        "web_search failed: Firecrawl reported an error: Search engine unavailable."
    )


async def test_timeout_is_readable(firecrawl: FakeFirecrawlServer) -> None:
    firecrawl.queue_delay(5)
    tool = make_web_search(api_key="fc-test-key", base_url=firecrawl.base_url, timeout=0.2)
    output = await invoke(tool, "slow")
    assert output == "web_search failed: Firecrawl did not answer within 0.2s; try again later."


async def test_unreachable_server_is_readable(firecrawl: FakeFirecrawlServer) -> None:
    base_url = firecrawl.base_url
    firecrawl.stop()
    tool = make_web_search(api_key="fc-test-key", base_url=base_url)
    output = await invoke(tool, "q")
    assert output.startswith(f"web_search failed: could not reach Firecrawl at {base_url}")


async def test_factory_limit_and_explicit_settings(firecrawl: FakeFirecrawlServer) -> None:
    firecrawl.default_results = [{"url": f"https://e.com/{i}", "title": f"R{i}"} for i in range(9)]
    tool = make_web_search(api_key="fc-test-key", base_url=firecrawl.base_url + "/", limit=3)
    output = await invoke(tool, "many")
    assert "3. [R2](https://e.com/2)" in output and "4." not in output
    assert firecrawl.search_requests[0].json == {"query": "many", "limit": 3}


def test_factory_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        make_web_search(limit=0)
    with pytest.raises(ValueError, match="timeout"):
        make_web_search(timeout=0)


def test_fake_rejects_bad_requests(firecrawl: FakeFirecrawlServer) -> None:
    import httpx

    url = firecrawl.base_url
    auth = {"Authorization": "Bearer fc-test-key"}
    assert httpx.post(f"{url}/v2/search", json={"limit": 2}, headers=auth).status_code == 400
    assert httpx.post(f"{url}/v2/search", json={"query": "q"}).status_code == 401
    assert httpx.post(f"{url}/v1/search", json={"query": "q"}, headers=auth).status_code == 404
    ok = httpx.post(f"{url}/v2/search", json={"query": "q", "limit": 1}, headers=auth)
    assert ok.json()["data"]["web"][0]["position"] == 1
    assert [r.path for r in firecrawl.requests] == [
        "/v2/search",
        "/v2/search",
        "/v1/search",
        "/v2/search",
    ]
