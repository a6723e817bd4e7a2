"""Which RunState schemas each SDK writes, which ones the converter reads, and format detection.

The versions are pinned on purpose: both SDKs bump their schema when the meaning of a field
changes, and a converter that guessed at an unknown schema would resume runs wrongly. An SDK
upgrade that writes a new version fails loudly here (and in the frozen-fixture tests) until the
mapping is reviewed.
"""

from __future__ import annotations

from typing import Any, Literal

from ..errors import MalformedStateError, UnsupportedSchemaVersionError

__all__ = [
    "EXTENSION_KEY",
    "PYTHON_SCHEMA_VERSION",
    "PYTHON_SCHEMA_VERSIONS",
    "StateFormat",
    "TYPESCRIPT_SCHEMA_VERSION",
    "TYPESCRIPT_SCHEMA_VERSIONS",
    "check_version",
    "detect_format",
]

StateFormat = Literal["python", "typescript"]
"""Which SDK wrote a RunState: ``python`` (openai-agents) or ``typescript`` (@openai/agents)."""

PYTHON_SCHEMA_VERSION = "1.21"
"""What ``openai-agents`` 0.24 writes, and what the converter writes for Python."""
PYTHON_SCHEMA_VERSIONS: frozenset[str] = frozenset({"1.21"})
"""Python schemas the converter reads (the SDK itself reads older ones; convert those first)."""

TYPESCRIPT_SCHEMA_VERSION = "1.22"
"""What ``@openai/agents`` 0.20 writes, and what the converter writes for TypeScript."""
TYPESCRIPT_SCHEMA_VERSIONS: frozenset[str] = frozenset({"1.22"})
"""TypeScript schemas the converter reads."""

EXTENSION_KEY = "$timestep"
"""Top-level key holding what the other SDK does not model, so round trips are exact.

Both SDKs ignore unknown top-level keys when they load a state (and drop them when they save).
"""

# Keys only one side writes: enough to tell the formats apart even in hand-trimmed payloads.
_PYTHON_KEYS = frozenset({"current_turn", "current_agent", "original_input", "generated_items"})
_TYPESCRIPT_KEYS = frozenset({"currentTurn", "currentAgent", "originalInput", "generatedItems"})


def detect_format(data: dict[str, Any]) -> StateFormat:
    """Which SDK wrote a RunState document, from the keys only one of them writes.

    Args:
        data: The RunState JSON, parsed.

    Returns:
        ``python`` (snake_case, openai-agents) or ``typescript`` (camelCase, @openai/agents).

    Raises:
        MalformedStateError: It has no ``$schemaVersion``, or the keys do not tell.
    """
    if not isinstance(data, dict) or "$schemaVersion" not in data:
        raise MalformedStateError("RunState payload is not a JSON object with a $schemaVersion")
    python = len(_PYTHON_KEYS & data.keys())
    typescript = len(_TYPESCRIPT_KEYS & data.keys())
    if python == typescript:
        raise MalformedStateError(
            "cannot tell whether this RunState was written by the Python or the TypeScript SDK "
            "(it has neither current_turn/current_agent nor currentTurn/currentAgent)"
        )
    return "python" if python > typescript else "typescript"


def check_version(data: dict[str, Any], fmt: StateFormat) -> str:
    """The payload's schema version, or a clear error when the converter does not know it."""
    version = data.get("$schemaVersion")
    supported = PYTHON_SCHEMA_VERSIONS if fmt == "python" else TYPESCRIPT_SCHEMA_VERSIONS
    if not isinstance(version, str) or version not in supported:
        sdk = "openai-agents (Python)" if fmt == "python" else "@openai/agents (TypeScript)"
        raise UnsupportedSchemaVersionError(
            f"{sdk} RunState schema version {version!r} is not supported by timestep.runstate "
            f"(it converts {', '.join(sorted(supported))}); load and re-save the state with the "
            "pinned SDK version, or upgrade Timestep"
        )
    return str(version)
