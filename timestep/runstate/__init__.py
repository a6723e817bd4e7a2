"""Cross-language RunState JSON: the Python SDK (openai-agents) and TypeScript (@openai/agents).

Start a run in Python, stop it for an approval, resume it in Node, and the reverse:

>>> payload = to_typescript(result.to_state())          # doctest: +SKIP
>>> # node: await RunState.fromString(agent, payload)
>>> state = await from_typescript(node_json, agent)      # doctest: +SKIP

The two SDKs write different schemas (Python 1.21 in snake_case, TypeScript 1.22 in
camelCase) with different item protocols, approval records, invocation ledgers and usage
shapes, so renaming keys is not enough. The converter maps what both sides model field by
field, recomputes the ledgers each SDK needs to honour recorded approvals, and keeps what only
one side has in a ``$timestep`` extension so that Python -> TypeScript -> Python (and the
reverse) gives back the exact document. Supported schema versions are pinned; anything else
raises ``UnsupportedSchemaVersionError``.
"""

from __future__ import annotations

import json
from typing import Any

from agents import Agent, RunState

from ..errors import MalformedStateError, UnsupportedSchemaVersionError
from ._convert import python_to_typescript_json, typescript_to_python_json
from ._versions import (
    EXTENSION_KEY,
    PYTHON_SCHEMA_VERSION,
    PYTHON_SCHEMA_VERSIONS,
    TYPESCRIPT_SCHEMA_VERSION,
    TYPESCRIPT_SCHEMA_VERSIONS,
    StateFormat,
    check_version,
    detect_format,
)

__all__ = [
    "EXTENSION_KEY",
    "MalformedStateError",
    "PYTHON_SCHEMA_VERSION",
    "PYTHON_SCHEMA_VERSIONS",
    "StateFormat",
    "TYPESCRIPT_SCHEMA_VERSION",
    "TYPESCRIPT_SCHEMA_VERSIONS",
    "UnsupportedSchemaVersionError",
    "detect_format",
    "from_typescript",
    "python_to_typescript_json",
    "to_python_json",
    "to_typescript",
    "typescript_to_python_json",
]


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedStateError(
                f"RunState payload is not UTF-8 text (byte {exc.start}: {exc.reason})"
            ) from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise MalformedStateError("RunState payload is nested too deeply") from None
        except ValueError as exc:
            raise MalformedStateError(f"RunState payload is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedStateError("RunState payload is not a JSON object")
    return value


def to_typescript(state_or_json: RunState[Any] | str | dict[str, Any]) -> str:
    """The state as a JSON string ``RunState.fromString`` of @openai/agents 0.20 loads.

    Accepts a Python ``RunState``, or its JSON (string or dict). A document that already is in
    TypeScript format is validated and returned as is.

    Args:
        state_or_json: A Python ``RunState``, or a RunState's JSON from either SDK.

    Returns:
        The TypeScript SDK's RunState JSON.

    Raises:
        MalformedStateError: The document is not a RunState, or has malformed fields.
        UnsupportedSchemaVersionError: Its schema version is not one the converter reads.
    """
    if isinstance(state_or_json, str | bytes | dict):
        data = _document(state_or_json)
    else:
        data = state_or_json.to_json()
    if detect_format(data) == "typescript":
        check_version(data, "typescript")
        return json.dumps(data)
    return json.dumps(python_to_typescript_json(data))


def to_python_json(data: str | dict[str, Any]) -> dict[str, Any]:
    """The state as the Python SDK's JSON, whichever SDK wrote it.

    Args:
        data: A RunState's JSON from either SDK, as text or parsed.

    Returns:
        The Python SDK's RunState JSON, parsed.

    Raises:
        MalformedStateError: The document is not a RunState, or has malformed fields.
        UnsupportedSchemaVersionError: Its schema version is not one the converter reads.
    """
    document = _document(data)
    if detect_format(document) == "typescript":
        return typescript_to_python_json(document)
    check_version(document, "python")
    return document


async def from_typescript(data: str | dict[str, Any], agent: Agent[Any]) -> RunState[Any]:
    """A Python ``RunState`` for ``agent`` from JSON the TypeScript SDK wrote.

    ``agent`` is the starting agent of the same graph (same names, tools and handoffs) the
    TypeScript run used. Python-format input is accepted too.

    Args:
        data: A RunState's JSON from either SDK, as text or parsed.
        agent: The starting agent of the run's graph.

    Returns:
        The state, ready for ``run_agent`` or ``Runner.run``.

    Raises:
        MalformedStateError: The document is not a loadable RunState (for this agent too).
        UnsupportedSchemaVersionError: Its schema version is not one the converter reads.
    """
    python_json = to_python_json(data)
    try:
        return await RunState.from_json(agent, python_json)
    except RecursionError:
        raise MalformedStateError("RunState payload is nested too deeply") from None
    except Exception as exc:
        # The SDK raises UserError, but also KeyError, TypeError or a RuntimeError whose
        # details it redacts: say where the failure came from as well as what it said.
        detail = " ".join(str(exc).split()) or "no details"
        raise MalformedStateError(
            f"not a loadable RunState ({type(exc).__name__}: {detail})"
        ) from exc
