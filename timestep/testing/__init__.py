"""Test helpers shipped with Timestep: run your agents offline against real HTTP fakes.

- ``FakeModelServer``: the OpenAI API (Responses and Chat Completions, JSON and streaming) on
  127.0.0.1, answering a script of turns (``text``, ``function_call``, ``function_calls``,
  ``output_items``, ``error``) and logging every request.
- ``FakeFirecrawlServer``: Firecrawl's search API, for ``web_search``.
- ``WorkerProcess``: a worker script in a real subprocess, to SIGKILL and restart.
- ``temporary_postgres_database``: a fresh Postgres database, dropped afterwards.
"""

from ._fake_firecrawl import FakeFirecrawlServer, FirecrawlRequest
from ._fake_openai import (
    FakeModelServer,
    RecordedRequest,
    Responder,
    Turn,
    conversation_script,
    error,
    function_call,
    function_calls,
    output_items,
    text,
)
from ._postgres import postgres_unreachable, temporary_postgres_database
from ._worker import WorkerProcess

__all__ = [
    "FakeFirecrawlServer",
    "FakeModelServer",
    "FirecrawlRequest",
    "RecordedRequest",
    "Responder",
    "Turn",
    "WorkerProcess",
    "conversation_script",
    "error",
    "function_call",
    "function_calls",
    "output_items",
    "postgres_unreachable",
    "temporary_postgres_database",
    "text",
]
