"""``web_search``: a function tool backed by Firecrawl's search API (v2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx
from agents import FunctionTool, function_tool

from timestep._core.process import get_settings

__all__ = ["make_web_search", "web_search"]

TOOL_NAME = "web_search"
_FAILED = f"{TOOL_NAME} failed: "
_DESCRIPTION_CHARS = 300
_DEFAULT_TIMEOUT_SEC = 30.0
_STATUS_HINTS: Mapping[int, str] = MappingProxyType(
    {
        401: " The Firecrawl API key (FIRECRAWL_API_KEY) is missing or invalid.",
        402: " The Firecrawl account is out of credits.",
        429: " Firecrawl is rate limiting; search again later.",
    }
)


def make_web_search(
    api_key: str | None = None,
    base_url: str | None = None,
    limit: int = 5,
    *,
    timeout: float = _DEFAULT_TIMEOUT_SEC,
) -> FunctionTool:
    """A ``web_search`` function tool that searches the web through Firecrawl.

    It sends ``POST {base_url}/v2/search`` with ``{"query", "limit"}`` and
    ``Authorization: Bearer <api_key>``, and returns numbered markdown results (title, URL, short
    description). ``api_key`` and ``base_url`` default to ``FIRECRAWL_API_KEY`` and
    ``FIRECRAWL_API_URL`` (https://api.firecrawl.dev), read at call time.

    Failures (no key, HTTP errors, timeouts, unreachable server) are returned as text starting
    with ``"web_search failed: "`` so the model can tell the user or carry on without results;
    they never abort the run.
    """
    if not 1 <= limit <= 100:
        raise ValueError(f"limit must be between 1 and 100 (Firecrawl's range), not {limit}")
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0, not {timeout}")

    @function_tool(name_override=TOOL_NAME)
    async def _web_search(query: str) -> str:
        """Search the web; returns the top results (title, URL, short description) as markdown.

        Use it for recent events and for facts you are not sure about.

        Args:
            query: What to search for, as you would type it into a search engine.
        """
        return await _search(
            query, api_key=api_key, base_url=base_url, limit=limit, timeout=timeout
        )

    return _web_search


async def _search(
    query: str, *, api_key: str | None, base_url: str | None, limit: int, timeout: float
) -> str:
    query = query.strip()
    if not query:
        return _FAILED + "the query is empty; call web_search with some search terms."
    settings = get_settings()
    if api_key is None and settings.firecrawl_api_key is not None:
        api_key = settings.firecrawl_api_key.get_secret_value()
    if not api_key:
        return _FAILED + (
            "no Firecrawl API key is configured (set FIRECRAWL_API_KEY). Web search is "
            "unavailable: answer from what you know and say that you could not search."
        )
    root = (base_url or settings.firecrawl_base_url).rstrip("/")
    url = f"{root}/v2/search"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(
                url,
                json={"query": query, "limit": limit},
                headers={"Authorization": f"Bearer {api_key}"},
            )
    except httpx.TimeoutException:
        return _FAILED + f"Firecrawl did not answer within {timeout:g}s; try again later."
    except httpx.HTTPError as error:
        return _FAILED + f"could not reach Firecrawl at {root} ({type(error).__name__}: {error})."

    body = _json_or_none(response)
    if response.is_error:
        detail = _error_detail(body) or response.reason_phrase
        hint = _STATUS_HINTS.get(response.status_code, "")
        return _FAILED + f"Firecrawl answered HTTP {response.status_code}: {detail}.{hint}"
    if not isinstance(body, Mapping):
        return _FAILED + "Firecrawl returned a response that is not JSON."
    if body.get("success") is False:
        return _FAILED + f"Firecrawl reported an error: {_error_detail(body) or 'unknown'}."
    return _format_results(query, body.get("data"))


def _format_results(query: str, data: Any) -> str:
    """Firecrawl v2 ``data`` (``{"web": [...], "news": [...]}``) as compact numbered markdown."""
    if isinstance(data, list):  # v1-shaped servers answer a flat list of web results
        data = {"web": data}
    if not isinstance(data, Mapping):
        data = {}
    lines: list[str] = []
    number = 0
    for source in ("web", "news"):
        items = data.get(source)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, Mapping) or not item.get("url"):
                continue
            number += 1
            title = _one_line(item.get("title")) or item["url"]
            if source == "news":
                date = _one_line(item.get("date"))
                title = f"{title} (news{', ' + date if date else ''})"
            lines.append(f"{number}. [{title}]({item['url']})")
            description = _describe(item)
            if description:
                lines.append(f"   {description}")
    if not lines:
        return f'No web results for "{query}".'
    return f'Web results for "{query}":\n\n' + "\n".join(lines)


def _describe(item: Mapping[str, Any]) -> str:
    # Web results carry "description", news results "snippet"; scraped results may only have
    # "markdown", whose start is the best summary left.
    text = _one_line(item.get("description") or item.get("snippet") or item.get("markdown"))
    if len(text) > _DESCRIPTION_CHARS:
        text = text[: _DESCRIPTION_CHARS - 1].rstrip() + "…"
    return text


def _one_line(value: Any) -> str:
    return " ".join(str(value).split()) if value else ""


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error_detail(body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("error", "message", "detail"):
            if body.get(key):
                return _one_line(body[key])
    return ""


web_search: FunctionTool = make_web_search()
"""Search the web through Firecrawl (``FIRECRAWL_API_KEY``, ``FIRECRAWL_API_URL``)."""
