"""Schema-aware conversion between Python (1.21, snake_case) and TypeScript (1.22, camelCase).

Only field *names* are translated; map keys that are data (agent names in the tool-use
tracker, call ids in approval records, tool arguments, user context) are copied as they are.
What both SDKs model is mapped field by field (see ``_py_to_ts`` / ``_ts_to_py``); what only
one side has travels in the ``$timestep`` extension (``_extension``), and the ledgers that bind
approvals to exact calls are recomputed for the target SDK (``_ledger``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import MalformedStateError
from ._carried import align, carried
from ._extension import apply_patch, diff, digest
from ._items import api_to_protocol, protocol_to_api
from ._ledger import (
    function_state_key,
    python_invocation,
    python_lookup_key,
    state_key_from_lookup,
    tool_key_from_state_key,
    ts_fingerprint,
)
from ._versions import (
    EXTENSION_KEY,
    PYTHON_SCHEMA_VERSION,
    TYPESCRIPT_SCHEMA_VERSION,
    StateFormat,
    check_version,
)

__all__ = ["python_to_typescript_json", "typescript_to_python_json"]

_EXTENSION_VERSION = 1

TYPESCRIPT_ITEM_TYPES = frozenset(
    {
        "input_item",
        "message_output_item",
        "tool_search_call_item",
        "tool_search_output_item",
        "tool_call_item",
        "tool_call_output_item",
        "reasoning_item",
        "compaction_item",
        "handoff_call_item",
        "handoff_output_item",
        "tool_approval_item",
    }
)
"""The run item types of @openai/agents 0.20's RunState schema. Any other is refused: the
Python SDK would silently drop the item, and the resumed run would not be the one saved."""


def python_to_typescript_json(data: dict[str, Any]) -> dict[str, Any]:
    """A Python SDK RunState document as the TypeScript SDK writes it (plus ``$timestep``).

    Args:
        data: The Python SDK's RunState JSON, parsed.

    Returns:
        The TypeScript SDK's RunState JSON, parsed.

    Raises:
        MalformedStateError: The document is not a RunState, or has malformed fields.
        UnsupportedSchemaVersionError: Its schema version is not one the converter reads.
    """
    return _convert(data, "python", _py_to_ts, _ts_to_py)


def typescript_to_python_json(data: dict[str, Any]) -> dict[str, Any]:
    """A TypeScript SDK RunState document as the Python SDK writes it (plus ``$timestep``).

    Args:
        data: The TypeScript SDK's RunState JSON, parsed.

    Returns:
        The Python SDK's RunState JSON, parsed.

    Raises:
        MalformedStateError: The document is not a RunState, or has malformed fields.
        UnsupportedSchemaVersionError: Its schema version is not one the converter reads.
    """
    return _convert(data, "typescript", _ts_to_py, _py_to_ts)


def _convert(
    data: dict[str, Any],
    source: StateFormat,
    forward: Callable[[dict[str, Any]], dict[str, Any]],
    backward: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedStateError("RunState payload is not a JSON object")
    body = {k: v for k, v in data.items() if k != EXTENSION_KEY}
    extension = data.get(EXTENSION_KEY)
    check_version(body, source)
    target: StateFormat = "typescript" if source == "python" else "python"
    try:
        # A document that came from the other side unchanged converts back to the original.
        if (
            isinstance(extension, dict)
            and extension.get("source") != source
            and extension.get("digest") == digest(body)
        ):
            # Only what the other SDK lacks is restored (``_carried``), never anything else.
            restored: dict[str, Any] = apply_patch(
                forward(body), copy.deepcopy(carried(extension.get("patch"), target))
            )
            return restored
        converted: dict[str, Any] = forward(body)
        produced = backward(converted)
        patch = carried([*align(produced, body, source), *diff(produced, body)], source)
        converted[EXTENSION_KEY] = {
            "version": _EXTENSION_VERSION,
            "source": source,
            "sourceSchemaVersion": body["$schemaVersion"],
            "digest": digest(converted),
            "patch": patch,
        }
    except RecursionError:
        raise MalformedStateError("RunState payload is nested too deeply") from None
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise MalformedStateError(
            f"RunState payload is missing or has malformed fields: {exc!r}"
        ) from exc
    return converted


# --------------------------------------------------------------------------- shared helpers


def _agent_ref(ref: Any) -> Any:
    if not isinstance(ref, dict):
        return copy.deepcopy(ref)
    out = {"name": ref.get("name")}
    if ref.get("identity") is not None:
        out["identity"] = ref["identity"]
    return out


def _agent_key(ref: Any) -> str:
    if isinstance(ref, dict):
        return str(ref.get("identity") or ref.get("name"))
    return str(ref)


def _numbers(details: Any) -> dict[str, Any]:
    if not isinstance(details, dict):
        return {}
    return {
        k: v for k, v in details.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _summed(details: list[Any]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for entry in details:
        for key, value in _numbers(entry).items():
            total[key] = total.get(key, 0) + value
    return total


# --------------------------------------------------------------------------- usage


def _usage_to_ts(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    out: dict[str, Any] = {
        "requests": usage.get("requests", 0),
        "inputTokens": usage.get("input_tokens", 0),
        "outputTokens": usage.get("output_tokens", 0),
        "totalTokens": usage.get("total_tokens", 0),
        "inputTokensDetails": [_numbers(d) for d in _as_list(usage.get("input_tokens_details"))],
        "outputTokensDetails": [_numbers(d) for d in _as_list(usage.get("output_tokens_details"))],
    }
    entries = usage.get("request_usage_entries") or []
    if entries:
        out["requestUsageEntries"] = [
            {
                "inputTokens": e.get("input_tokens", 0),
                "outputTokens": e.get("output_tokens", 0),
                "totalTokens": e.get("total_tokens", 0),
                "inputTokensDetails": _numbers(e.get("input_tokens_details")),
                "outputTokensDetails": _numbers(e.get("output_tokens_details")),
            }
            for e in entries
        ]
    return out


def _input_details_to_py(details: dict[str, Any]) -> dict[str, Any]:
    out = {
        "cache_write_tokens": details.get("cache_write_tokens", 0),
        "cached_tokens": details.get("cached_tokens", 0),
        "cache_write_tokens_details": None,
    }
    out.update((k, v) for k, v in details.items() if k not in out)
    return out


def _usage_to_py(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    input_details = _summed(_as_list(usage.get("inputTokensDetails")))
    output_details = _summed(_as_list(usage.get("outputTokensDetails")))
    output_details.setdefault("reasoning_tokens", 0)
    return {
        "requests": usage.get("requests", 0),
        "input_tokens": usage.get("inputTokens", 0),
        "input_tokens_details": [_input_details_to_py(input_details)],
        "output_tokens": usage.get("outputTokens", 0),
        "output_tokens_details": [output_details],
        "total_tokens": usage.get("totalTokens", 0),
        "request_usage_entries": [
            {
                "input_tokens": e.get("inputTokens", 0),
                "output_tokens": e.get("outputTokens", 0),
                "total_tokens": e.get("totalTokens", 0),
                "input_tokens_details": _input_details_to_py(_numbers(e.get("inputTokensDetails"))),
                "output_tokens_details": {
                    "reasoning_tokens": 0,
                    **_numbers(e.get("outputTokensDetails")),
                },
            }
            for e in usage.get("requestUsageEntries") or []
            if isinstance(e, dict)
        ],
    }


# --------------------------------------------------------------------------- approvals


def _record_to_ts(record: dict[str, Any]) -> dict[str, Any]:
    out = {"approved": copy.deepcopy(record.get("approved", [])), "rejected": []}
    out["rejected"] = copy.deepcopy(record.get("rejected", []))
    if record.get("rejection_messages"):
        out["messages"] = dict(record["rejection_messages"])
    if record.get("sticky_rejection_message") is not None:
        out["stickyRejectMessage"] = record["sticky_rejection_message"]
    return out


def _record_to_py(record: dict[str, Any], sticky_scope: str | None) -> dict[str, Any]:
    out = {
        "approved": copy.deepcopy(record.get("approved", [])),
        "rejected": copy.deepcopy(record.get("rejected", [])),
    }
    if record.get("messages"):
        out["rejection_messages"] = dict(record["messages"])
    if record.get("stickyRejectMessage") is not None:
        out["sticky_rejection_message"] = record["stickyRejectMessage"]
    sticky = isinstance(out["approved"], bool) or isinstance(out["rejected"], bool)
    if sticky and (out["approved"] is True or out["rejected"] is True) and sticky_scope:
        out["sticky_scope"] = sticky_scope
    return out


def _per_call_ids(record: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for key in ("approved", "rejected"):
        value = record.get(key)
        if isinstance(value, list):
            ids.extend(v for v in value if isinstance(v, str) and v not in ids)
    return ids


# --------------------------------------------------------------------------- Python -> TS


def _py_items(py: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every serialized run item of a Python document (for call lookups)."""
    yield from py.get("generated_items") or []
    yield from py.get("session_items") or []
    yield from (py.get("last_processed_response") or {}).get("new_items") or []
    step = py.get("current_step") or {}
    yield from (step.get("data") or {}).get("interruptions") or []


