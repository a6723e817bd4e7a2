"""What the ``$timestep`` extension may carry: the named fields one SDK has and the other lacks.

The extension's residual (``_extension.diff``) restores a document exactly after a round trip.
Unbounded, it would restore anything, including what a wrong conversion lost, and the
round-trip tests could never fail. So a residual operation is kept only when it touches one of
the fields below (or only reorders keys, which loses and invents nothing); everything both
SDKs model must survive the conversion itself. The list is applied when the residual is made
and again when it is applied, so a document cannot smuggle other changes in either.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ._versions import StateFormat

__all__ = ["ORDERLESS", "PYTHON_ONLY", "TYPESCRIPT_ONLY", "Carried", "align", "carried"]

Patch = list[list[Any]]

ANY = "*"
"""One step: any list index or any mapping key."""
ANYWHERE = "**"
"""Any number of steps (only at the start of a path)."""


@dataclass(frozen=True)
class Carried:
    """A field of one SDK's document that the other SDK has no place for."""

    path: tuple[str, ...]
    why: str
    when: Callable[[Any], bool] | None = None
    """For ``set`` operations: only values this accepts (None: any)."""


def _not_an_object(value: Any) -> bool:
    return not isinstance(value, dict)


def _final_output_step(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "next_step_final_output"


_PY_ITEM_LISTS: tuple[tuple[str, ...], ...] = (
    ("generated_items", ANY),
    ("session_items", ANY),
    ("last_processed_response", "new_items", ANY),
    ("last_processed_response", "interruptions", ANY),
    ("current_step", "data", "interruptions", ANY),
)

PYTHON_ONLY: tuple[Carried, ...] = (
    Carried(("session_items",), "the session's copy of the items; TypeScript keeps none"),
    Carried(("generated_session_item_indexes",), "indexes into session_items"),
    Carried(("context", "context_meta"), "how Python serialized the user context"),
    Carried(
        ("context", "context"),
        "a user context that is not an object (TypeScript requires one)",
        _not_an_object,
    ),
    Carried(
        ("context", "function_tool_approvals", ANY, "decision", "sticky_scope"),
        "the call scope an always/never decision is bound to; TypeScript records none (the "
        "converter infers it from the pending call, which a Python document may not have done)",
    ),
    Carried(
        ("context", "tool_invocations"),
        "Python's ledger of calls (TypeScript keeps its own, recomputed from the calls)",
    ),
    *(Carried((*items, "description"), "a Python-only run item field") for items in _PY_ITEM_LISTS),
    *(Carried((*items, "tool_origin"), "a Python-only run item field") for items in _PY_ITEM_LISTS),
)
"""Fields of a Python (openai-agents) RunState that TypeScript's has no place for."""

_USAGES: tuple[tuple[str, ...], ...] = (
    ("context", "usage"),
    ("modelResponses", ANY, "usage"),
    ("lastModelResponse", "usage"),
)

TYPESCRIPT_ONLY: tuple[Carried, ...] = (
    Carried(
        (ANYWHERE, "providerData"),
        "the JS protocol's provider payloads (Python merges them into its items, minus the "
        "keys the items already have)",
    ),
    *(
        Carried((*usage, "requestUsageEntries", ANY, "endpoint"), "the endpoint of a request")
        for usage in _USAGES
    ),
    Carried(
        ("context", "usage", "inputTokensDetails"),
        "per-request token details (Python keeps their sum)",
    ),
    Carried(
        ("context", "usage", "outputTokensDetails"),
        "per-request token details (Python keeps their sum)",
    ),
    *(
        Carried(("lastProcessedResponse", "functions", ANY, "tool", field), "a JS tool option")
        for field in ("strict", "deferLoading", "timeoutBehavior", "inputGuardrails")
    ),
    Carried(
        ("lastProcessedResponse", "functions", ANY, "tool", "outputGuardrails"),
        "a JS tool option",
    ),
    Carried(("currentTurnSessionInputItems",), "the JS session's input of the current turn"),
    Carried(
        ("currentStep",),
        "a finished run's final output step (Python records no step once a run ended)",
        _final_output_step,
    ),
    Carried(("noActiveAgentRun",), "the JS runner's own flag"),
    Carried(
        ("completedToolInvocationEvidence",),
        "the JS ledger's evidence (recomputed from the calls; Python keeps its own ledger)",
    ),
)
"""Fields of a TypeScript (@openai/agents) RunState that Python's has no place for."""


def _approval_key(record: Any) -> str:
    if not isinstance(record, dict):
        return json.dumps(record, sort_keys=True)
    return json.dumps([record.get("agent"), record.get("tool_key")], sort_keys=True)


ORDERLESS: Mapping[StateFormat, Mapping[tuple[str, ...], Callable[[Any], str]]] = MappingProxyType(
    {
        # One record per (agent, tool): a mapping in the SDK, kept as a list. TypeScript
        # groups the records by agent, so their interleaving across agents has no place there.
        "python": MappingProxyType({("context", "function_tool_approvals"): _approval_key}),
        "typescript": MappingProxyType({}),
    }
)
"""Lists whose order means nothing to their SDK, and the key that identifies an element."""


def align(produced: Any, wanted: Any, fmt: StateFormat) -> Patch:
    """Reorder the orderless lists of ``produced`` (in place) as ``wanted`` has them; return
    the ``permute`` operations that do the same to a copy of ``produced``."""
    ops: Patch = []
    for path, key in ORDERLESS[fmt].items():
        have, want = _get(produced, path), _get(wanted, path)
        if not isinstance(have, list) or not isinstance(want, list) or len(have) != len(want):
            continue
        have_keys, want_keys = [key(x) for x in have], [key(x) for x in want]
        if have_keys == want_keys or len(set(have_keys)) != len(have_keys):
            continue
        if sorted(have_keys) != sorted(want_keys):
            continue
        indices = [have_keys.index(k) for k in want_keys]
        parent = _get(produced, path[:-1])
        parent[path[-1]] = [have[i] for i in indices]
        ops.append(["permute", list(path), indices])
    return ops


def _get(document: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if not isinstance(document, dict):
            return None
        document = document.get(step)
    return document


def carried(patch: Any, fmt: StateFormat) -> Patch:
    """The operations of ``patch`` (restoring a ``fmt`` document) the extension may carry."""
    if not isinstance(patch, list):
        return []
    fields = PYTHON_ONLY if fmt == "python" else TYPESCRIPT_ONLY
    return [op for op in patch if _allowed(op, fields, ORDERLESS[fmt])]


def _allowed(
    op: Any, fields: tuple[Carried, ...], orderless: Mapping[tuple[str, ...], Any]
) -> bool:
    if not isinstance(op, list) or len(op) < 2 or not isinstance(op[1], list):
        return False
    kind, path = op[0], op[1]
    if kind == "permute":  # reorders an orderless list, drops and repeats none
        indices = op[2] if len(op) == 3 else None
        return (
            tuple(path) in orderless
            and isinstance(indices, list)
            and all(isinstance(i, int) and not isinstance(i, bool) for i in indices)
            and sorted(indices) == list(range(len(indices)))
        )
    if kind == "order":
        return len(op) == 3 and isinstance(op[2], list)  # reorders keys, drops none
    if kind not in ("set", "del") or (kind == "set" and len(op) != 3):
        return False
    for field in fields:
        if not _matches(field.path, path):
            continue
        if field.when is None or (kind == "set" and _is_field_itself(field, path, op[2])):
            return True
    return False


def _is_field_itself(field: Carried, path: list[Any], value: Any) -> bool:
    """A conditional field accepts a ``set`` of the whole field whose value qualifies."""
    assert field.when is not None
    return len(path) == len(field.path) and field.when(value)


def _matches(pattern: tuple[str, ...], path: list[Any]) -> bool:
    """Whether ``path`` is inside the field ``pattern`` names (the field or below it)."""
    if pattern and pattern[0] == ANYWHERE:
        rest = pattern[1:]
        return any(_matches(rest, path[start:]) for start in range(len(path)))
    if len(path) < len(pattern):
        return False
    return all(
        (want == ANY or step == want) and not isinstance(step, bool)
        for want, step in zip(pattern, path, strict=False)
    )
