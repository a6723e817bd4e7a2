"""How the values a run is given travel with it, so a fresh process can rebuild them.

In the process that starts a run the caller's own objects are used as given. A recovery in
another process has only the workflow's recorded argument, so each value is recorded in a
portable form when the run starts:

- a value pydantic can serialize (a pydantic model, a dataclass, a TypedDict, a dict, plain
  JSON) is stored as JSON with its type's ``module:Qualname``, and rebuilt as that type;
- a value of a type registered with ``timestep.register_type`` is stored by the type's
  ``dump`` (if any) and rebuilt by its ``load`` (a DB pool, a client: rebuilt, not stored);
- a function is stored as its ``module:qualname`` when that imports back to the same function;
- anything else is recorded as unrecoverable, with the reason, and a recovery that needs it
  fails with a ``RecoveryError`` that says what to register.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from timestep.errors import RecoveryError

from .registry import import_ref

__all__ = [
    "Portable",
    "TypeCodec",
    "TypeCodecs",
    "function_ref",
    "portable",
    "rebuild",
    "storable",
    "type_key",
]

Portable = dict[str, Any]
"""A recorded value: ``{"type", "value"}``, ``{"type", "rebuilt": true}``, ``{"function"}``,
``{"json"}`` or ``{"unrecoverable": why, "type"}``."""


@dataclass(frozen=True)
class TypeCodec:
    """How values of one type travel: ``dump`` to JSON (None: nothing is stored) and
    ``load`` back (from that JSON, or from nothing)."""

    dump: Callable[[Any], Any] | None
    load: Callable[..., Any]


class TypeCodecs:
    """The types registered with ``register_type``, by ``module:Qualname``."""

    def __init__(self) -> None:
        self._codecs: dict[str, TypeCodec] = {}

    def register(
        self,
        cls: type,
        *,
        dump: Callable[[Any], Any] | None = None,
        load: Callable[..., Any] | None = None,
    ) -> None:
        if not isinstance(cls, type):
            raise TypeError(f"register_type takes a class, got {type(cls).__name__}")
        self._codecs[type_key(cls)] = TypeCodec(dump=dump, load=load or cls)

    def get(self, key: str) -> TypeCodec | None:
        return self._codecs.get(key)


def type_key(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def function_ref(value: Any) -> str | None:
    """``module:qualname`` of a function that imports back to itself, else None."""
    if not (inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.ismethod(value)):
        return None
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", "")
    if not module or "<" in qualname or module.startswith("__"):
        return None
    ref = f"{module}:{qualname}"
    try:
        return ref if import_ref(ref) is value or import_ref(ref) == value else None
    except Exception:
        return None


def portable(value: Any, codecs: TypeCodecs) -> Portable | None:
    """``value``'s portable form (None stays None)."""
    if value is None:
        return None
    key = type_key(type(value))
    codec = codecs.get(key)
    if codec is not None:
        if codec.dump is None:
            return {"type": key, "rebuilt": True}
        return {"type": key, "value": codec.dump(value)}
    ref = function_ref(value)
    if ref is not None:
        return {"function": ref}
    if isinstance(value, str | int | float | bool | list | dict):
        try:
            return {"json": TypeAdapter(Any).dump_python(value, mode="json")}
        except Exception as exc:
            return {"unrecoverable": f"not JSON ({exc})", "type": key}
    if "<locals>" in type(value).__qualname__:
        return {"unrecoverable": "its class is defined inside a function", "type": key}
    try:
        dumped = TypeAdapter(type(value)).dump_python(value, mode="json")
    except Exception as exc:
        return {
            "unrecoverable": f"pydantic cannot serialize it ({type(exc).__name__})",
            "type": key,
        }
    return {"type": key, "value": dumped}


def storable(value: Any) -> Any:
    """``value`` as a run's recorded output may hold it: itself when DBOS can pickle it back,
    else its JSON form (pydantic's dump, else its text). A local class or an object holding a
    lock then works as under plain Runner: the caller in the run's process gets the live
    object, and a result rebuilt from the record gets the JSON form."""
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:
        try:
            return TypeAdapter(type(value)).dump_python(value, mode="json")
        except Exception:
            return str(value)
    return value


def rebuild(form: Portable | None, what: str, codecs: TypeCodecs) -> Any:
    """The value a ``portable`` form describes; ``RecoveryError`` names ``what`` when this
    process cannot rebuild it."""
    if form is None:
        return None
    if "json" in form:
        return form["json"]
    if "function" in form:
        try:
            return import_ref(form["function"])
        except Exception as exc:
            raise RecoveryError(
                what, f"cannot import {form['function']} ({type(exc).__name__}: {exc})"
            ) from exc
    key = str(form.get("type", "?"))
    if "unrecoverable" in form:
        raise RecoveryError(
            what,
            f"its value (a {key}) was not recorded: {form['unrecoverable']}. Register how to "
            f"rebuild it in the worker, before DBOS launches: "
            f"timestep.register_type({key.rpartition(':')[2]}, dump=..., load=...)",
        )
    codec = codecs.get(key)
    if codec is not None:
        return codec.load() if form.get("rebuilt") else codec.load(form.get("value"))
    if form.get("rebuilt"):
        raise RecoveryError(
            what,
            f"it is a {key}, which this process does not know how to rebuild: "
            f"register it with timestep.register_type({key.rpartition(':')[2]}, load=...) "
            "before DBOS launches",
        )
    try:
        cls = import_ref(key)
    except Exception as exc:
        raise RecoveryError(what, f"cannot import its type {key} ({exc})") from exc
    return TypeAdapter(cls).validate_python(form.get("value"))


def portable_fields(
    obj: Any, codecs: TypeCodecs, *, skip: frozenset[str] = frozenset()
) -> dict[str, Portable]:
    """The portable forms of a dataclass's fields that differ from their defaults."""
    forms: dict[str, Portable] = {}
    for field in dataclasses.fields(obj):
        if field.name in skip:
            continue
        value = getattr(obj, field.name)
        if field.default is not dataclasses.MISSING and value == field.default:
            continue
        if field.default_factory is not dataclasses.MISSING and _same(
            value, field.default_factory()
        ):
            continue
        form = portable(value, codecs)
        if form is not None:
            forms[field.name] = form
    return forms


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default)
    except Exception:
        return False


def rebuild_fields(forms: Mapping[str, Portable], what: str, codecs: TypeCodecs) -> dict[str, Any]:
    return {name: rebuild(form, f"{what}.{name}", codecs) for name, form in forms.items()}
