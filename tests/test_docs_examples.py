"""Every example in the documentation runs: each ```python block of README.md and docs/*.md in
a fresh process, offline, and every ```typescript block through the compiler.

How a Python block runs:

- in a process of its own, forked from one that has only imported the libraries;

- in an empty temporary directory with embedded SQLite there (``TIMESTEP_DATA_DIR``; no
  Postgres from the environment, no probe of localhost:5432);
- against real HTTP fakes from ``timestep.testing``: ``OPENAI_BASE_URL`` and ``OLLAMA_BASE_URL``
  point at a ``FakeModelServer``, ``FIRECRAWL_API_URL`` at a ``FakeFirecrawlServer``, with
  placeholder keys, so the example's own code (``Agent(model="gpt-4.1")``...) is what runs;
- as a script, or, when it uses top-level ``await`` (as in ``python -m asyncio`` or a
  notebook), inside ``asyncio.run``.

Markers, an HTML comment on the line right before a block, or right before a group of content
tabs (``=== "Python"``) for its first block (invisible on the site):

- ``<!-- docs: no-run (why) -->``: not run (needs a real key, a server that runs forever...);
  counted as skipped.
- ``<!-- docs: model [function_call("get_weather", {"city": "Lisbon"}), text("Sunny.")] -->``:
  what the fake model answers, by position in the conversation (``conversation_script``);
  the default is one text answer. ``model-in-order [...]``: the turns in the order requests
  arrive, whatever the conversation (for examples that start new conversations).

``python tests/test_docs_examples.py`` prints what is collected, run and skipped.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from timestep import testing as ts_testing
from timestep.testing import FakeFirecrawlServer, FakeModelServer, conversation_script

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# A block that needs more is a sign the example is too big for a page.
BLOCK_TIMEOUT = 120

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*docs:\s*(?P<kind>[\w-]+)\s*(?P<arg>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    """1-based line of the opening fence."""
    lang: str
    code: str
    marker: str | None = None
    marker_arg: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def skipped(self) -> bool:
        return self.marker == "no-run"


def parse_blocks(path: Path) -> list[Block]:
    """Fenced code blocks, also inside content tabs and admonitions (indented fences)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].startswith(indent)
            and lines[j].strip().startswith(fence)
            and lines[j].strip().strip(fence[0]) == ""
        ):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        marker = previous = None
        k = i - 1
        # A marker may stand before a group of content tabs: it applies to the first block.
        while k >= 0 and (not lines[k].strip() or lines[k].lstrip().startswith("=== ")):
            k -= 1
        if k >= 0:
            previous = _MARKER.match(lines[k])
        if previous:
            marker = previous
        blocks.append(
            Block(
                path=path,
                line=i + 1,
                lang=opening["lang"].lower(),
                code="\n".join(body) + "\n",
                marker=marker["kind"] if marker else None,
                marker_arg=marker["arg"] if marker else "",
            )
        )
        i = j + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in DOC_FILES for block in parse_blocks(path)]


PYTHON_BLOCKS = [b for b in all_blocks() if b.lang in ("python", "py")]
TYPESCRIPT_BLOCKS = [b for b in all_blocks() if b.lang in ("typescript", "ts")]

# A fork server: one process pays for the slow imports (about 5 s on a busy 2-core machine)
# once, then forks a fresh child per block; the child gets the block's environment and
# directory before any Timestep, DBOS or SDK setting is read (importing them reads none and
# starts no thread), and exits normally, so atexit handlers (DBOS's shutdown) run as in a
# script of its own.
_SERVER = r"""
import json, os, sys
import agents, dbos, openai, timestep, timestep.testing
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        sys.path.insert(0, job["cwd"])
        output = os.open(job["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(output, 1)
        os.dup2(output, 2)
        sys.stdin = open(os.devnull)
        break
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
else:
    sys.exit(0)

# The child: the block as __main__, or with top-level await inside asyncio.run.
import ast, asyncio
path = job["script"]
sys.argv = [path]
source = open(path, encoding="utf-8").read()
namespace = {"__name__": "__main__", "__file__": path}
try:
    code = compile(source, path, "exec")
except SyntaxError:
    code = compile(source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    asyncio.run(eval(code, namespace))
else:
    exec(code, namespace)
"""

# Variables of the caller's environment that would point an example at real services.
_SCRUBBED_PREFIXES = ("TIMESTEP_", "DBOS_", "OPENAI_", "OLLAMA_", "FIRECRAWL_", "PG_")


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    # The SDK would export traces to api.openai.com at exit (read at import, so set here).
    env["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
    return env


class BlockRunner:
    def __init__(self) -> None:
        self._server = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_base_env(),
            bufsize=0,  # unbuffered, so select() sees every line the server writes
        )

    def run(self, script: Path, env: dict[str, str], output: Path) -> int:
        assert self._server.stdin is not None and self._server.stdout is not None
        job = {"script": str(script), "cwd": str(script.parent), "env": env, "output": str(output)}
        self._server.stdin.write(json.dumps(job).encode() + b"\n")
        self._server.stdin.flush()
        pid = json.loads(self._server.stdout.readline())["pid"]
        ready, _, _ = select.select([self._server.stdout], [], [], BLOCK_TIMEOUT)
        if not ready:
            os.kill(pid, signal.SIGKILL)  # the block's own child; the server then reports it
            self._server.stdout.readline()
            raise AssertionError(f"the example did not finish within {BLOCK_TIMEOUT} s")
        return int(json.loads(self._server.stdout.readline())["code"])

    def close(self) -> None:
        assert self._server.stdin is not None
        self._server.stdin.close()
        self._server.wait(timeout=30)


