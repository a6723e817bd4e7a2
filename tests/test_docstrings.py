"""No public name without a docstring, in the Google style the API reference renders.

The public names are those of ``timestep.__all__``, ``timestep.testing.__all__`` and
``timestep.runstate.__all__``, and the public methods and properties their classes define.
Every one has a docstring whose first line is a summary; every public callable documents each
parameter under ``Args:``, its result under ``Returns:`` (``Yields:`` for a generator) unless
it returns None, and under ``Raises:`` each Timestep error its own body raises. A dataclass
describes each field, under ``Attributes:`` or in a docstring below the field. Sections are
parsed with griffe, the parser mkdocstrings uses (openai-agents already depends on it), so
what passes here is what the reference shows.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import griffe
import pytest
from agents import FunctionTool

import timestep.errors
from timestep.errors import RunNotFoundError

MODULES = ("timestep", "timestep.testing", "timestep.runstate")
TIMESTEP_ERRORS = {
    name
    for name, value in vars(timestep.errors).items()
    if inspect.isclass(value) and issubclass(value, timestep.errors.TimestepError)
}


def public_names() -> Iterator[tuple[str, str, Any]]:
    """(module, name, object) for every name in the modules' ``__all__``."""
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


def own_members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties ``cls`` itself defines (not inherited ones)."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            yield name, value.__func__
        elif isinstance(value, property) or inspect.isfunction(value):
            yield name, value


def class_doc(cls: type) -> str:
    """The class's own docstring: not a base class's, nor the one ``dataclass`` makes up."""
    doc = vars(cls).get("__doc__") or ""
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return ""
    return inspect.cleandoc(doc)


@functools.cache
def source_package() -> griffe.Module:
    """``timestep`` as griffe reads it from the source, the way mkdocstrings does. It holds
    ``timestep/`` only: ``providers/``, ``steps/`` and ``workflows/`` are mapped into the
    package at install time, and define no constants or dataclasses of the public names."""
    package = griffe.load("timestep", resolve_aliases=False)
    assert isinstance(package, griffe.Module)
    return package


def attribute_doc(dotted: str) -> str:
    """The docstring under an assignment (a constant, a type alias, a dataclass field), which
    only the source holds."""
    try:
        found = source_package()[dotted.removeprefix("timestep.")]
        docstring = found.docstring
    except (KeyError, griffe.AliasResolutionError):
        return ""
    return docstring.value if docstring is not None else ""


def sections(doc: str) -> dict[str, list[griffe.DocstringSection]]:
    parsed = griffe.Docstring(doc).parse(griffe.Parser.google, warnings=False)
    found: dict[str, list[griffe.DocstringSection]] = {}
    for section in parsed:
        found.setdefault(section.kind.value, []).append(section)
    return found


def documented_names(doc: str, kind: str) -> set[str]:
    """The names a section (``parameters``, ``attributes``, ``raises``) documents, each with a
    description."""
    names = set()
    for section in sections(doc).get(kind, []):
        for item in section.value:
            name = item.annotation if kind == "raises" else item.name
            if item.description.strip():
                names.add(str(name).lstrip("*"))
    return names


def parameters(function: Callable[..., Any]) -> list[str]:
    signature = inspect.signature(function)
    return [name for name in signature.parameters if name not in ("self", "cls")]


def returns_something(function: Callable[..., Any]) -> bool:
    annotation = inspect.signature(function).return_annotation
    return annotation not in (None, "None", inspect.Signature.empty)


def errors_raised(function: Callable[..., Any]) -> set[str]:
    """The Timestep errors a ``raise`` in the function's own body names (not in nested
    functions: those raise when called, not when this is)."""
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(function)))
    except (OSError, TypeError):
        return set()
    tree = ast.parse(source).body[0]
    found = set()
    pending = list(ast.iter_child_nodes(tree))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = raised.id if isinstance(raised, ast.Name) else getattr(raised, "attr", "")
            if name in TIMESTEP_ERRORS:
                found.add(name)
        pending.extend(ast.iter_child_nodes(node))
    return found


def callable_problems(label: str, function: Callable[..., Any], doc: str) -> list[str]:
    """What ``doc`` leaves out about ``function``'s parameters, result and errors."""
    problems = []
    undocumented = [
        name for name in parameters(function) if name not in documented_names(doc, "parameters")
    ]
    if undocumented:
        problems.append(f"{label}: Args: does not describe {', '.join(undocumented)}")
    if returns_something(function):
        # A context manager's generator is under ``__wrapped__``: it yields, too.
        unwrapped = inspect.unwrap(function)
        generator = inspect.isgeneratorfunction(unwrapped) or inspect.isasyncgenfunction(unwrapped)
        kind = "yields" if generator else "returns"
        described = [item for s in sections(doc).get(kind, []) for item in s.value]
        if not any(item.description.strip() for item in described):
            problems.append(f"{label}: no {kind.capitalize()}: section")
    unlisted = errors_raised(function) - documented_names(doc, "raises")
    if unlisted:
        problems.append(f"{label}: Raises: does not list {', '.join(sorted(unlisted))}")
    return problems


