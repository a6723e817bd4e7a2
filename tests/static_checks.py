"""Static checks of the installed package: import-linter's contracts, and mypy (strict).

``workflows/``, ``steps/`` and ``providers/`` are installed as ``timestep.workflows``,
``timestep.steps`` and ``timestep.providers`` (``package-dir`` in ``pyproject.toml``), a
mapping that static tools cannot see in the source tree. So this builds the installed layout
from copies of the source files in a temporary folder (tools resolve symbolic links back to
the source tree), runs each tool on it, and prints the paths as they are in the source tree::

    python tests/static_checks.py               # both
    python tests/static_checks.py lint-imports  # or: mypy

``tests/test_architecture.py`` runs it, so the README's test command enforces both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ("lint-imports", "mypy")


def package_dirs() -> dict[str, Path]:
    """Installed package name -> its source folder, as ``pyproject.toml`` maps them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


@contextmanager
def installed_layout() -> Iterator[Path]:
    """A temporary folder holding the package as installed (copies of the source files)."""
    with tempfile.TemporaryDirectory(prefix="timestep-layout-") as folder:
        top = Path(folder)
        for name, source in package_dirs().items():
            target = top.joinpath(*name.split("."))
            for path in source.rglob("*"):
                if "__pycache__" in path.parts or not path.is_file():
                    continue
                if path.suffix not in (".py", ".typed"):
                    continue
                copy = target / path.relative_to(source)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
        yield top


def _source_paths(text: str, top: Path) -> str:
    """Tool output with the layout's paths (absolute, or relative to it) turned back into
    the source tree's."""
    for name, source in sorted(package_dirs().items(), key=lambda item: -len(item[0])):
        relative = os.path.join(*name.split(".")) + os.sep
        in_source = str(source.relative_to(ROOT)) + os.sep
        text = text.replace(str(top / relative), in_source)
        text = re.sub(rf"(?m)^{re.escape(relative)}", in_source, text)
    return text


def run(check: str, *, alter: Callable[[Path], None] | None = None) -> tuple[int, str]:
    """Run one check; its exit code and output (paths in the source tree). ``alter`` may
    change the layout first (tests use it to prove a check catches what it should)."""
    with installed_layout() as top:
        if alter is not None:
            alter(top)
        env = {**os.environ, "PYTHONPATH": str(top), "MYPYPATH": str(top)}
        bin_dir = Path(sys.executable).parent
        config = str(ROOT / "pyproject.toml")
        if check == "lint-imports":
            command = [str(bin_dir / "lint-imports"), config, "--no-cache"]
        elif check == "mypy":
            command = [sys.executable, "-m", "mypy", "--config-file", config, "-p", "timestep"]
        else:
            raise ValueError(f"unknown check {check!r}: one of {', '.join(CHECKS)}")
        # Run from the layout: both tools also look for packages in their working directory,
        # where the source tree's timestep/ (without the mapped folders) would win.
        done = subprocess.run(
            command, cwd=top, env=env, capture_output=True, text=True, timeout=600
        )
        return done.returncode, _source_paths(done.stdout + done.stderr, top)


def main(argv: list[str]) -> int:
    failed = 0
    for check in argv or CHECKS:
        code, output = run(check)
        print(f"$ {check}\n{output}", flush=True)
        failed |= code
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
