"""A run's stream entries (``timestep._core.sdk_forms``): a batch stands for its entries, in
order, wherever a reader looks (events, records, settling aborted attempts)."""

from __future__ import annotations

from agents import Agent

from timestep._client.streams import _records_of
from timestep._core.sdk_forms import decode_entry, flat, settled

DELTA = {
    "type": "response.output_text.delta",
    "item_id": "msg_1",
    "output_index": 0,
    "content_index": 0,
    "delta": "Hi",
    "logprobs": [],
    "sequence_number": 3,
}


def _raw(n: int) -> dict:
    return {"t": "raw", "data": {**DELTA, "delta": f"w{n}", "sequence_number": n}}


def test_a_batch_decodes_as_its_entries_in_order():
    agents = {"a": Agent(name="a")}
    entries = [{"t": "begin", "host": 3}, _raw(1), {"t": "agent", "agent": "a"}, _raw(2)]
    batch = {"t": "batch", "entries": entries}
    assert flat(batch) == entries and flat(_raw(1)) == [_raw(1)]
    one_by_one = [e for entry in entries for e in decode_entry(entry, agents)]
    assert [type(e).__name__ for e in decode_entry(batch, agents)] == [
        "RawResponsesStreamEvent",
        "AgentUpdatedStreamEvent",
        "RawResponsesStreamEvent",
    ]
    assert [repr(e) for e in decode_entry(batch, agents)] == [repr(e) for e in one_by_one]
    assert _records_of(batch) == [r for entry in entries for r in _records_of(entry)]


def test_an_attempt_begun_in_a_batch_is_dropped_when_its_step_begins_again():
    # A step whose first write (begin, its first events) was a batch crashed before its
    # checkpoint; its next attempt began again: the first attempt's entries go.
    first = {"t": "batch", "entries": [{"t": "begin", "host": 5}, _raw(1)]}
    again = {"t": "batch", "entries": [{"t": "begin", "host": 5}, _raw(1)]}
    later = _raw(2)
    kept = settled(enumerate([first, _raw(9), again, later]))
    assert kept == [(2, {"t": "begin", "host": 5}), (2, _raw(1)), (3, later)]
