"""The architecture holds by test, not by review: layers, no cycles, types, public names, no
hidden process state, lint. See README "How it works" for the map of the layers."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import timestep
from tests import static_checks

ROOT = static_checks.ROOT

# The public API, as the README and the seeds' docs use it. Adding or removing a name is a
# change to this list, on purpose.
PUBLIC_NAMES = [
    "AgentDefinitionChangedError",
    "AgentNameConflictError",
    "AgentNotRegisteredError",
    "AgentRefNotAllowedError",
    "AgentRunHandle",
    "AgentRunResult",
    "ApprovalDecision",
    "ApprovalError",
    "ApprovalTimeoutError",
    "BudgetExceededError",
    "BudgetStatus",
    "ConfigurationError",
    "DatabaseNotInitializedError",
    "DatabaseUnreachableError",
    "DecisionConflictError",
    "GcReport",
    "InputTooLargeError",
    "MCPServerUnavailableError",
    "MalformedStateError",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "OllamaModelProvider",
    "ProviderLimit",
    "ProviderUnavailableError",
    "RecordedError",
    "RecoveryError",
    "RetentionPolicy",
    "RunInfo",
    "RunNotFoundError",
    "RunNotResumableError",
    "RunOptions",
    "RunStateStore",
    "ScheduleError",
    "ScheduleInfo",
    "Session",
    "StateAgentMismatchError",
    "StateError",
    "StateNotFoundError",
    "StateTooLargeError",
    "StoredState",
    "StreamingAgentRun",
    "TimestepError",
    "TimestepSerializer",
    "TimestepSession",
    "UnsupportedSchemaVersionError",
    "UsageSummary",
    "approve",
    "backfill_schedule",
    "collect_garbage",
    "configure_dbos",
    "cost_of",
    "decide",
    "declare_mcp_server",
    "declare_queue",
    "delete_schedule",
    "ensure_dbos_launched",
    "flush_records",
    "get_budgets",
    "get_pending_approvals",
    "get_run",
    "get_run_result",
    "get_schedule",
    "get_usage",
    "limit_provider",
    "list_pending_approvals",
    "list_schedules",
    "pause_schedule",
    "register_agent",
    "register_agent_factory",
    "register_type",
    "reject",
    "remove_budget",
    "resume_schedule",
    "run_agent",
    "run_agent_sync",
    "run_agent_workflow",
    "schedule_agent",
    "set_budget",
    "set_model_provider",
    "set_price",
    "set_tool_options",
    "start_agent_run",
    "stream_run_events",
    "tool_idempotency_key",
    "trigger_schedule",
    "web_search",
]


def _package_modules() -> list[Path]:
    return sorted(
        path
        for source in static_checks.package_dirs().values()
        for path in source.rglob("*.py")
        if "__pycache__" not in path.parts
    )


def test_the_facade_exports_exactly_the_public_names():
    assert timestep.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(timestep, name) is not None, name


@pytest.mark.parametrize(
    "package",
    [
        "timestep",
        "timestep.providers",
        "timestep.steps",
        "timestep.workflows",
        "timestep.runstate",
        "timestep.server",
        "timestep.testing",
    ],
)
def test_every_all_is_sorted_and_importable(package: str):
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names == sorted(names), f"{package}.__all__ is not sorted"
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"


def test_import_contracts_hold():
    code, output = static_checks.run("lint-imports")
    assert code == 0, output
    assert "0 broken" in output, output


def test_import_contracts_catch_an_upward_import():
    """The check itself works: a core module importing the client layer breaks the layers."""

    def import_the_client_from_the_core(top: Path) -> None:
        settings = top / "timestep" / "_core" / "settings.py"
        settings.write_text(settings.read_text() + "\nimport timestep._client.runs\n")

    code, output = static_checks.run("lint-imports", alter=import_the_client_from_the_core)
    assert code != 0
    assert "timestep._core.settings -> timestep._client.runs" in output, output


def test_types_are_strictly_clean():
    code, output = static_checks.run("mypy")
    assert code == 0, output


def test_ruff_is_clean():
    for command in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}"


_MUTABLE_FACTORIES = {
    "dict",
    "list",
    "set",
    "defaultdict",
    "OrderedDict",
    "deque",
    "WeakValueDictionary",
    "WeakKeyDictionary",
}


def _is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in _MUTABLE_FACTORIES
    return False


def test_no_module_keeps_mutable_state_but_the_process_state():
    """Registries, caches and declarations live on ``ProcessState`` (one owner, one reset):
    no module binds a mutable container at module level, or rebinds a global."""
    allowed = {ROOT / "timestep" / "_core" / "process.py"}
    found = []
    for path in _package_modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign):
                targets, value = [node.target], node.value
            else:
                continue
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if _is_mutable(value) and names != ["__all__"]:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {', '.join(names)}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Global) and path not in allowed:
                found.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} global {', '.join(node.names)}"
                )
    assert not found, "module-level mutable state:\n" + "\n".join(found)


def test_every_import_inside_a_function_says_why():
    """Imports go at the top; the few inside functions carry ``# noqa: PLC0415 (reason)``
    (ruff's PLC0415 finds any without the noqa)."""
    bare = []
    for path in _package_modules():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "noqa: PLC0415" in line and "(" not in line.split("noqa: PLC0415", 1)[1]:
                bare.append(f"{path.relative_to(ROOT)}:{number}")
    assert not bare, "imports inside functions without a reason: " + ", ".join(bare)