def summary_problems(label: str, doc: str) -> list[str]:
    if not doc.strip():
        return [f"{label}: no docstring"]
    if not doc.strip().splitlines()[0].strip():
        return [f"{label}: the docstring does not start with a summary line"]
    return []


def class_problems(label: str, cls: type) -> list[str]:
    doc = class_doc(cls)
    problems = summary_problems(label, doc)
    if dataclasses.is_dataclass(cls):
        fields = [field.name for field in dataclasses.fields(cls)]
        listed = documented_names(doc, "attributes")
        path = f"{cls.__module__}.{cls.__qualname__}"
        missing = [
            name
            for name in fields
            if name not in listed and not attribute_doc(f"{path}.{name}").strip()
        ]
        if missing:
            problems.append(
                f"{label}: neither Attributes: nor a field docstring describes {', '.join(missing)}"
            )
    elif "__init__" in vars(cls) and not issubclass(cls, BaseException):
        # The constructor's parameters, in the class docstring or in ``__init__``'s own.
        init_doc = doc + "\n\n" + inspect.cleandoc(cls.__init__.__doc__ or "")
        problems += callable_problems(f"{label}()", cls.__init__, init_doc)
    for name, member in own_members(cls):
        member_label = f"{label}.{name}"
        if isinstance(member, property):
            problems += summary_problems(member_label, inspect.cleandoc(member.__doc__ or ""))
            continue
        member_doc = inspect.cleandoc(member.__doc__ or "")
        problems += summary_problems(member_label, member_doc) or callable_problems(
            member_label, member, member_doc
        )
    return problems


def tool_problems(label: str, tool: FunctionTool) -> list[str]:
    """A function tool's docstring is what the model reads: its description and the
    description of each parameter in its JSON schema."""
    problems = [] if tool.description.strip() else [f"{label}: the tool has no description"]
    for name, schema in tool.params_json_schema.get("properties", {}).items():
        if not str(schema.get("description", "")).strip():
            problems.append(f"{label}: the tool's parameter {name} has no description")
    return problems


def problems_of(module_name: str, name: str, value: Any) -> list[str]:
    label = f"{module_name}.{name}"
    if inspect.isclass(value):
        return class_problems(label, value)
    if isinstance(value, FunctionTool):
        return tool_problems(label, value)
    if inspect.isroutine(value):
        doc = inspect.cleandoc(value.__doc__ or "")
        return summary_problems(label, doc) or callable_problems(label, value, doc)
    return summary_problems(label, attribute_doc(f"{module_name}.{name}"))


PUBLIC = list(public_names())


@pytest.mark.parametrize(
    ("module_name", "name", "value"), PUBLIC, ids=[f"{m}.{n}" for m, n, _ in PUBLIC]
)
def test_public_name_is_documented(module_name: str, name: str, value: Any) -> None:
    problems = problems_of(module_name, name, value)
    assert not problems, "\n".join(problems)


def test_the_check_catches_what_is_missing() -> None:
    """The check itself works: it names a missing docstring, parameter, result, error and
    dataclass field."""

    def bare(flag: bool) -> int:
        return int(flag)

    def partly(flag: bool, count: int) -> int:
        """Count something.

        Args:
            flag: Whether to.
        """
        if flag:
            raise timestep.errors.RunNotFoundError("x")
        return count

    def complete(flag: bool) -> None:
        """Do something.

        Args:
            flag: Whether to.

        Raises:
            RunNotFoundError: Always.
        """
        raise RunNotFoundError("x")

    assert summary_problems("bare", inspect.cleandoc(bare.__doc__ or "")) == ["bare: no docstring"]
    assert callable_problems("partly", partly, inspect.cleandoc(partly.__doc__ or "")) == [
        "partly: Args: does not describe count",
        "partly: no Returns: section",
        "partly: Raises: does not list RunNotFoundError",
    ]
    assert callable_problems("complete", complete, inspect.cleandoc(complete.__doc__ or "")) == []

    @dataclasses.dataclass
    class Point:
        """A point.

        Attributes:
            x: Across.
        """

        x: int
        y: int

    assert class_problems("Point", Point) == [
        "Point: neither Attributes: nor a field docstring describes y"
    ]


def test_the_walk_reaches_the_public_surface() -> None:
    """The walk reaches the whole public surface (a guard against a walk that finds nothing)."""
    callables = [value for _, _, value in PUBLIC if inspect.isroutine(value)]
    classes = [value for _, _, value in PUBLIC if inspect.isclass(value)]
    methods = [member for cls in classes for _, member in own_members(cls)]
    assert len(PUBLIC) >= 100 and len(callables) >= 40 and len(methods) >= 60
