"""Local tools that are not function tools (ShellTool, LocalShellTool, ApplyPatchTool) run as
steps ``tool:<name>``: the same agent through plain ``Runner`` and through Timestep gives the
same items and request bodies, and a replay of the run executes none of them again."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from agents.editor import ApplyPatchOperation, ApplyPatchResult
from agents.tool import (
    ApplyPatchTool,
    LocalShellCommandRequest,
    LocalShellTool,
    ShellCommandRequest,
    ShellTool,
)
from dbos import DBOS

import timestep
from tests.test_runner_parity import _outcome
from timestep.testing import FakeModelServer, RecordedRequest, Turn, output_items, text

pytestmark = pytest.mark.usefixtures("durable")

# The shell, the local shell and a patch at once (three categories the SDK runs concurrently,
# so their steps take ids reserved in the model's order), then the answer.
TURNS = [
    output_items(
        {
            "type": "shell_call",
            "id": "sh_1",
            "call_id": "call_shell",
            "action": {"commands": ["echo hi"]},
            "status": "completed",
        },
        {
            "type": "local_shell_call",
            "id": "lsh_1",
            "call_id": "call_local",
            "action": {"type": "exec", "command": ["ls"], "env": {}},
            "status": "completed",
        },
        {
            "type": "apply_patch_call",
            "id": "ap_1",
            "call_id": "call_patch",
            "operation": {"type": "create_file", "path": "notes.txt", "diff": "+hello"},
            "status": "completed",
        },
    ),
    text("ran the shell, listed, patched"),
]


def _by_outputs(request: RecordedRequest) -> Turn:
    items = request.json.get("input", []) if isinstance(request.json, dict) else []
    outputs = sum(1 for i in items if str(i.get("type", "")).endswith("_call_output"))
    return TURNS[min(outputs, 1)]


class Tools:
    """One agent's local tools, counting what they execute."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        outer = self

        class Editor:
            def create_file(self, operation: ApplyPatchOperation) -> ApplyPatchResult:
                outer.calls[f"create {operation.path}"] += 1
                return ApplyPatchResult(status="completed", output=f"created {operation.path}")

            def update_file(self, operation: ApplyPatchOperation) -> ApplyPatchResult:
                raise AssertionError("not scripted")

            def delete_file(self, operation: ApplyPatchOperation) -> ApplyPatchResult:
                raise AssertionError("not scripted")

        async def shell(request: ShellCommandRequest) -> str:
            self.calls["shell " + " ".join(request.data.action.commands)] += 1
            return "hi\n"

        def local_shell(request: LocalShellCommandRequest) -> str:  # a sync executor
            self.calls["local " + " ".join(request.data.action.command)] += 1
            return "notes.txt\n"

        self.agent = Agent(
            name="local-tools",
            instructions="Use your tools.",
            tools=[
                ShellTool(executor=shell),
                LocalShellTool(executor=local_shell),
                ApplyPatchTool(editor=Editor()),
            ],
        )


async def test_local_tools_run_like_runner_as_steps_never_repeated():
    outcomes: dict[str, Any] = {}
    tools = {side: Tools() for side in ("plain", "durable")}
    for side, run in (("plain", Runner.run), ("durable", timestep.run_agent)):
        with FakeModelServer(responder=_by_outputs) as fake:
            config = RunConfig(model_provider=fake.provider())
            result = await run(tools[side].agent, "go", run_config=config)
            outcomes[side] = _outcome(result, fake.requests)
            if side == "durable":
                durable, durable_config = result, config
    assert outcomes["durable"] == outcomes["plain"]
    assert durable.final_output == "ran the shell, listed, patched"
    expected = {"shell echo hi": 1, "local ls": 1, "create notes.txt": 1}
    assert tools["durable"].calls == tools["plain"].calls == expected

    steps = await DBOS.list_workflow_steps_async(durable.workflow_id)
    names = Counter(s["function_name"] for s in steps if s["function_name"].startswith("tool:"))
    assert names == {"tool:shell": 1, "tool:local_shell": 1, "tool:apply_patch": 1}
    # At the ids reserved right after the model step, in the model's order.
    ids = {s["function_name"]: s["function_id"] for s in steps}
    model_id = next(s["function_id"] for s in steps if s["function_name"].startswith("model:"))
    assert [ids["tool:shell"], ids["tool:local_shell"], ids["tool:apply_patch"]] == [
        model_id + 1,
        model_id + 2,
        model_id + 3,
    ]

    # The same workflow id again replays the run: no tool executes again.
    with FakeModelServer(responder=_by_outputs) as fake:
        again = await timestep.run_agent_workflow(
            tools["durable"].agent, "go", workflow_id=durable.workflow_id, run_config=durable_config
        )
        assert fake.requests == []
    assert again.final_output == durable.final_output
    assert tools["durable"].calls == expected
