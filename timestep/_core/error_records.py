"""What Timestep stores for an error: a portable, secret-free record, and the error rebuilt from it.

DBOS checkpoints the error of a failed step or run. Pickled, an ``openai.APIStatusError``
carries its HTTP request, whose headers hold the provider key and whose body holds the prompt;
and it cannot be unpickled (its ``__init__`` takes keyword-only arguments). So Timestep's DBOS
serializer (``serializer.py``) stores errors as a record instead: the class, the message
(configured secrets redacted), and for provider errors what the SDK's retry logic reads (HTTP
status, request id, retry headers, the error body's code, type and param). ``rebuild_error``
gives back an instance of the same class with those parts, so a replayed step raises what the
SDK raised live, and a caller in another process gets the SDK's class.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx2 as httpx  # the HTTP client openai builds its errors on
import openai

from timestep.errors import RecordedError

from .secrets import scrub

__all__ = [
    "ERROR_RECORD_KEY",
    "clean_text",
    "describe_error",
    "error_record",
    "is_permanent",
    "rebuild_error",
]

ERROR_RECORD_KEY = "$error"

# The response headers the SDK's and OpenAI client's retry logic read; nothing else is kept.
_KEPT_HEADERS = ("x-request-id", "retry-after", "retry-after-ms", "x-should-retry")
_BODY_FIELDS = ("message", "type", "code", "param")
_MAX_TEXT = 4000
_MAX_ATTRS = 20
# Status codes a later attempt can succeed on (the OpenAI client retries the same ones).
_TRANSIENT_STATUS = frozenset({408, 409, 429})


def clean_text(text: str) -> str:
    """``text`` without configured secrets or credential-shaped strings, at most 4000 chars."""
    text = scrub(text)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def error_record(exc: BaseException) -> dict[str, Any]:
    """The portable, secret-free record of ``exc`` (see the module docstring)."""
    cls = type(exc)
    if isinstance(exc, RecordedError):
        record: dict[str, Any] = {"class": exc.error_class, "message": exc.error_message}
        return {ERROR_RECORD_KEY: record}
    record = {"class": f"{cls.__module__}.{cls.__qualname__}", "message": clean_text(str(exc))}
    if isinstance(exc, openai.APIError):
        record["request"] = _request_record(exc.request)
        if isinstance(exc.body, dict):
            record["body"] = {
                k: clean_text(v) if isinstance(v, str) else v
                for k, v in exc.body.items()
                if k in _BODY_FIELDS and (v is None or isinstance(v, str | int))
            }
    if isinstance(exc, openai.APIStatusError):
        record["status"] = exc.status_code
        record["headers"] = {
            name: exc.response.headers[name]
            for name in _KEPT_HEADERS
            if name in exc.response.headers
        }
    else:
        attrs = _scalar_attributes(exc)
        if attrs:
            record["attrs"] = attrs
    return {ERROR_RECORD_KEY: record}


def rebuild_error(record: dict[str, Any]) -> BaseException:
    """The error ``error_record`` recorded, as an instance of its own class where this process
    has that class loaded (a record never makes it import anything)."""
    fields = record[ERROR_RECORD_KEY]
    class_path, message = str(fields.get("class", "Exception")), str(fields.get("message", ""))
    cls = _loaded_exception_class(class_path)
    if cls is None:
        return RecordedError(class_path, message)
    try:
        if issubclass(cls, openai.APIStatusError):
            return _rebuild_status_error(cls, message, fields)
        if issubclass(cls, openai.APIError):
            return _rebuild_api_error(cls, message, fields)
    except Exception:  # a class whose constructor differs from the client's own: keep the text
        return RecordedError(class_path, message)
    error = cls.__new__(cls)
    BaseException.__init__(error, message)
    for name, value in dict(fields.get("attrs") or {}).items():
        try:
            setattr(error, name, value)
        except Exception:
            continue
    return error


def describe_error(error: object) -> str:
    """One line for an API answer or the CLI: ``Class: message``. A value DBOS could not read
    back (an error recorded as a pickle by an earlier version) is not shown: it may hold a key."""
    if isinstance(error, RecordedError):
        return str(error)
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {clean_text(str(error))}"
    return "an error recorded in a form this version does not read (not shown)"


def is_permanent(error: BaseException) -> bool:
    """Whether another attempt of the same call fails the same way: a provider's 4xx answer
    other than timeout, conflict and rate limit (a bad key, a bad request, a missing model)."""
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        return 400 <= status < 500 and status not in _TRANSIENT_STATUS
    return False


def _request_record(request: httpx.Request) -> dict[str, str]:
    # No headers (the key) and no query (some providers take a key there); no body (the prompt).
    url = request.url.copy_with(query=None, fragment=None, username=None, password=None)
    return {"method": request.method, "url": str(url)}


def _scalar_attributes(exc: BaseException) -> dict[str, Any]:
    """An exception's own plain attributes (``tool_name``, ``timeout_seconds``...), cleaned."""
    attrs: dict[str, Any] = {}
    for name, value in vars(exc).items():
        if name.startswith("_") or len(attrs) >= _MAX_ATTRS:
            continue
        if isinstance(value, str):
            attrs[name] = clean_text(value)
        elif value is None or isinstance(value, bool | int | float):
            attrs[name] = value
    return attrs


def _loaded_exception_class(class_path: str) -> type[BaseException] | None:
    # Nested classes have dotted qualnames: find the longest loaded module prefix.
    parts = class_path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        target: Any = module
        for attribute in parts[cut:]:
            target = getattr(target, attribute, None)
            if target is None:
                break
        if isinstance(target, type) and issubclass(target, BaseException):
            return target
        return None
    return None


def _fake_request(fields: dict[str, Any]) -> httpx.Request:
    request = dict(fields.get("request") or {})
    return httpx.Request(
        str(request.get("method") or "POST"), str(request.get("url") or "http://recorded.invalid/")
    )


def _rebuild_status_error(
    cls: type[openai.APIStatusError], message: str, fields: dict[str, Any]
) -> openai.APIStatusError:
    response = httpx.Response(
        int(fields.get("status") or 500),
        headers=dict(fields.get("headers") or {}),
        request=_fake_request(fields),
    )
    return cls(message, response=response, body=fields.get("body"))


def _rebuild_api_error(
    cls: type[openai.APIError], message: str, fields: dict[str, Any]
) -> openai.APIError:
    request = _fake_request(fields)
    if issubclass(cls, openai.APITimeoutError):
        return cls(request=request)
    if issubclass(cls, openai.APIConnectionError):
        return cls(message=message, request=request)
    return cls(message, request, body=fields.get("body"))
