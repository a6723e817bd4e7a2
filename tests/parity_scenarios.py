"""Scenarios run through plain ``Runner`` and through Timestep, then compared (test_runner_parity).

Every agent's instructions start with its name, so a fake model serving several scenarios at
once knows which one a request belongs to (``scenario_of``).

Each scenario builds fresh objects (agent, input, ``Runner.run`` keyword arguments) and names
the model's script. The recovery worker (tests/workers/parity_worker.py) imports this module
too, so a fresh process has the same agents, types and hooks registered, as a real worker
that imports its application's modules would.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    AgentHooks,
    ComputerTool,
    GuardrailFunctionOutput,
    ModelSettings,
    RunConfig,
    RunContextWrapper,
    RunHooks,
    SQLiteSession,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from agents.computer import Computer
from agents.run_error_handlers import RunErrorHandlerInput, RunErrorHandlerResult
from pydantic import BaseModel

import timestep
from timestep.testing import Turn, function_call, output_items, text

CALLS_LOG_ENV = "TIMESTEP_PARITY_CALLS"


def _log_call(line: str) -> None:
    """Tools log each execution, so tests count them across a worker's lives."""
    path = os.environ.get(CALLS_LOG_ENV)
    if path:
        with open(path, "a") as log:
            log.write(line + "\n")


class Account(BaseModel):
    user: str
    tier: str


@dataclass
class Cart:
    items: list[str] = field(default_factory=list)


SEEN_CONTEXTS: list[Any] = []
"""The context objects tools saw in this process (identity checks)."""


@function_tool
def whoami(ctx: RunContextWrapper[Any]) -> str:
    """Who the user is."""
    SEEN_CONTEXTS.append(ctx.context)
    _log_call("whoami")
    context = ctx.context
    if isinstance(context, Account):
        return f"{context.user} ({context.tier})"
    if isinstance(context, Cart):
        return f"cart: {', '.join(context.items)}"
    if isinstance(context, dict):
        return f"{context.get('user')}"
    return "nobody"


@function_tool
def lookup(item: str) -> dict[str, Any]:
    """Look an item up."""
    _log_call(f"lookup {item}")
    return {"item": item, "stock": 3}


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    _log_call(f"add {a} {b}")
    return a + b


class Desktop(Computer):
    """A computer whose actions are logged like the tools' executions."""

    @property
    def environment(self) -> Any:
        return "linux"

    @property
    def dimensions(self) -> tuple[int, int]:
        return (800, 600)

    def screenshot(self) -> str:
        _log_call("computer screenshot")
        return "c2NyZWVu"  # base64 of "screen"

    def click(self, x: int, y: int, button: Any) -> None:
        _log_call(f"computer click {x} {y} {button}")

    def double_click(self, x: int, y: int) -> None:
        _log_call(f"computer double_click {x} {y}")

    def scroll(self, x: int, y: int, scroll_x: int, scroll_y: int) -> None:
        _log_call(f"computer scroll {x} {y}")

    def type(self, text: str) -> None:
        _log_call(f"computer type {text}")

    def wait(self) -> None:
        _log_call("computer wait")

    def move(self, x: int, y: int) -> None:
        _log_call(f"computer move {x} {y}")

    def keypress(self, keys: list[str]) -> None:
        _log_call(f"computer keypress {'+'.join(keys)}")

    def drag(self, path: list[tuple[int, int]]) -> None:
        _log_call(f"computer drag {path}")


class AuditHooks(RunHooks[Any]):
    """Run hooks recording what they see: event names, and the objects themselves."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        self.events.append(("agent_start", agent, None))

    async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
        self.events.append(("agent_end", agent, output))

    async def on_llm_start(
        self, context: Any, agent: Any, system_prompt: Any, input_items: Any
    ) -> None:
        self.events.append(("llm_start", agent, system_prompt))

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        self.events.append(("llm_end", agent, response.response_id))

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        self.events.append(("tool_start", agent, tool))

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        self.events.append(("tool_end", agent, tool))


class GreeterHooks(AgentHooks[Any]):
    """Agent hooks recording what they see."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def on_start(self, context: Any, agent: Any) -> None:
        self.events.append(("start", agent))

    async def on_end(self, context: Any, agent: Any, output: Any) -> None:
        self.events.append(("end", agent))

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        self.events.append(("tool_start", tool))


def stop_after_max_turns(data: RunErrorHandlerInput[Any]) -> RunErrorHandlerResult:
    """A max_turns error handler: end the run with a final output instead of the error."""
    return RunErrorHandlerResult(final_output=f"stopped: {type(data.error).__name__}")


