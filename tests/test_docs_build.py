"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing page or
a failing mkdocstrings reference fails it), offline: no fonts, CDN or plugin downloads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict[str, object]:
    # mkdocs.yml uses `!!python/name:` tags (the mermaid fence), which safe_load refuses.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def test_site_needs_no_network() -> None:
    config = _config()
    theme = config["theme"]
    assert isinstance(theme, dict) and theme.get("font") is False, "Google Fonts at build time"
    plugins = [p if isinstance(p, str) else next(iter(p)) for p in config.get("plugins", [])]
    for networked in ("social", "privacy", "material/social", "material/privacy"):
        assert networked not in plugins, f"the {networked} plugin downloads at build time"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    site = tmp_path / "site"
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    import timestep

    missing = [name for name in timestep.__all__ if f'id="timestep.{name}"' not in reference]
    assert not missing, f"the API reference lacks {missing}"
    # The generated pages hold every route of the app and every command of the CLI.
    import html

    import typer

    from timestep.cli import app as cli_app
    from timestep.server import ServerSettings, create_app

    http = html.unescape((site / "http-api" / "index.html").read_text(encoding="utf-8"))
    spec = create_app(ServerSettings(api_token="t" * 32)).openapi()
    routes = [f"{m.upper()} {path}" for path, item in spec["paths"].items() for m in item]
    assert routes and not [r for r in routes if r not in http]
    cli = html.unescape((site / "cli" / "index.html").read_text(encoding="utf-8"))

    def commands(command: object, path: str) -> list[str]:
        found = [path]
        for name in getattr(command, "commands", {}):
            found += commands(command.commands[name], f"{path} {name}")  # type: ignore[attr-defined]
        return found

    names = commands(typer.main.get_command(cli_app), "timestep")
    assert len(names) > 20 and not [n for n in names if n not in cli]