@pytest.fixture(scope="session")
def block_runner() -> Iterator[BlockRunner]:
    runner = BlockRunner()
    yield runner
    runner.close()


_DEFAULT_TURN = ts_testing.text("Hello from the offline fake model.")


def _fake_model(block: Block) -> FakeModelServer:
    if block.marker not in ("model", "model-in-order"):
        return FakeModelServer(responder=conversation_script([_DEFAULT_TURN]))
    names = {name: getattr(ts_testing, name) for name in ts_testing.__all__}
    turns = eval(block.marker_arg, names)  # the page's own script of turns
    if block.marker == "model":
        return FakeModelServer(responder=conversation_script(turns))
    fake = FakeModelServer()
    fake.add_turns(*turns)
    fake.set_default(_DEFAULT_TURN)
    return fake


@pytest.mark.parametrize("block", [b for b in PYTHON_BLOCKS if not b.skipped], ids=lambda b: b.id)
def test_python_example_runs(block: Block, tmp_path: Path, block_runner: BlockRunner) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code, encoding="utf-8")
    output = tmp_path / "output.txt"
    with (
        _fake_model(block) as fake,
        FakeFirecrawlServer(api_key="fc-docs-example") as firecrawl,
    ):
        env = _base_env()
        env.update(
            OPENAI_API_KEY="sk-docs-example",
            OPENAI_BASE_URL=fake.base_url,
            OLLAMA_BASE_URL=fake.root_url,
            OLLAMA_API_KEY="ollama-docs-example",
            TIMESTEP_OLLAMA_CLOUD_URL=fake.root_url,
            FIRECRAWL_API_KEY="fc-docs-example",
            FIRECRAWL_API_URL=firecrawl.base_url,
            TIMESTEP_DATA_DIR=str(tmp_path / ".timestep"),
            TIMESTEP_PROBE_LOCAL_POSTGRES="false",
            TIMESTEP_DBOS_LOG_LEVEL="WARNING",
        )
        code = block_runner.run(script, env, output)
    assert code == 0, f"{block.id} failed (exit {code}):\n{output.read_text()}"


def test_typescript_examples_compile() -> None:
    """Every TypeScript block type-checks against the package's sources and @openai/agents."""
    package = ROOT / "typescript"
    tsc = package / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("typescript/node_modules is missing: npm ci --prefix typescript")
    assert TYPESCRIPT_BLOCKS, "no TypeScript blocks found"
    # Inside typescript/ so that `@openai/agents` resolves from its node_modules.
    work = Path(tempfile.mkdtemp(prefix=".docs-examples-", dir=package))
    try:
        names = []
        for number, block in enumerate(TYPESCRIPT_BLOCKS):
            name = f"block{number}.mts"
            # `export {}` makes each block a module of its own (no shared globals).
            (work / name).write_text(f"{block.code}\nexport {{}};\n", encoding="utf-8")
            names.append((name, block))
        (work / "tsconfig.json").write_text(
            """{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
    "lib": ["ES2022"], "types": ["node"], "strict": true, "noEmit": true,
    "skipLibCheck": true, "esModuleInterop": true,
    "paths": {"@timestep-ai/timestep": ["../src/index.ts"]}
  },
  "include": ["*.mts"]
}
""",
            encoding="utf-8",
        )
        completed = subprocess.run(
            [str(tsc), "-p", str(work / "tsconfig.json")],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
        )
        report = completed.stdout + completed.stderr
        for name, block in names:
            report = report.replace(name, f"{name} ({block.id})")
        assert completed.returncode == 0, report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_examples_are_collected() -> None:
    """The collector finds the pages' blocks (a parser bug would silently test nothing)."""
    ran = [b for b in PYTHON_BLOCKS if not b.skipped]
    skipped = [b for b in PYTHON_BLOCKS if b.skipped]
    print(summary())
    assert len(ran) >= 30, summary()
    assert len(TYPESCRIPT_BLOCKS) >= 8, summary()
    for block in skipped:
        assert block.marker_arg.startswith("("), f"{block.id}: say why it does not run"
    known = (None, "no-run", "model", "model-in-order")
    unknown = [b.id for b in all_blocks() if b.marker not in known]
    assert not unknown, f"unknown docs markers at {unknown}"


def summary() -> str:
    ran = sum(1 for b in PYTHON_BLOCKS if not b.skipped)
    skipped = sum(1 for b in PYTHON_BLOCKS if b.skipped)
    return (
        f"docs examples: {len(PYTHON_BLOCKS)} Python blocks collected, {ran} run, "
        f"{skipped} skipped (no-run); {len(TYPESCRIPT_BLOCKS)} TypeScript blocks compiled"
    )


if __name__ == "__main__":
    for block in PYTHON_BLOCKS + TYPESCRIPT_BLOCKS:
        state = "skip" if block.skipped else "run"
        print(f"{state:4} {block.lang:10} {block.id} {block.marker_arg if block.skipped else ''}")
    print(summary())