def dynamic_instructions(context: RunContextWrapper[Any], agent: Agent[Any]) -> str:
    DYNAMIC_AGENTS.append(agent)
    return f"{agent.name}: you are {agent.name}. Answer briefly."


DYNAMIC_AGENTS: list[Any] = []
"""The agent objects dynamic instructions were called with in this process."""


timestep.register_type(AuditHooks)
timestep.register_type(GreeterHooks)


@dataclass
class Scenario:
    """One comparison: what to run, and the model's answers."""

    name: str
    agent: str
    """The starting agent's name (its instructions start with it)."""
    build: Callable[[Path], tuple[Agent[Any], Any, dict[str, Any]]]
    script: list[Turn]
    recoverable: bool = True
    """Has a variant killed after its first model call and finished by a fresh process."""


def _context(kind: str) -> Callable[[Path], tuple[Agent[Any], Any, dict[str, Any]]]:
    values: dict[str, Callable[[], Any]] = {
        "pydantic": lambda: Account(user="ada", tier="gold"),
        "dataclass": lambda: Cart(items=["fig", "kiwi"]),
        "dict": lambda: {"user": "bob"},
    }

    def build(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
        agent = Agent(
            name=f"context-{kind}", instructions=f"context-{kind}: use the tools.", tools=[whoami]
        )
        return agent, "who am I?", {"context": values[kind]()}

    return build


def _hooks(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    helper = Agent(
        name="hooked", instructions="hooked: look things up.", tools=[lookup], hooks=GreeterHooks()
    )
    return helper, "is there fig?", {"hooks": AuditHooks()}


def _run_config(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    agent = Agent(name="configured", instructions=dynamic_instructions, tools=[add])
    config = RunConfig(
        model="parity-model",
        model_settings=ModelSettings(temperature=0.25, max_tokens=200),
        workflow_name="parity workflow",
        tracing_disabled=True,
    )
    return agent, "add 2 and 3", {"run_config": config}


def _error_handlers(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    agent = Agent(name="looping", instructions="Keep adding.", tools=[add])
    return (
        agent,
        "add forever",
        {"max_turns": 1, "error_handlers": {"max_turns": stop_after_max_turns}},
    )


def _max_turns(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    agent = Agent(name="looping", instructions="looping: keep adding.", tools=[add])
    return agent, "add forever", {"max_turns": 1}


@input_guardrail(run_in_parallel=False)  # before the model call: the same requests both ways
def no_refunds(context: Any, agent: Any, given: Any) -> GuardrailFunctionOutput:
    """Trips on any input that asks for a refund."""
    return GuardrailFunctionOutput(
        output_info={"asked_for": "refund"}, tripwire_triggered="refund" in str(given)
    )


@output_guardrail
def no_numbers(context: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
    """Trips on a final output with a digit in it."""
    return GuardrailFunctionOutput(
        output_info={"output": str(output)}, tripwire_triggered=any(c.isdigit() for c in output)
    )


def _input_tripwire(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    agent = Agent(
        name="guarded-in", instructions="guarded-in: help.", input_guardrails=[no_refunds]
    )
    return agent, "a refund, please", {}


def _output_tripwire(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    agent = Agent(
        name="guarded-out",
        instructions="guarded-out: add.",
        tools=[add],
        output_guardrails=[no_numbers],
    )
    return agent, "add 2 and 2", {}


def _computer(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    # A computer created per run by a factory, beside a function tool in the same response.
    agent = Agent(
        name="operator",
        instructions="operator: use the computer.",
        tools=[ComputerTool(computer=lambda *, run_context: Desktop()), add],
    )
    return agent, "Open the search box and type figs; and add 2 and 3.", {}


COMPUTER_CALL = output_items(
    {
        "type": "computer_call",
        "id": "cu_1",
        "call_id": "call_computer",
        "actions": [
            {"type": "click", "x": 10, "y": 20, "button": "left"},
            {"type": "type", "text": "figs"},
            {"type": "keypress", "keys": ["ENTER"]},
        ],
        "pending_safety_checks": [],
        "status": "completed",
    },
    {
        "type": "function_call",
        "id": "fc_add",
        "call_id": "call_add",
        "name": "add",
        "arguments": '{"a": 2, "b": 3}',
        "status": "completed",
    },
)


def _server_conversation(kind: str) -> Callable[[Path], tuple[Agent[Any], Any, dict[str, Any]]]:
    options: dict[str, dict[str, Any]] = {
        "previous_response_id": {"previous_response_id": "resp_earlier"},
        "conversation_id": {"conversation_id": "conv_parity"},
        "auto_previous_response_id": {"auto_previous_response_id": True},
    }

    def build(_: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
        agent = Agent(name=f"server-{kind}", instructions=f"server-{kind}: add.", tools=[add])
        return agent, "add 1 and 1", dict(options[kind])

    return build


def _sqlite_session(folder: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    agent = Agent(name="remembers", instructions="remembers: remember.", tools=[lookup])
    session = SQLiteSession("parity-conversation", str(folder / "sessions.sqlite"))
    return agent, "is there kiwi?", {"session": session}


def _sqlalchemy_session(folder: Path) -> tuple[Agent[Any], Any, dict[str, Any]]:
    agent = Agent(name="remembers-sa", instructions="remembers-sa: remember.", tools=[lookup])
    session = sqlalchemy_session("parity-sa", folder / "sa.sqlite")
    return agent, "is there plum?", {"session": session}


def sqlalchemy_session(session_id: str, path: Path) -> Any:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

    session = SQLAlchemySession.from_url(
        session_id, url=f"sqlite+aiosqlite:///{path}", create_tables=True
    )
    session._parity_path = str(path)  # how the registered type below stores it
    return session


def _register_sqlalchemy_session() -> None:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

    timestep.register_type(
        SQLAlchemySession,
        dump=lambda s: {"session_id": s.session_id, "path": s._parity_path},
        load=lambda d: sqlalchemy_session(d["session_id"], Path(d["path"])),
    )


_register_sqlalchemy_session()

TOOL_THEN_TEXT = [function_call("whoami", {}), text("Done.")]

SCENARIOS = [
    Scenario("context_pydantic", "context-pydantic", _context("pydantic"), TOOL_THEN_TEXT),
    Scenario("context_dataclass", "context-dataclass", _context("dataclass"), TOOL_THEN_TEXT),
    Scenario("context_dict", "context-dict", _context("dict"), TOOL_THEN_TEXT),
    Scenario(
        "hooks", "hooked", _hooks, [function_call("lookup", {"item": "fig"}), text("Yes, 3 figs.")]
    ),
    Scenario(
        "run_config", "configured", _run_config, [function_call("add", {"a": 2, "b": 3}), text("5")]
    ),
    # One model call each: nothing to kill between calls (their arguments' portable forms are
    # checked by test_runner_parity_recovery's rebuild test).
    Scenario(
        "error_handlers",
        "looping",
        _error_handlers,
        [function_call("add", {"a": 1, "b": 1})],
        False,
    ),
    Scenario(
        "max_turns_exceeded", "looping", _max_turns, [function_call("add", {"a": 1, "b": 1})], False
    ),
    Scenario("input_tripwire", "guarded-in", _input_tripwire, [text("Sure.")], False),
    Scenario(
        "output_tripwire",
        "guarded-out",
        _output_tripwire,
        [function_call("add", {"a": 2, "b": 2}), text("4")],
    ),
    Scenario(
        "previous_response_id",
        "server-previous_response_id",
        _server_conversation("previous_response_id"),
        [function_call("add", {"a": 1, "b": 1}), text("2")],
    ),
    Scenario(
        "conversation_id",
        "server-conversation_id",
        _server_conversation("conversation_id"),
        [function_call("add", {"a": 1, "b": 1}), text("2")],
    ),
    Scenario(
        "auto_previous_response_id",
        "server-auto_previous_response_id",
        _server_conversation("auto_previous_response_id"),
        [function_call("add", {"a": 1, "b": 1}), text("2")],
    ),
    Scenario("computer", "operator", _computer, [COMPUTER_CALL, text("Typed figs; 5.")]),
    Scenario(
        "sqlite_session",
        "remembers",
        _sqlite_session,
        [function_call("lookup", {"item": "kiwi"}), text("Yes.")],
    ),
    Scenario(
        "sqlalchemy_session",
        "remembers-sa",
        _sqlalchemy_session,
        [function_call("lookup", {"item": "plum"}), text("Yes.")],
    ),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def scenario_of(instructions: str) -> Scenario:
    """The scenario a request belongs to, from its instructions (they start with the agent's
    name, and every scenario's agent has its own name)."""
    name = instructions.split(":", 1)[0]
    for scenario in SCENARIOS:
        if scenario.agent == name:
            return scenario
    raise LookupError(f"no scenario's agent is named {name!r}")