def _py_raw_calls(py: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """call_id -> the Responses ``function_call`` item, wherever the document has it."""
    calls: dict[str, dict[str, Any]] = {}
    candidates: list[Any] = [item.get("raw_item") for item in _py_items(py)]
    for response in py.get("model_responses") or []:
        candidates.extend(response.get("output") or [])
    if isinstance(py.get("original_input"), list):
        candidates.extend(py["original_input"])
    for raw in candidates:
        if isinstance(raw, dict) and raw.get("type") == "function_call" and raw.get("call_id"):
            calls.setdefault(raw["call_id"], raw)
    return calls


def _py_run_item_to_ts(item: dict[str, Any], names: Any) -> dict[str, Any] | None:
    kind = item.get("type")
    raw = api_to_protocol(item.get("raw_item"), names)
    if kind == "handoff_output_item":
        return {
            "type": kind,
            "rawItem": raw,
            "sourceAgent": _agent_ref(item.get("source_agent") or item.get("agent")),
            "targetAgent": _agent_ref(item.get("target_agent")),
        }
    if kind in ("mcp_list_tools_item", "mcp_approval_request_item", "mcp_approval_response_item"):
        kind = "tool_call_item"
    if kind in ("tool_call_item", "tool_approval_item") and raw.get("type") == "unknown":
        return None  # a Python-only tool (custom tool, local shell): kept in the extension
    out: dict[str, Any] = {"type": kind, "rawItem": raw, "agent": _agent_ref(item.get("agent"))}
    if kind == "input_item":
        out["inputId"] = item.get("input_id")
    elif kind == "tool_call_output_item":
        out["output"] = copy.deepcopy(item.get("output"))
        if item.get("custom_data"):
            out["customData"] = copy.deepcopy(item["custom_data"])
        out["executionStatus"] = "executed"
    elif kind in ("tool_call_item", "tool_approval_item"):
        state_key = state_key_from_lookup(item.get("tool_lookup_key"))
        if (
            state_key is None
            and kind == "tool_approval_item"
            and raw.get("type") == "function_call"
        ):
            state_key = function_state_key(raw.get("name"), raw.get("namespace"))
        if kind == "tool_approval_item":
            out["toolName"] = item.get("tool_name") or raw.get("name")
        if state_key is not None:
            out["functionToolStateKey"] = state_key
    return out


def _py_processed_to_ts(lpr: dict[str, Any], names: Any) -> dict[str, Any]:
    def items(entries: Any) -> list[dict[str, Any]]:
        converted = (_py_run_item_to_ts(i, names) for i in entries or [])
        return [i for i in converted if i is not None]

    def actions(key: str, wrapper: str, ts_wrapper: str) -> list[dict[str, Any]]:
        return [
            {
                "toolCall": api_to_protocol(a.get("tool_call"), names),
                ts_wrapper: {"name": (a.get(wrapper) or {}).get("name")},
            }
            for a in lpr.get(key) or []
        ]

    functions = []
    for entry in lpr.get("functions") or []:
        tool = entry.get("tool") or {}
        ts_tool: dict[str, Any] = {"type": "function", "name": tool.get("name")}
        if tool.get("namespace") is not None:
            ts_tool["namespace"] = tool["namespace"]
        if tool.get("description") is not None:
            ts_tool["description"] = tool["description"]
        if tool.get("paramsJsonSchema") is not None:
            ts_tool["parameters"] = copy.deepcopy(tool["paramsJsonSchema"])
        functions.append(
            {
                "toolCall": api_to_protocol(entry.get("tool_call"), names),
                "tool": ts_tool,
                "mcpToolBinding": None,
            }
        )
    return {
        "newItems": items(lpr.get("new_items")),
        "toolsUsed": list(lpr.get("tools_used") or []),
        "handoffs": [
            {
                "toolCall": api_to_protocol(h.get("tool_call"), names),
                "handoff": {"toolName": (h.get("handoff") or {}).get("tool_name")},
            }
            for h in lpr.get("handoffs") or []
        ],
        "functions": functions,
        "functionToolsNotFound": [],
        "computerActions": actions("computer_actions", "computer", "computer"),
        "shellActions": actions("shell_actions", "shell", "shell"),
        "applyPatchActions": actions("apply_patch_actions", "apply_patch", "applyPatch"),
        "mcpApprovalRequests": [],
    }


def _py_to_ts(py: dict[str, Any]) -> dict[str, Any]:
    raw_calls = _py_raw_calls(py)

    def names(call_id: Any) -> str | None:
        raw = raw_calls.get(call_id) if isinstance(call_id, str) else None
        return raw.get("name") if raw else None

    # Generated items, remembering where each Python index landed.
    generated: list[dict[str, Any]] = []
    index_map: dict[int, int] = {}
    for index, item in enumerate(py.get("generated_items") or []):
        converted = _py_run_item_to_ts(item, names)
        if converted is not None:
            index_map[index] = len(generated)
            generated.append(converted)

    step = py.get("current_step") or None
    interrupted = isinstance(step, dict) and step.get("type") == "next_step_interruption"
    lpr = py.get("last_processed_response")
    ts: dict[str, Any] = {
        "$schemaVersion": TYPESCRIPT_SCHEMA_VERSION,
        "currentTurn": py["current_turn"],
        "currentAgent": _agent_ref(py["current_agent"]),
        "originalInput": py["original_input"]
        if isinstance(py["original_input"], str)
        else [api_to_protocol(i, names) for i in py["original_input"]],
    }
    if py.get("pending_input"):
        ts["pendingInput"] = [api_to_protocol(i, names) for i in py["pending_input"]]
    ts["modelResponses"] = [_py_response_to_ts(r, names) for r in py.get("model_responses") or []]
    ts["context"] = _py_context_to_ts(py, generated, raw_calls, names)
    ts["toolUseTracker"] = copy.deepcopy(py.get("tool_use_tracker") or {})
    ts["maxTurns"] = py.get("max_turns")
    ts["noActiveAgentRun"] = not interrupted
    ts["inputGuardrailResults"] = copy.deepcopy(py.get("input_guardrail_results") or [])
    ts["initialInputGuardrailsCompleted"] = bool(py["current_turn"]) or bool(generated)
    ts["outputGuardrailResults"] = copy.deepcopy(py.get("output_guardrail_results") or [])
    ts["toolInputGuardrailResults"] = copy.deepcopy(py.get("tool_input_guardrail_results") or [])
    ts["toolOutputGuardrailResults"] = copy.deepcopy(py.get("tool_output_guardrail_results") or [])
    ts["currentTurnInProgress"] = interrupted
    if isinstance(step, dict) and step.get("type") == "next_step_run_again":
        ts["currentStep"] = {"type": "next_step_run_again"}
    elif interrupted:
        data = (step.get("data") if isinstance(step, dict) else None) or {}
        ts_data: dict[str, Any] = {
            "interruptions": [
                i
                for i in (_py_run_item_to_ts(x, names) for x in data.get("interruptions") or [])
                if i is not None
            ]
        }
        if data.get("response_accepted") is True:
            ts_data["responseAccepted"] = True
        ts["currentStep"] = {"type": "next_step_interruption", "data": ts_data}
    if py.get("last_model_response"):
        ts["lastModelResponse"] = _py_response_to_ts(py["last_model_response"], names)
    ts["generatedItems"] = generated
    ownership = py.get("current_response_generated_item_ownership")
    if isinstance(ownership, dict) and ownership.get("start") in index_map:
        end = ownership.get("end", 0)
        mapped_end = next((index_map[i] + 1 for i in range(end - 1, -1, -1) if i in index_map), 0)
        ts["currentResponseGeneratedItemOwnership"] = {
            "generatedItemStartIndex": index_map[ownership["start"]],
            "generatedItemEndIndexExclusive": mapped_end,
            "interruptionGeneratedItemIndexes": [
                index_map[i] for i in ownership.get("interruptions") or [] if i in index_map
            ],
            "toolOutputGuardrailResultStartIndex": (lpr or {}).get(
                "tool_output_guardrail_result_start"
            )
            or 0,
        }
    ts["pendingAgentToolRuns"] = {}
    ts["pendingAgentToolRunAliases"] = {}
    if isinstance(lpr, dict):
        ts["lastProcessedResponse"] = _py_processed_to_ts(lpr, names)
    ts["currentTurnPersistedItemCount"] = py.get("current_turn_persisted_item_count") or 0
    completed, evidence = _ts_completed_invocations(generated)
    ts["completedToolInvocations"] = completed
    ts["completedToolInvocationEvidence"] = evidence
    ts["ambiguousToolInvocationCallIds"] = []
    for py_key, ts_key in (
        ("conversation_id", "conversationId"),
        ("previous_response_id", "previousResponseId"),
        ("reasoning_item_id_policy", "reasoningItemIdPolicy"),
    ):
        if py.get(py_key) is not None:
            ts[ts_key] = py[py_key]
    ts["trace"] = None  # traces are per-SDK; the resumed run starts its own
    return ts


def _py_response_to_ts(response: dict[str, Any], names: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "usage": _usage_to_ts(response.get("usage")),
        "output": [api_to_protocol(i, names) for i in response.get("output") or []],
    }
    if response.get("response_id") is not None:
        out["responseId"] = response["response_id"]
    if response.get("request_id") is not None:
        out["requestId"] = response["request_id"]
    return out


def _py_context_to_ts(
    py: dict[str, Any],
    generated: list[dict[str, Any]],
    raw_calls: dict[str, dict[str, Any]],
    names: Any,
) -> dict[str, Any]:
    context = py.get("context") or {}
    # Which TS state key a Python tool_key stands for: from the items that carry lookup keys.
    state_keys: dict[str, str] = {}
    for item in _py_items(py):
        key = state_key_from_lookup(item.get("tool_lookup_key"))
        if key is not None:
            state_keys.setdefault(tool_key_from_state_key(key), key)

    function_approvals: dict[str, dict[str, Any]] = {}
    invocations: dict[str, dict[str, str]] = {}
    for entry in context.get("function_tool_approvals") or []:
        owner = _agent_key(entry.get("agent"))
        tool_key = entry.get("tool_key")
        state_key = state_keys.get(tool_key) or function_state_key(tool_key)
        decision = entry.get("decision") or {}
        function_approvals.setdefault(owner, {})[state_key] = _record_to_ts(decision)
        for call_id in _per_call_ids(decision):
            raw = raw_calls.get(call_id)
            if raw is not None:
                call = api_to_protocol(raw, names)
                invocations.setdefault(owner, {})[call_id] = ts_fingerprint(state_key, call)
    out: dict[str, Any] = {
        "usage": _usage_to_ts(context.get("usage")),
        "approvals": {
            key: _record_to_ts(record)
            for key, record in (context.get("approvals") or {}).items()
            if isinstance(record, dict)
        },
    }
    if function_approvals:
        out["functionApprovals"] = [
            {"agentIdentity": owner, "approvals": approvals}
            for owner, approvals in function_approvals.items()
        ]
    # In the order of functionApprovals, so the ledger's order survives a round trip.
    out["approvalInvocations"] = [
        {"agentIdentity": owner, "invocations": invocations[owner], "approvals": {}}
        for owner in function_approvals
        if owner in invocations
    ]
    user_context = context.get("context")
    out["context"] = copy.deepcopy(user_context) if isinstance(user_context, dict) else {}
    if context.get("tool_input") is not None:
        out["toolInput"] = copy.deepcopy(context["tool_input"])
    return out


def _ts_completed_invocations(
    generated: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The JS SDK's ledger of finished calls: each call item paired with its output item."""
    outputs: dict[str, int] = {}
    for index, item in enumerate(generated):
        raw: dict[str, Any] = item.get("rawItem") or {}
        if (
            item.get("type") in ("tool_call_output_item", "handoff_output_item")
            and raw.get("type") == "function_call_result"
        ):
            outputs.setdefault(str(raw.get("callId")), index)
    completed: dict[str, dict[str, str]] = {}
    evidence: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(generated):
        raw = item.get("rawItem") or {}
        kind = item.get("type")
        if (
            kind not in ("tool_call_item", "handoff_call_item")
            or raw.get("type") != "function_call"
        ):
            continue
        call_id = str(raw.get("callId"))
        if call_id not in outputs:
            continue
        if kind == "handoff_call_item":
            tool_name = f"handoff:{raw.get('name')}"
        else:
            tool_name = item.get("functionToolStateKey") or function_state_key(
                raw.get("name"), raw.get("namespace")
            )
        fingerprint = ts_fingerprint(tool_name, raw)
        owner = _agent_key(item.get("agent"))
        completed.setdefault(owner, {})[call_id] = fingerprint
        evidence.setdefault(owner, {})[call_id] = {
            "fingerprint": fingerprint,
            "items": [{"generatedItemIndex": index}, {"generatedItemIndex": outputs[call_id]}],
        }
    return (
        [{"agentIdentity": a, "invocations": c} for a, c in completed.items()],
        [{"agentIdentity": a, "invocations": e} for a, e in evidence.items()],
    )


# --------------------------------------------------------------------------- TS -> Python


def _ts_run_item_to_py(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind not in TYPESCRIPT_ITEM_TYPES:
        raise MalformedStateError(
            f"RunState has a run item of unknown type {kind!r}: @openai/agents "
            f"{TYPESCRIPT_SCHEMA_VERSION} writes {', '.join(sorted(TYPESCRIPT_ITEM_TYPES))}"
        )
    raw_ts = item.get("rawItem") or {}
    raw = protocol_to_api(raw_ts)
    if kind == "handoff_output_item":
        return {
            "type": kind,
            "raw_item": raw,
            "agent": _agent_ref(item.get("sourceAgent")),
            "source_agent": _agent_ref(item.get("sourceAgent")),
            "target_agent": _agent_ref(item.get("targetAgent")),
        }
    if kind == "tool_call_item" and isinstance(raw, dict):
        kind = {
            "mcp_list_tools": "mcp_list_tools_item",
            "mcp_approval_request": "mcp_approval_request_item",
            "mcp_approval_response": "mcp_approval_response_item",
        }.get(str(raw.get("type")), kind)
    out: dict[str, Any] = {"type": kind, "raw_item": raw, "agent": _agent_ref(item.get("agent"))}
    if kind == "input_item":
        out["input_id"] = item.get("inputId")
    elif kind == "tool_call_output_item":
        out["output"] = copy.deepcopy(item.get("output"))
        if item.get("customData"):
            out["custom_data"] = copy.deepcopy(item["customData"])
    elif kind in ("tool_call_item", "tool_approval_item") and raw_ts.get("type") == "function_call":
        name = item.get("toolName") or raw_ts.get("name")
        out["tool_name"] = name
        lookup = python_lookup_key(item.get("functionToolStateKey"))
        if lookup is None and kind == "tool_approval_item":
            lookup = python_lookup_key(function_state_key(name, raw_ts.get("namespace")))
        if lookup is not None:
            out["tool_lookup_key"] = lookup
    elif kind == "tool_approval_item" and item.get("toolName"):
        out["tool_name"] = item["toolName"]
    return out


def _ts_processed_to_py(lpr: dict[str, Any], interruptions: list[dict[str, Any]]) -> dict[str, Any]:
    def actions(key: str, ts_wrapper: str, wrapper: str) -> list[dict[str, Any]]:
        return [
            {
                "tool_call": protocol_to_api(a.get("toolCall")),
                wrapper: {"name": (a.get(ts_wrapper) or {}).get("name")},
            }
            for a in lpr.get(key) or []
        ]

    functions = []
    for entry in lpr.get("functions") or []:
        tool = entry.get("tool") or {}
        call = entry.get("toolCall") or {}
        py_tool: dict[str, Any] = {"name": tool.get("name")}
        lookup = python_lookup_key(function_state_key(call.get("name"), call.get("namespace")))
        if lookup is not None:
            py_tool["lookupKey"] = lookup
        if tool.get("description") is not None:
            py_tool["description"] = tool["description"]
        if tool.get("parameters") is not None:
            py_tool["paramsJsonSchema"] = copy.deepcopy(tool["parameters"])
        functions.append({"tool_call": protocol_to_api(call), "tool": py_tool})
    return {
        "new_items": [_ts_run_item_to_py(i) for i in lpr.get("newItems") or []],
        "tools_used": list(lpr.get("toolsUsed") or []),
        "functions": functions,
        "computer_actions": actions("computerActions", "computer", "computer"),
        "custom_tool_actions": [],
        "local_shell_actions": [],
        "shell_actions": actions("shellActions", "shell", "shell"),
        "apply_patch_actions": actions("applyPatchActions", "applyPatch", "apply_patch"),
        "handoffs": [
            {
                "tool_call": protocol_to_api(h.get("toolCall")),
                "handoff": {"tool_name": (h.get("handoff") or {}).get("toolName")},
            }
            for h in lpr.get("handoffs") or []
        ],
        "mcp_approval_requests": [],
        "interruptions": copy.deepcopy(interruptions),
        "mcp_tool_bindings": {},
    }


def _ts_to_py(ts: dict[str, Any]) -> dict[str, Any]:
    generated = [_ts_run_item_to_py(i) for i in ts.get("generatedItems") or []]
    step = ts.get("currentStep") or None
    interruptions: list[dict[str, Any]] = []
    current_step: dict[str, Any] | None = None
    if isinstance(step, dict) and step.get("type") == "next_step_interruption":
        data = step.get("data") or {}
        interruptions = [_ts_run_item_to_py(i) for i in data.get("interruptions") or []]
        current_step = {
            "type": "next_step_interruption",
            "data": {
                "interruptions": interruptions,
                "response_accepted": data.get("responseAccepted") is True,
                "llm_end_hooks_started": True,
            },
        }
    elif isinstance(step, dict) and step.get("type") == "next_step_run_again":
        current_step = {"type": "next_step_run_again"}

    py: dict[str, Any] = {
        "$schemaVersion": PYTHON_SCHEMA_VERSION,
        "current_turn": ts["currentTurn"],
        "current_agent": _agent_ref(ts["currentAgent"]),
        "original_input": ts["originalInput"]
        if isinstance(ts["originalInput"], str)
        else [protocol_to_api(i) for i in ts["originalInput"]],
        "pending_input": [protocol_to_api(i) for i in ts.get("pendingInput") or []],
        "model_responses": [_ts_response_to_py(r) for r in ts.get("modelResponses") or []],
        "context": _ts_context_to_py(ts, generated, interruptions),
        "tool_use_tracker": copy.deepcopy(ts.get("toolUseTracker") or {}),
        "max_turns": ts.get("maxTurns"),
        "no_active_agent_run": True,
        "input_guardrail_results": copy.deepcopy(ts.get("inputGuardrailResults") or []),
        "output_guardrail_results": copy.deepcopy(ts.get("outputGuardrailResults") or []),
        "tool_input_guardrail_results": copy.deepcopy(ts.get("toolInputGuardrailResults") or []),
        "tool_output_guardrail_results": copy.deepcopy(ts.get("toolOutputGuardrailResults") or []),
        "conversation_id": ts.get("conversationId"),
        "previous_response_id": ts.get("previousResponseId"),
        "auto_previous_response_id": False,
        "generated_prompt_cache_key": None,
        "reasoning_item_id_policy": ts.get("reasoningItemIdPolicy"),
        "nested_history_owned_session_item_refs": [],
    }
    ownership = ts.get("currentResponseGeneratedItemOwnership")
    if isinstance(ownership, dict):
        py["current_response_generated_item_ownership"] = {
            "start": ownership.get("generatedItemStartIndex"),
            "end": ownership.get("generatedItemEndIndexExclusive"),
            "interruptions": list(ownership.get("interruptionGeneratedItemIndexes") or []),
        }
    py["generated_items"] = generated
    py["current_step"] = current_step
    py["last_model_response"] = (
        _ts_response_to_py(ts["lastModelResponse"]) if ts.get("lastModelResponse") else None
    )
    lpr = ts.get("lastProcessedResponse")
    py["last_processed_response"] = (
        _ts_processed_to_py(lpr, interruptions) if isinstance(lpr, dict) else None
    )
    py["current_turn_persisted_item_count"] = ts.get("currentTurnPersistedItemCount") or 0
    py["trace"] = None
    return py


def _ts_response_to_py(response: dict[str, Any]) -> dict[str, Any]:
    return {
        "usage": _usage_to_py(response.get("usage")),
        "output": [protocol_to_api(i) for i in response.get("output") or []],
        "response_id": response.get("responseId"),
        "request_id": response.get("requestId"),
    }


def _ts_context_to_py(
    ts: dict[str, Any], generated: list[dict[str, Any]], interruptions: list[dict[str, Any]]
) -> dict[str, Any]:
    context = ts.get("context") or {}
    # Python's ledger: one record per function call, bound to its tool, executed once answered.
    answered = {
        (i.get("raw_item") or {}).get("call_id")
        for i in generated
        if i.get("type") == "tool_call_output_item"
    }
    ledger: dict[str, dict[str, Any]] = {}
    scopes: dict[str, str] = {}  # tool_key -> approval scope of its pending call
    for item in [*generated, *interruptions]:
        raw = item.get("raw_item")
        if item.get("type") not in ("tool_call_item", "tool_approval_item"):
            continue
        if not isinstance(raw, dict) or raw.get("type") != "function_call":
            continue
        identity = python_invocation(raw, item.get("tool_lookup_key"), item.get("tool_name"))
        if identity is None:
            continue
        invocation_type, call_id, scope, fingerprint = identity
        done = call_id in answered
        ledger.setdefault(
            call_id,
            {
                "type": invocation_type,
                "approval_scope": scope,
                "fingerprint": fingerprint,
                "executed": done,
                "completed": done,
            },
        )
        if item.get("type") == "tool_approval_item":
            lookup = item.get("tool_lookup_key")
            key = state_key_from_lookup(lookup)
            scopes[tool_key_from_state_key(key) if key else str(item.get("tool_name"))] = scope

    out: dict[str, Any] = {
        "usage": _usage_to_py(context.get("usage")),
        "approvals": {
            key: _record_to_py(record, None)
            for key, record in (context.get("approvals") or {}).items()
            if isinstance(record, dict)
        },
        "tool_invocations": ledger,
        "context": copy.deepcopy(context.get("context")),
        "context_meta": {
            "original_type": "dict",
            "serialized_via": "direct",
            "requires_deserializer": False,
            "omitted": False,
        },
    }
    if context.get("toolInput") is not None:
        out["tool_input"] = copy.deepcopy(context["toolInput"])
    function_approvals = []
    for entry in context.get("functionApprovals") or []:
        for state_key, record in (entry.get("approvals") or {}).items():
            tool_key = tool_key_from_state_key(state_key)
            function_approvals.append(
                {
                    "agent": {"name": entry.get("agentIdentity")},
                    "tool_key": tool_key,
                    "decision": _record_to_py(record, scopes.get(tool_key)),
                }
            )
    if function_approvals:
        out["function_tool_approvals"] = function_approvals
    return out
