"""The namespaced extension that makes Python -> TypeScript -> Python (and back) exact.

Each SDK records things the other has no field for (Python's ``session_items``, context
metadata and hook flags; TypeScript's ``currentTurnSessionInputItems``, provider payloads of
model responses...). Rather than a hand-written list of such fields that silently rots when an
SDK adds one, the converter computes the *residual*: the difference between the source
document and what converting the target back would produce. The residual travels under
``$timestep`` together with a digest of the converted document; converting back applies it
only when the document is unchanged, because a state the other SDK has since advanced (and
re-saved without our key anyway) no longer lines up with the recorded paths.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

__all__ = ["apply_patch", "diff", "digest"]

Path = list[str | int]
Patch = list[list[Any]]
"""``[["set", path, value] | ["del", path] | ["order", path, keys] | ["permute", path,
indices], ...]``, applied in order."""


def digest(document: Any) -> str:
    """A stable digest of a JSON document, independent of key order."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def diff(produced: Any, wanted: Any, path: Path | None = None) -> Patch:
    """The operations turning ``produced`` into ``wanted`` (both JSON values)."""
    path = path or []
    if _same(produced, wanted):
        return []
    if isinstance(produced, dict) and isinstance(wanted, dict):
        ops: Patch = []
        for key, value in wanted.items():
            if key in produced:
                ops.extend(diff(produced[key], value, [*path, key]))
            else:
                ops.append(["set", [*path, key], copy.deepcopy(value)])
        ops.extend(["del", [*path, key]] for key in produced if key not in wanted)
        if list(wanted) != [k for k in produced if k in wanted] + [
            k for k in wanted if k not in produced
        ]:
            ops.append(["order", path, list(wanted)])
        return ops
    if isinstance(produced, list) and isinstance(wanted, list) and len(produced) == len(wanted):
        ops = []
        for index, (left, right) in enumerate(zip(produced, wanted, strict=True)):
            ops.extend(diff(left, right, [*path, index]))
        return ops
    return [["set", path, copy.deepcopy(wanted)]]


def apply_patch(document: Any, patch: Patch) -> Any:
    """Apply ``patch`` to ``document`` (in place where possible); return the result."""
    for op in patch:
        kind, path = op[0], op[1]
        if not path:
            if kind == "set":
                document = copy.deepcopy(op[2])
            elif kind == "order" and isinstance(document, dict):
                document = _reordered(document, op[2])
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if kind == "set":
            parent[last] = copy.deepcopy(op[2])
        elif kind == "del":
            del parent[last]
        elif kind == "order":
            parent[last] = _reordered(parent[last], op[2])
        elif kind == "permute" and sorted(op[2]) == list(range(len(parent[last]))):
            parent[last] = [parent[last][i] for i in op[2]]
    return document


def _reordered(mapping: dict[str, Any], order: list[str]) -> dict[str, Any]:
    ordered = {key: mapping[key] for key in order if key in mapping}
    ordered.update((key, value) for key, value in mapping.items() if key not in ordered)
    return ordered


def _same(left: Any, right: Any) -> bool:
    # bool is an int in Python; JSON true and 1 are different values.
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(
            _same(a, b) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)
