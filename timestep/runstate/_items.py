"""Model items: OpenAI Responses API items (what Python stores) <-> the JS SDK's protocol items.

Python keeps raw Responses API items (``call_id``, ``function_call_output``, ``summary``); the
JS SDK keeps its own protocol (``callId``, ``function_call_result`` with a tool ``name``,
reasoning ``content``, ``providerData`` for everything provider-specific). The mapping below
mirrors the JS SDK's own converters (``convertToOutputItem`` and ``getInputItems`` in
``@openai/agents-openai``), so an item converted here is what the JS SDK would have produced
from the same API response. Keys that are data (tool arguments, outputs, provider payloads)
are never renamed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["api_to_protocol", "protocol_to_api"]

_HOSTED_TYPES = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
    }
)
# Call items whose only protocol difference is call_id -> callId (plus providerData).
_CALL_RENAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "computer_call": {"call_id": "callId"},
        "shell_call": {"call_id": "callId"},
        "shell_call_output": {"call_id": "callId", "max_output_length": "maxOutputLength"},
        "apply_patch_call": {"call_id": "callId"},
        "apply_patch_call_output": {"call_id": "callId"},
        "program": {"call_id": "callId"},
    }
)

NameLookup = Callable[[str], str | None]
"""call_id -> the function name of the call it answers (function_call_result needs it)."""


def _rest(item: dict[str, Any], *taken: str) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in item.items() if k not in taken}


def _caller_to_protocol(caller: Any) -> Any:
    if isinstance(caller, dict) and caller.get("type") == "program":
        return {"type": "program", "callerId": caller.get("caller_id")}
    return {"type": "direct"} if isinstance(caller, dict) else caller


def _caller_to_api(caller: Any) -> Any:
    if isinstance(caller, dict) and caller.get("type") == "program":
        return {"type": "program", "caller_id": caller.get("callerId")}
    return {"type": "direct"} if isinstance(caller, dict) else caller


def _with_provider_data(out: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    if extra:
        out["providerData"] = extra
    return out


# --------------------------------------------------------------------------- Python -> JS


def api_to_protocol(item: Any, names: NameLookup) -> Any:
    """One Responses API item (Python's raw item) as the JS SDK's protocol item."""
    if not isinstance(item, dict):
        return copy.deepcopy(item)
    kind: Any = item.get("type")  # JSON: any value, even a missing one
    if kind == "message" or (kind is None and "role" in item):
        return _message_to_protocol(item)
    if kind == "function_call":
        out: dict[str, Any] = {"type": "function_call"}
        if "id" in item:
            out["id"] = item["id"]
        out["callId"] = item.get("call_id")
        out["name"] = item.get("name")
        if isinstance(item.get("namespace"), str):
            out["namespace"] = item["namespace"]
        if item.get("status") is not None:
            out["status"] = item["status"]
        out["arguments"] = item.get("arguments", "")
        if item.get("caller") is not None:
            out["caller"] = _caller_to_protocol(item["caller"])
        extra = _rest(item, "type", "id", "call_id", "name", "namespace", "status")
        extra.pop("arguments", None)
        extra.pop("caller", None)
        return _with_provider_data(out, extra)
    if kind == "function_call_output":
        call_id = item.get("call_id")
        out = {"type": "function_call_result"}
        if item.get("id") is not None:
            out["id"] = item["id"]
        out["name"] = item.get("name") or (names(call_id) if call_id else None) or call_id
        if isinstance(item.get("namespace"), str):
            out["namespace"] = item["namespace"]
        out["callId"] = call_id
        out["status"] = item.get("status") or "completed"
        if item.get("caller") is not None:
            out["caller"] = _caller_to_protocol(item["caller"])
        out["output"] = _output_to_protocol(item.get("output"))
        extra = _rest(item, "type", "id", "call_id", "name", "namespace", "status", "caller")
        extra.pop("output", None)
        return _with_provider_data(out, extra)
    if kind == "reasoning":
        out = {"type": "reasoning"}
        if "id" in item:
            out["id"] = item["id"]
        out["content"] = [
            _with_provider_data(
                {"type": "input_text", "text": part.get("text", "")}, _rest(part, "type", "text")
            )
            for part in item.get("summary") or []
            if isinstance(part, dict)
        ]
        if isinstance(item.get("content"), list):
            out["rawContent"] = [
                {"type": "reasoning_text", "text": part.get("text", "")}
                for part in item["content"]
                if isinstance(part, dict)
            ]
        return _with_provider_data(out, _rest(item, "type", "id", "summary", "content"))
    if kind == "compaction":
        out = {"type": "compaction"}
        if item.get("id") is not None:
            out["id"] = item["id"]
        out["encrypted_content"] = item.get("encrypted_content", "")
        if item.get("created_by") is not None:
            out["created_by"] = item["created_by"]
        return _with_provider_data(out, _rest(item, "type", "id", "encrypted_content"))
    if kind in _HOSTED_TYPES:
        extra = _rest(item, "status")
        out = {"type": "hosted_tool_call", "name": kind}
        if item.get("id") is not None:
            out["id"] = item["id"]
        if kind in ("mcp_approval_request", "mcp_list_tools", "mcp_call"):
            out["status"] = "completed"
        elif item.get("status") is not None:
            out["status"] = item["status"]
        if kind == "image_generation_call" and item.get("result") is not None:
            out["output"] = extra.pop("result")
        if kind == "mcp_call" and item.get("output") is not None:
            out["output"] = extra.pop("output")
        if isinstance(item.get("arguments"), str):
            out["arguments"] = item["arguments"]
        if item.get("caller") is not None:
            out["caller"] = _caller_to_protocol(extra.pop("caller"))
        out["providerData"] = extra
        return out
    if kind == "computer_call_output":
        out = {"type": "computer_call_result"}
        if item.get("id") is not None:
            out["id"] = item["id"]
        out["callId"] = item.get("call_id")
        output = item.get("output")
        screenshot: dict[str, Any] = output if isinstance(output, dict) else {}
        out["output"] = {"type": "computer_screenshot", "data": screenshot.get("image_url", "")}
        return _with_provider_data(out, _rest(item, "type", "id", "call_id", "output"))
    if kind in _CALL_RENAMES:
        renames = _CALL_RENAMES[kind]
        out = {renames.get(k, k): copy.deepcopy(v) for k, v in item.items() if k != "caller"}
        if item.get("caller") is not None:
            out["caller"] = _caller_to_protocol(item["caller"])
        return out
    # Anything else (custom tool calls, local shell, new API items) rides along untouched.
    out = {"type": "unknown"}
    if isinstance(item.get("id"), str):
        out["id"] = item["id"]
    out["providerData"] = copy.deepcopy(item)
    return out


def _message_to_protocol(item: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    out: dict[str, Any] = {}
    if "type" in item:
        out["type"] = item["type"]
    if item.get("id") is not None:
        out["id"] = item["id"]
    taken = ["type", "id", "role", "content"]
    if role == "assistant":
        out["role"] = "assistant"
        out["status"] = item.get("status") or "completed"
        out["content"] = [_output_content_to_protocol(c) for c in item.get("content") or []]
        if item.get("phase") in ("commentary", "final_answer"):
            out["phase"] = item["phase"]
        taken += ["status", "phase"]
    else:
        # The JS protocol has no developer role; it is a system message there.
        out["role"] = "system" if role == "developer" else role
        content = item.get("content")
        if role in ("system", "developer") and isinstance(content, list):
            content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
        out["content"] = (
            [_input_content_to_protocol(c) for c in content]
            if isinstance(content, list)
            else content
        )
        if role == "developer":
            out.setdefault("providerData", {})["role"] = "developer"
    extra = _rest(item, *taken)
    if extra:
        out.setdefault("providerData", {}).update(extra)
    return out


def _output_content_to_protocol(part: Any) -> Any:
    if not isinstance(part, dict):
        return copy.deepcopy(part)
    if part.get("type") == "output_text":
        out = {"type": "output_text", "text": part.get("text", "")}
        return _with_provider_data(out, _rest(part, "type", "text"))
    if part.get("type") == "refusal":
        out = {"type": "refusal", "refusal": part.get("refusal", "")}
        return _with_provider_data(out, _rest(part, "type", "refusal"))
    return copy.deepcopy(part)


def _input_content_to_protocol(part: Any) -> Any:
    if not isinstance(part, dict):
        return copy.deepcopy(part)
    kind = part.get("type")
    if kind == "input_text":
        out: dict[str, Any] = {"type": "input_text", "text": part.get("text", "")}
        if part.get("prompt_cache_breakpoint") is not None:
            out["promptCacheBreakpoint"] = part["prompt_cache_breakpoint"]
        return _with_provider_data(out, _rest(part, "type", "text", "prompt_cache_breakpoint"))
    if kind == "input_image":
        out = {"type": "input_image"}
        if part.get("image_url") is not None:
            out["image"] = part["image_url"]
        elif part.get("file_id") is not None:
            out["image"] = {"id": part["file_id"]}
        if part.get("detail") is not None:
            out["detail"] = part["detail"]
        return _with_provider_data(out, _rest(part, "type", "image_url", "file_id", "detail"))
    if kind == "input_file":
        out = {"type": "input_file"}
        if part.get("file_id") is not None:
            out["file"] = {"id": part["file_id"]}
        elif part.get("file_url") is not None:
            out["file"] = {"url": part["file_url"]}
        elif part.get("file_data") is not None:
            out["file"] = part["file_data"]
        if part.get("filename") is not None:
            out["filename"] = part["filename"]
        taken = ("type", "file_id", "file_url", "file_data", "filename")
        return _with_provider_data(out, _rest(part, *taken))
    return copy.deepcopy(part)


def _output_to_protocol(output: Any) -> Any:
    """A tool result as the JS SDK records it: text becomes ``{type: text}``."""
    if isinstance(output, str):
        return {"type": "text", "text": output}
    if isinstance(output, list):
        return [_input_content_to_protocol(part) for part in output]
    return copy.deepcopy(output)


# --------------------------------------------------------------------------- JS -> Python


def protocol_to_api(item: Any) -> Any:
    """One JS protocol item as the Responses API item Python stores."""
    if not isinstance(item, dict):
        return copy.deepcopy(item)
    kind: Any = item.get("type")  # JSON: any value, even a missing one
    provider_data = item.get("providerData")
    extra: dict[str, Any] = copy.deepcopy(provider_data) if isinstance(provider_data, dict) else {}
    if kind == "message" or (kind is None and "role" in item):
        return _message_to_api(item, extra)
    if kind == "function_call":
        extra.pop("type", None)
        extra.pop("id", None)
        out: dict[str, Any] = {
            "arguments": item.get("arguments", ""),
            "call_id": item.get("callId"),
        }
        out["name"] = item.get("name")
        out["type"] = "function_call"
        if item.get("id") is not None:
            out["id"] = item["id"]
        if isinstance(item.get("namespace"), str):
            out["namespace"] = item["namespace"]
        if item.get("status") is not None:
            out["status"] = item["status"]
        if item.get("caller") is not None:
            out["caller"] = _caller_to_api(item["caller"])
        return {**extra, **out}
    if kind == "function_call_result":
        out = {"call_id": item.get("callId"), "output": _output_to_api(item.get("output"))}
        out["type"] = "function_call_output"
        if item.get("id") is not None:
            out["id"] = item["id"]
        if item.get("caller") is not None:
            out["caller"] = _caller_to_api(item["caller"])
        return {**extra, **out}
    if kind == "reasoning":
        out = {"id": item.get("id")} if item.get("id") is not None else {}
        out["summary"] = [
            {
                "text": part.get("text", ""),
                "type": "summary_text",
                **(part.get("providerData") or {}),
            }
            for part in item.get("content") or []
            if isinstance(part, dict)
        ]
        out["type"] = "reasoning"
        if isinstance(item.get("rawContent"), list):
            out["content"] = [
                {"text": part.get("text", ""), "type": "reasoning_text"}
                for part in item["rawContent"]
                if isinstance(part, dict)
            ]
        extra.pop("encryptedContent", None)
        encrypted = (item.get("providerData") or {}).get("encryptedContent")
        if encrypted is not None and "encrypted_content" not in extra:
            extra["encrypted_content"] = encrypted
        return {**out, **{k: v for k, v in extra.items() if k not in out}}
    if kind == "compaction":
        out = {"type": "compaction", "encrypted_content": item.get("encrypted_content", "")}
        if item.get("id") is not None:
            out["id"] = item["id"]
        if item.get("created_by") is not None:
            out["created_by"] = item["created_by"]
        return {**extra, **out}
    if kind == "hosted_tool_call":
        name = item.get("name")
        out = dict(extra)
        if name in _HOSTED_TYPES and out.get("type") not in _HOSTED_TYPES:
            out["type"] = name
        if item.get("id") is not None:
            out["id"] = item["id"]
        mcp = out.get("type") in ("mcp_approval_request", "mcp_list_tools", "mcp_call")
        if not mcp and item.get("status") is not None:
            out["status"] = item["status"]
        if out.get("type") == "image_generation_call" and item.get("output") is not None:
            out["result"] = item["output"]
        if out.get("type") == "mcp_call" and item.get("output") is not None:
            out["output"] = item["output"]
        if item.get("caller") is not None:
            out["caller"] = _caller_to_api(item["caller"])
        return out
    if kind == "unknown":
        return extra or {k: v for k, v in copy.deepcopy(item).items() if k != "type"}
    reverse = {t: {v: k for k, v in renames.items()} for t, renames in _CALL_RENAMES.items()}
    if kind == "computer_call_result":
        given = item.get("output")
        output: dict[str, Any] = given if isinstance(given, dict) else {}
        out = {"call_id": item.get("callId"), "type": "computer_call_output"}
        out["output"] = {"type": "computer_screenshot", "image_url": output.get("data")}
        if item.get("id") is not None:
            out["id"] = item["id"]
        return {**extra, **out}
    if kind in reverse:
        renamed = reverse[kind]
        out = {str(renamed.get(k, k)): copy.deepcopy(v) for k, v in item.items()}
        if item.get("caller") is not None:
            out["caller"] = _caller_to_api(item["caller"])
        return out
    return copy.deepcopy(item)


def _message_to_api(item: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    out: dict[str, Any] = {}
    if role == "assistant":
        if item.get("id") is not None:
            out["id"] = item["id"]
        out["content"] = [_output_content_to_api(c) for c in item.get("content") or []]
        out["role"] = "assistant"
        out["status"] = item.get("status") or "completed"
        out["type"] = "message"
        if item.get("phase") is not None:
            out["phase"] = item["phase"]
        return {**out, **{k: v for k, v in extra.items() if k not in out}}
    if role == "system" and extra.get("role") == "developer":
        extra.pop("role")
        role = "developer"
    content = item.get("content")
    out["content"] = (
        [_input_content_to_api(c) for c in content] if isinstance(content, list) else content
    )
    out["role"] = role
    if "type" in item:
        out["type"] = item["type"]
    if item.get("id") is not None:
        out["id"] = item["id"]
    return {**out, **{k: v for k, v in extra.items() if k not in out}}


def _output_content_to_api(part: Any) -> Any:
    if not isinstance(part, dict):
        return copy.deepcopy(part)
    extra = copy.deepcopy(part.get("providerData") or {})
    if part.get("type") == "output_text":
        out: dict[str, Any] = {"annotations": extra.pop("annotations", [])}
        out["text"] = part.get("text", "")
        out["type"] = "output_text"
        return {**out, **extra}
    if part.get("type") == "refusal":
        return {"refusal": part.get("refusal", ""), "type": "refusal", **extra}
    return copy.deepcopy(part)


def _input_content_to_api(part: Any) -> Any:
    if not isinstance(part, dict):
        return copy.deepcopy(part)
    extra = copy.deepcopy(part.get("providerData") or {})
    kind = part.get("type")
    if kind == "input_text":
        out: dict[str, Any] = {"text": part.get("text", ""), "type": "input_text"}
        if part.get("promptCacheBreakpoint") is not None:
            out["prompt_cache_breakpoint"] = part["promptCacheBreakpoint"]
        return {**out, **extra}
    if kind == "input_image":
        out = {"type": "input_image"}
        image = part.get("image")
        if isinstance(image, str):
            out["image_url"] = image
        elif isinstance(image, dict) and "id" in image:
            out["file_id"] = image["id"]
        out["detail"] = part.get("detail") or "auto"
        return {**out, **extra}
    if kind == "input_file":
        out = {"type": "input_file"}
        file = part.get("file")
        if isinstance(file, dict) and "id" in file:
            out["file_id"] = file["id"]
        elif isinstance(file, dict) and "url" in file:
            out["file_url"] = file["url"]
        elif isinstance(file, str):
            out["file_data" if not file.startswith("https://") else "file_url"] = file
        if part.get("filename") is not None:
            out["filename"] = part["filename"]
        return {**out, **extra}
    return copy.deepcopy(part)


def _output_to_api(output: Any) -> Any:
    """A JS tool result as the ``output`` of a Responses ``function_call_output``."""
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        if output.get("type") == "text":
            return str(output.get("text", ""))
        if output.get("type") == "image":
            image = output.get("image")
            url = image if isinstance(image, str) else (image or {}).get("url")
            return [
                {"type": "input_image", "image_url": url, "detail": output.get("detail") or "auto"}
            ]
        if output.get("type") == "file":
            return [_input_content_to_api({"type": "input_file", "file": output.get("file")})]
    if isinstance(output, list):
        return [_input_content_to_api(part) for part in output]
    return "" if output is None else str(output)
