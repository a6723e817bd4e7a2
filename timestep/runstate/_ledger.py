"""Tool-invocation identities: the ledgers each SDK keeps so an approval binds to one exact call.

Both SDKs refuse to honour a recorded per-call approval unless the state also carries the
call's canonical identity (Python: ``context.tool_invocations`` with SHA-256 digests;
TypeScript: ``approvalInvocations`` / ``completedToolInvocations`` with canonical JSON
fingerprints). Neither ledger can be renamed into the other, so the converter recomputes the
target SDK's ledger from the calls themselves, exactly as that SDK would.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agents._tool_identity import deserialize_function_tool_lookup_key
from agents._tool_invocation import tool_invocation_identity_and_scope

__all__ = [
    "function_state_key",
    "python_invocation",
    "python_lookup_key",
    "tool_key_from_state_key",
    "ts_fingerprint",
]

_JSON_TOKEN_PREFIX = "\u0000openai-agents-json:"
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def function_state_key(name: str | None, namespace: str | None = None) -> str:
    """TypeScript's function-tool state key, e.g. ``["bare","delete_file"]`` (a state with a
    nameless call keeps its ``null``: the lookup then finds nothing, as in the SDK)."""
    if namespace and namespace == name:
        parts: list[str | None] = ["deferred_top_level", name]
    elif namespace:
        parts = ["namespaced", namespace, name]
    else:
        parts = ["bare", name]
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


def python_lookup_key(state_key: str | None) -> dict[str, str] | None:
    """TypeScript state key -> Python's serialized ``tool_lookup_key``."""
    try:
        parts = json.loads(state_key) if isinstance(state_key, str) else None
    except ValueError:
        return None
    if not isinstance(parts, list) or not all(isinstance(p, str) and p for p in parts):
        return None
    if parts[:1] in (["bare"], ["deferred_top_level"]) and len(parts) == 2:
        return {"kind": parts[0], "name": parts[1]}
    if parts[:1] == ["namespaced"] and len(parts) == 3:
        return {"kind": "namespaced", "namespace": parts[1], "name": parts[2]}
    return None


def state_key_from_lookup(lookup: Any) -> str | None:
    """Python's serialized ``tool_lookup_key`` -> TypeScript state key."""
    if not isinstance(lookup, dict) or not isinstance(lookup.get("name"), str):
        return None
    kind, name = lookup.get("kind"), lookup["name"]
    if kind == "namespaced" and isinstance(lookup.get("namespace"), str):
        return json.dumps(["namespaced", lookup["namespace"], name], separators=(",", ":"))
    if kind in ("bare", "deferred_top_level"):
        return json.dumps([kind, name], separators=(",", ":"), ensure_ascii=False)
    return None


def tool_key_from_state_key(state_key: str) -> str:
    """Python's approval ``tool_key`` (the qualified tool name) for a TypeScript state key."""
    lookup = python_lookup_key(state_key)
    if lookup is None:
        return state_key
    if lookup["kind"] == "namespaced":
        return f"{lookup['namespace']}.{lookup['name']}"
    return lookup["name"]


def ts_fingerprint(tool_name: str, tool_call: dict[str, Any]) -> str:
    """``getToolInvocationFingerprint`` of @openai/agents-core 0.20, for function calls."""
    caller = tool_call.get("caller")
    canonical_caller: dict[str, Any] = (
        {"type": "program", "callerId": caller.get("callerId")}
        if isinstance(caller, dict) and caller.get("type") == "program"
        else {"type": "direct"}
    )
    return _stable_stringify(
        {
            "caller": canonical_caller,
            "type": tool_call.get("type"),
            "toolName": tool_name,
            "payload": _normalize_json_string(tool_call.get("arguments")),
        }
    )


def python_invocation(
    raw_item: dict[str, Any], lookup_key: dict[str, str] | None, tool_name: str | None
) -> tuple[str, str, str, str] | None:
    """Python's ``(type, call_id, approval_scope, fingerprint)`` for a raw tool call."""

    try:
        return tool_invocation_identity_and_scope(
            raw_item,
            tool_lookup_key=deserialize_function_tool_lookup_key(lookup_key),
            tool_name=tool_name,
        )
    except Exception:  # the SDK helper rejects shapes it cannot identify; so do we
        return None


def _stable_stringify(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normalize_json_string(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        return {"format": "raw", "value": value}
    try:
        return {"format": "json", "value": json.loads(_encode_json_numbers(value))}
    except (ValueError, IndexError):
        return {"format": "raw", "value": value}


def _encode_json_numbers(value: str) -> str:
    """Numbers become tagged strings so 1, 1.0 and 1e0 fingerprint alike (as in the JS SDK)."""
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == '"':
            end = index + 1
            while end < len(value):
                if value[end] == "\\":
                    end += 2
                    continue
                if value[end] == '"':
                    end += 1
                    break
                end += 1
            token = value[index:end]
            decoded = json.loads(token)
            if decoded.startswith(_JSON_TOKEN_PREFIX):
                out.append(json.dumps(f"{_JSON_TOKEN_PREFIX}string:{decoded}"))
            else:
                out.append(token)
            index = end
            continue
        if char == "-" or char in "0123456789":
            match = _NUMBER.match(value, index)
            if not match:
                raise ValueError("invalid JSON number")
            number = _canonical_number(match.group(0))
            out.append(json.dumps(f"{_JSON_TOKEN_PREFIX}number:{number}"))
            index = match.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _canonical_number(text: str) -> str:
    lower = text.lower()
    mantissa, _, exponent_text = lower.partition("e")
    negative = mantissa.startswith("-")
    unsigned = mantissa[1:] if negative else mantissa
    integer, _, fraction = unsigned.partition(".")
    digits = f"{integer}{fraction}".lstrip("0")
    if not digits:
        return "-0" if negative else "0"
    exponent = int(exponent_text or "0") - len(fraction)
    while digits.endswith("0"):
        digits = digits[:-1]
        exponent += 1
    return f"{'-' if negative else ''}{digits}e{exponent}"
