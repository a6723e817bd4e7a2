"""Local tools that are not function tools (ShellTool, LocalShellTool, ApplyPatchTool) run as
steps ``tool:<name>``, a ComputerTool's actions as steps ``tool:<name>.<action>``: the same agent through plain ``Runner`` and through Timestep gives the
same items and request bodies, and a replay of the run executes none of them again."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from agents import Agent, ComputerTool, RunConfig, Runner
from agents.computer import AsyncComputer
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


class Screen(AsyncComputer):
    """An async computer (one instance shared by runs) counting the actions it carries out."""

    def __init__(self) -> None:
        self.actions: Counter[str] = Counter()

    @property
    def environment(self) -> Any:
        return "browser"

    @property
    def dimensions(self) -> tuple[int, int]:
        return (1024, 768)

    async def screenshot(self) -> str:
        self.actions["screenshot"] += 1
        return "cGl4ZWxz"

    async def click(self, x: int, y: int, button: Any) -> None:
        self.actions[f"click {x},{y}"] += 1

    async def double_click(self, x: int, y: int) -> None:
        raise AssertionError("not scripted")

    async def scroll(self, x: int, y: int, scroll_x: int, scroll_y: int) -> None:
        self.actions[f"scroll {scroll_y}"] += 1

    async def type(self, text: str) -> None:
        self.actions[f"type {text}"] += 1

    async def wait(self) -> None:
        raise AssertionError("not scripted")

    async def move(self, x: int, y: int) -> None:
        raise AssertionError("not scripted")

    async def keypress(self, keys: list[str]) -> None:
        raise AssertionError("not scripted")

    async def drag(self, path: list[tuple[int, int]]) -> None:
        raise AssertionError("not scripted")


COMPUTER_TURNS = [
    output_items(
        {
            "type": "computer_call",
            "id": "cu_1",
            "call_id": "call_screen",
            "actions": [
                {"type": "click", "x": 5, "y": 6, "button": "left"},
                {"type": "scroll", "x": 5, "y": 6, "scroll_x": 0, "scroll_y": 300},
                {"type": "type", "text": "hello"},
            ],
            "pending_safety_checks": [],
            "status": "completed",
        }
    ),
    text("typed hello"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
async def test_computer_actions_are_steps_never_repeated(stream: bool):
    def respond(request: RecordedRequest) -> Turn:
        items = request.json.get("input", []) if isinstance(request.json, dict) else []
        done = any(i.get("type") == "computer_call_output" for i in items)
        return COMPUTER_TURNS[1 if done else 0]

    screens = {side: Screen() for side in ("plain", "durable")}
    outcomes: dict[str, Any] = {}
    for side in ("plain", "durable"):
        agent = Agent(
            name="screen-user",
            instructions="Use the screen.",
            tools=[ComputerTool(computer=screens[side])],
        )
        with FakeModelServer(responder=respond) as fake:
            config = RunConfig(model_provider=fake.provider())
            if side == "plain":
                if stream:
                    streamed = Runner.run_streamed(agent, "go", run_config=config)
                    async for _ in streamed.stream_events():
                        pass
                    result: Any = streamed
                else:
                    result = await Runner.run(agent, "go", run_config=config)
            elif stream:
                run = await timestep.run_agent(agent, "go", run_config=config, stream=True)
                async for _ in run.stream_events():
                    pass
                result = await run.wait()
            else:
                result = await timestep.run_agent(agent, "go", run_config=config)
            outcomes[side] = _outcome(result, fake.requests)
    assert outcomes["durable"] == outcomes["plain"]
    expected = {"click 5,6": 1, "scroll 300": 1, "type hello": 1, "screenshot": 1}
    assert screens["durable"].actions == screens["plain"].actions == expected

    steps = await DBOS.list_workflow_steps_async(result.workflow_id)
    names = [s["function_name"] for s in steps if s["function_name"].startswith("tool:")]
    prefix = "tool:computer_use_preview."
    assert names == [prefix + a for a in ("click", "scroll", "type", "screenshot")]

    # The same workflow id again replays the run: the screen is neither touched nor captured.
    with FakeModelServer(responder=respond) as fake:
        again = await timestep.run_agent_workflow(
            agent, "go", workflow_id=result.workflow_id, run_config=config
        )
        assert fake.requests == []
    assert again.final_output == "typed hello"
    assert screens["durable"].actions == expected
