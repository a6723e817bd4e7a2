"""MkDocs hook: the CLI and HTTP API pages are generated from the code at build time, and
mkdocstrings reads the package in its installed layout.

A page holds a marker line, ``<!-- generated: cli -->`` or ``<!-- generated: http-api -->``,
which is replaced by the typer app's commands (from the click command tree typer builds) or by
the FastAPI app's OpenAPI spec (``app.openapi()``: no server, no database, no network).
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import typer
from mkdocs.plugins import event_priority

from timestep.cli import app as cli_app
from timestep.server import ServerSettings, create_app

ROOT = Path(__file__).resolve().parents[2]

_METHODS = ("get", "post", "put", "patch", "delete")


class _NoMissingTypes(logging.Filter):
    """Types come from the signatures' annotations; griffe still asks for them in the docstring
    of ``web_search``, a tool object it can only inspect (its parameter is the tool's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No type or annotation for" not in record.getMessage()


def on_startup(**_: Any) -> None:
    for name in ("griffe", "mkdocs.plugins.griffe", "mkdocs.plugins.mkdocstrings_handlers"):
        logging.getLogger(name).addFilter(_NoMissingTypes())


@event_priority(100)  # before mkdocstrings' own on_config reads its handlers' options
def on_config(config: Any, **_: Any) -> Any:
    """Point mkdocstrings at the package as installed: ``workflows/``, ``steps/`` and
    ``providers/`` are ``timestep.*`` only through pyproject's package-dir, which griffe's
    search of the source tree cannot see (tests/static_checks.py does the same for mypy)."""
    handlers = config["plugins"]["mkdocstrings"].config["handlers"]
    handlers.setdefault("python", {})["paths"] = [str(_installed_layout())]
    return config


def _installed_layout() -> Path:
    top = Path(tempfile.mkdtemp(prefix="timestep-docs-layout-"))
    atexit.register(shutil.rmtree, top, ignore_errors=True)
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for name, folder in sorted(mapping["package-dir"].items()):
        source, target = ROOT / folder, top.joinpath(*name.split("."))
        for path in source.rglob("*.py"):
            if "__pycache__" not in path.parts:
                link = target / path.relative_to(source)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)
    return top


def on_page_markdown(markdown: str, **_: Any) -> str:
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_markdown())
    if "<!-- generated: http-api -->" in markdown:
        markdown = markdown.replace("<!-- generated: http-api -->", http_api_markdown())
    return markdown


# -- CLI ---------------------------------------------------------------------------------------


def cli_markdown() -> str:
    root = typer.main.get_command(cli_app)
    out: list[str] = []
    _command(root, ["timestep"], out)
    return "\n".join(out)


# Typer ships its own copy of click (typer._click): duck-typed here, not isinstance checks.
def _command(command: Any, path: list[str], out: list[str]) -> None:
    ctx = command.context_class(command, info_name=path[-1])
    name = " ".join(path)
    level = "#" * min(len(path) + 1, 4)
    out.append(f"{level} `{name}`\n")
    if command.help:
        out.append(_plain(command.help) + "\n")
    pieces = " ".join(
        ["[OPTIONS]"]
        + [
            (p.name or "").upper() + ("..." if p.nargs == -1 else "")
            for p in command.get_params(ctx)
            if p.param_type_name == "argument"
        ]
        + (["COMMAND [ARGS]..."] if hasattr(command, "list_commands") else [])
    )
    out.append(f"```text\n{name} {pieces}\n```\n")
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            kind, names = "argument", (param.name or "").upper()
        else:
            kind = "option"
            names = ", ".join(param.opts + param.secondary_opts)
        help_text = _plain(getattr(param, "help", None) or "")
        default = param.default
        shown = "" if default in (None, False, (), []) or callable(default) else f"`{default}`"
        rows.append(f"| `{names}` | {kind} | {help_text} | {shown} |")
    if rows:
        out.append("| Name | Kind | Help | Default |\n| --- | --- | --- | --- |")
        out.extend(rows)
        out.append("")
    if hasattr(command, "list_commands"):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                _command(sub, [*path, sub_name], out)


def _plain(text: str) -> str:
    # One line in a table cell; typer's rich markup would show as brackets.
    return " ".join(text.replace("|", "\\|").split())


# -- HTTP API ----------------------------------------------------------------------------------


def http_api_markdown() -> str:
    # A placeholder token: building the app needs one, the spec does not depend on it.
    app = create_app(ServerSettings(api_token="docs" * 8))
    spec = app.openapi()
    out = [
        f"Generated from the app's OpenAPI spec (`{spec['info']['title']}` "
        f"{spec['info']['version']}, OpenAPI {spec['openapi']}).\n"
    ]
    for path, item in spec["paths"].items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            out.append(f"### `{method.upper()} {path}`\n")
            if operation.get("summary"):
                out.append(f"**{operation['summary']}**\n")
            if operation.get("description"):
                out.append(operation["description"].strip() + "\n")
            params = operation.get("parameters", [])
            if params:
                out.append("| Parameter | In | Required | Type | Description |")
                out.append("| --- | --- | --- | --- | --- |")
                for p in params:
                    out.append(
                        f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                        f"{_type(p.get('schema', {}))} | {_plain(p.get('description', ''))} |"
                    )
                out.append("")
            body = operation.get("requestBody")
            if body:
                for media, content in body.get("content", {}).items():
                    out.append(f"Request body ({media}): {_type(content.get('schema', {}))}\n")
            responses = operation.get("responses", {})
            if responses:
                out.append("| Status | Meaning |\n| --- | --- |")
                for status, response in responses.items():
                    out.append(f"| {status} | {_plain(response.get('description', ''))} |")
                out.append("")
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out.append("## Schemas\n")
        for name, schema in schemas.items():
            out.append(f"### {name}\n")
            if schema.get("description"):
                out.append(_plain(schema["description"]) + "\n")
            props = schema.get("properties", {})
            if props:
                required = set(schema.get("required", []))
                out.append("| Field | Type | Required | Description |\n| --- | --- | --- | --- |")
                for field, prop in props.items():
                    out.append(
                        f"| `{field}` | {_type(prop)} | {'yes' if field in required else 'no'} "
                        f"| {_plain(prop.get('description', ''))} |"
                    )
                out.append("")
    return "\n".join(out)


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(s) for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    return f"`{kind}`" if kind else "any"
