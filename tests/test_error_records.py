"""Error records: what DBOS stores for a failed step or run, and the error rebuilt from it.

Pure functions, no database: the storage side (every table dumped, both databases) is in
``test_failed_runs.py``."""

from __future__ import annotations

import json
import sys

import httpx2 as httpx
import openai
import pytest
from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError

from timestep._core.error_records import (
    describe_error,
    error_record,
    is_permanent,
    rebuild_error,
)
from timestep._core.process import process_state
from timestep._core.serializer import TimestepSerializer
from timestep.errors import RecordedError

KEY = "sk-proj-records-0123456789abcdefghijklmnop"


@pytest.fixture(autouse=True)
def configured_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    process_state().reload_settings()
    yield
    monkeypatch.delenv("OPENAI_API_KEY")
    process_state().reload_settings()


def _status_error(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    request = httpx.Request(
        "POST",
        "https://api.example.test/v1/responses?api-key=in-the-query",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"input": "the user's whole prompt"},
    )
    response = httpx.Response(
        status,
        headers={
            "x-request-id": "req_123",
            "retry-after": "2",
            "set-cookie": "session=abc",
            "openai-organization": "org-secret",
        },
        request=request,
    )
    body = {"message": f"Incorrect API key provided: {KEY}", "type": "invalid", "code": "bad"}
    return cls(f"Error code: {status} - {body}", response=response, body=body)


STATUS_ERRORS = [
    (openai.BadRequestError, 400),
    (openai.AuthenticationError, 401),
    (openai.PermissionDeniedError, 403),
    (openai.NotFoundError, 404),
    (openai.ConflictError, 409),
    (openai.UnprocessableEntityError, 422),
    (openai.RateLimitError, 429),
    (openai.InternalServerError, 500),
    (openai.InternalServerError, 503),
]


@pytest.mark.parametrize(("cls", "status"), STATUS_ERRORS)
def test_a_provider_error_is_rebuilt_as_its_class_without_what_it_should_not_keep(cls, status):
    original = _status_error(cls, status)
    stored = TimestepSerializer().serialize(original)

    assert KEY not in stored
    assert "prompt" not in stored and "in-the-query" not in stored
    assert "org-secret" not in stored and "session=abc" not in stored
    json.loads(stored)  # a JSON record, not a pickle

    rebuilt = TimestepSerializer().deserialize(stored)
    assert type(rebuilt) is cls
    assert rebuilt.status_code == status
    assert rebuilt.request_id == "req_123"
    assert rebuilt.response.headers["retry-after"] == "2"  # what retry logic reads
    assert rebuilt.code == "bad" and rebuilt.type == "invalid"
    assert str(rebuilt).startswith(f"Error code: {status}")
    assert KEY not in str(rebuilt) and "[redacted]" in str(rebuilt)
    assert rebuilt.request.method == "POST"
    assert str(rebuilt.request.url) == "https://api.example.test/v1/responses"
    assert "authorization" not in rebuilt.request.headers


def test_connection_and_timeout_errors_are_rebuilt_as_their_classes():
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/responses")
    for original in (
        openai.APITimeoutError(request=request),
        openai.APIConnectionError(message="Connection error.", request=request),
    ):
        rebuilt = rebuild_error(error_record(original))
        assert type(rebuilt) is type(original)
        assert str(rebuilt) == str(original)
        assert not is_permanent(rebuilt)


def test_sdk_errors_keep_their_class_message_and_plain_attributes():
    rebuilt = rebuild_error(error_record(MaxTurnsExceeded("Max turns (2) exceeded")))
    assert type(rebuilt) is MaxTurnsExceeded
    assert str(rebuilt) == "Max turns (2) exceeded"
    assert rebuilt.message == "Max turns (2) exceeded"

    behaviour = rebuild_error(error_record(ModelBehaviorError(f"bad output {KEY}")))
    assert type(behaviour) is ModelBehaviorError
    assert KEY not in str(behaviour)


def test_a_class_not_loaded_here_is_never_imported_and_comes_back_as_a_recorded_error():
    record = {"$error": {"class": "timestep_never_loaded_module.Boom", "message": "boom"}}
    rebuilt = rebuild_error(record)
    assert isinstance(rebuilt, RecordedError)
    assert rebuilt.error_class == "timestep_never_loaded_module.Boom"
    assert "timestep_never_loaded_module" not in sys.modules
    # Not an exception class: refused too, and the record survives another round.
    not_an_error = rebuild_error({"$error": {"class": "os.system", "message": "x"}})
    assert isinstance(not_an_error, RecordedError)
    assert rebuild_error(error_record(not_an_error)).error_class == "os.system"


def test_bearer_tokens_and_sk_keys_are_scrubbed_even_when_not_configured():
    error = RuntimeError("sent Authorization: Bearer abc.def.ghi and sk-unconfigured1234567890")
    stored = json.dumps(error_record(error))
    assert "abc.def.ghi" not in stored and "sk-unconfigured1234567890" not in stored


def test_permanent_errors_are_the_client_errors_a_retry_cannot_fix():
    permanent = {
        status for cls, status in STATUS_ERRORS if is_permanent(_status_error(cls, status))
    }
    assert permanent == {400, 401, 403, 404, 422}
    assert not is_permanent(RuntimeError("a tool's own failure"))


def test_described_errors_are_one_line_and_unreadable_ones_are_not_shown():
    assert describe_error(_status_error(openai.RateLimitError, 429)).startswith("RateLimitError: ")
    pickled_by_an_older_version = "gASVAAAAAAAAAAB9lC4="
    assert pickled_by_an_older_version not in describe_error(pickled_by_an_older_version)
