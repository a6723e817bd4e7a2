"""What a python-format RunState row stores: its payload without secrets, and its TypeScript
form, which Timestep's Node package (``typescript/``) reads since it has no converter of its own.

Shared by ``RunStateStore.save`` and the snapshots a run saves while it waits for approvals,
so every row follows the same rules.
"""

from __future__ import annotations

import logging

from timestep.runstate import to_typescript

from .secrets import redact

__all__ = ["stored_forms"]

logger = logging.getLogger("timestep")


def stored_forms(state_json: str) -> tuple[str, str | None]:
    """The payload to store and its TypeScript form (``None`` if it does not convert)."""
    payload = redact(state_json)
    return payload, _typescript_form(payload)


def _typescript_form(payload: str) -> str | None:
    # A failed conversion never fails the save: the row is still loadable from Python, and
    # the Node package reports that it has no TypeScript form.
    try:
        return redact(to_typescript(payload))
    except Exception as exc:
        logger.warning(
            "RunState saved without its TypeScript form (%s: %s)", type(exc).__name__, exc
        )
        return None
