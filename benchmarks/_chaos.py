"""The chaos soak: runs with tool calls and approvals over worker processes that a killer
SIGKILLs at random and restarts, then a check of every invariant.

``run_soak`` drives it (used by ``tests/test_chaos.py`` for the short variant and by
``python -m benchmarks --long`` for the 200-run one); ``SoakReport.violations()`` lists what
went wrong, empty when every invariant held:

- every run finished, with the scripted answer, and none is missing (none lost);
- no finished model step repeated: each request to the fake model is checked, as it arrives,
  against the run's checkpointed model steps (a request for a conversation position whose
  step is already checkpointed is a repeat);
- no finished tool step repeated: each tool body checks its own step's checkpoint first
  (``tests/workers/chaos_worker.py``), and every checkpointed tool step has a logged body;
- no duplicated session item, and every session holds the same items as a clean run;
- no orphaned pending approval: no tool call row is left ``pending_approval`` and no run still
  publishes a call without a decision.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOSClient

from timestep import TimestepSerializer
from timestep._core.protocol import APPROVALS_EVENT, DECISION_TOPIC
from timestep._core.tables import decisions_table, session_items_table, tool_calls_table
from timestep.testing import (
    FakeModelServer,
    RecordedRequest,
    WorkerProcess,
    conversation_script,
    function_call,
    text,
)
from timestep.testing._fake_openai import model_turns_in

from ._common import ROOT, dbos_table, sync_engine

WORKER = ROOT / "tests" / "workers" / "chaos_worker.py"
ANSWER = "refunded after lookup"
SCRIPT = [
    function_call("lookup", {"item": "book"}, delay=0.03),
    function_call("refund", {"item": "book"}, delay=0.03),
    text(ANSWER, delay=0.03),
]
MODEL_STEPS, TOOL_STEPS = 3, 2


@dataclass
class SoakReport:
    runs: int
    workers: int
    database: str
    seconds: float = 0.0
    kills: int = 0
    finished: dict[str, str] = field(default_factory=dict)
    """Workflow id -> DBOS status, for every expected run (missing: "MISSING")."""
    wrong_output: list[str] = field(default_factory=list)
    model_repeats: list[str] = field(default_factory=list)
    model_retries: int = 0
    """Model requests repeated for a position whose step was not checkpointed (allowed)."""
    tool_repeats: list[str] = field(default_factory=list)
    tool_reruns: int = 0
    """Tool bodies run again because the kill came before their checkpoint (allowed)."""
    tool_steps_unlogged: list[str] = field(default_factory=list)
    wrong_step_counts: list[str] = field(default_factory=list)
    duplicated_session_items: list[str] = field(default_factory=list)
    wrong_sessions: list[str] = field(default_factory=list)
    pending_rows: list[str] = field(default_factory=list)
    pending_events: list[str] = field(default_factory=list)
    approvals_sent: int = 0
    worker_output: str = ""

    def violations(self) -> list[str]:
        out = []
        unfinished = {w: s for w, s in self.finished.items() if s != "SUCCESS"}
        if unfinished:
            out.append(f"{len(unfinished)} run(s) not finished: {_few(unfinished)}")
        checks = (
            ("wrong final output", self.wrong_output),
            ("finished model step repeated", self.model_repeats),
            ("finished tool step repeated", self.tool_repeats),
            ("checkpointed tool step without a logged body", self.tool_steps_unlogged),
            ("wrong number of checkpointed steps", self.wrong_step_counts),
            ("duplicated session item", self.duplicated_session_items),
            ("session differs from a clean run", self.wrong_sessions),
            ("orphaned pending approval row", self.pending_rows),
            ("run still publishing pending approvals", self.pending_events),
        )
        out += [f"{name}: {len(found)}: {_few(found)}" for name, found in checks if found]
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "runs": self.runs,
            "workers": self.workers,
            "seconds": round(self.seconds, 1),
            "kills": self.kills,
            "finished": sum(1 for s in self.finished.values() if s == "SUCCESS"),
            "approvals_sent": self.approvals_sent,
            "model_retries_of_unfinished_steps": self.model_retries,
            "tool_reruns_of_unfinished_steps": self.tool_reruns,
        }

    def text(self) -> str:
        lines = [f"chaos soak: {json.dumps(self.summary())}"]
        problems = self.violations()
        lines += [f"  VIOLATION {p}" for p in problems] or ["  every invariant held"]
        return "\n".join(lines)


def _few(items: Any, n: int = 5) -> str:
    listed = list(items.items() if isinstance(items, dict) else items)
    more = f" (+{len(listed) - n} more)" if len(listed) > n else ""
    return ", ".join(str(x) for x in listed[:n]) + more


class _ModelWatch:
    """The fake model's request hook: flags a request for an already checkpointed step."""

    def __init__(self, engine: sa.Engine, steps_table: str, report: SoakReport) -> None:
        self.engine = engine
        self.query = sa.text(
            f"SELECT count(*) FROM {steps_table} "
            "WHERE workflow_uuid = :w AND function_name LIKE 'model:%'"
        )
        self.report = report
        self.seen: Counter[tuple[str, int]] = Counter()
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> None:
        items = (request.json or {}).get("input") or []
        first = items[0] if isinstance(items, list) and items else {}
        content = first.get("content") if isinstance(first, dict) else None
        if not isinstance(content, str) or not content.startswith("chaos run "):
            return None
        workflow_id = content.removeprefix("chaos run ")
        position = model_turns_in(request)
        with self.engine.connect() as conn:
            finished = conn.execute(self.query, {"w": workflow_id}).scalar_one()
        with self.lock:
            self.seen[(workflow_id, position)] += 1
            if finished > position:
                self.report.model_repeats.append(f"{workflow_id}@{position}")
            elif self.seen[(workflow_id, position)] > 1:
                self.report.model_retries += 1
        return None


class _Killer(threading.Thread):
    """SIGKILLs a random launched worker every ``interval`` seconds and restarts it."""

    def __init__(self, workers: list[WorkerProcess], interval: tuple[float, float], seed: int):
        super().__init__(daemon=True, name="chaos-killer")
        self.workers = workers
        self.interval = interval
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.kills = 0

    def run(self) -> None:
        while not self.stop.wait(self.random.uniform(*self.interval)):
            live = [w for w in self.workers if w.running and "LAUNCHED" in w.lines()]
            if not live:
                continue
            victim = self.random.choice(live)
            victim.kill()
            victim.wait(timeout=30)
            self.kills += 1
            victim.start()


def run_soak(
    database_url: str,
    *,
    runs: int = 200,
    workers: int = 2,
    spread_seconds: float | None = None,
    kill_interval: tuple[float, float] = (0.5, 2.0),
    max_seconds: float = 600.0,
    settle_seconds: float = 90.0,
    seed: int | None = None,
    progress: Any = None,
    label: str = "chaos soak",
) -> SoakReport:
    """Run the soak and check it. ``spread_seconds`` spaces the runs' submissions so the
    killer overlaps the work (default: 0.3 s per run); kills stop once every run finished or
    after ``max_seconds``, then runs get ``settle_seconds`` more without kills."""
    kind = "sqlite" if database_url.startswith("sqlite") else "postgres"
    report = SoakReport(runs=runs, workers=workers, database=kind)
    prefix = f"chaos-{uuid.uuid4().hex[:8]}"
    ids = [f"{prefix}-{i:04d}" for i in range(runs)]
    spread = 0.3 * runs if spread_seconds is None else spread_seconds
    seed = random.randrange(1 << 30) if seed is None else seed
    engine = sync_engine(database_url)
    statuses = dbos_table(database_url, "workflow_status")
    steps = dbos_table(database_url, "operation_outputs")
    client = DBOSClient(system_database_url=database_url, serializer=TimestepSerializer())
    task = progress.add_task(label, total=runs) if progress is not None else None
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="timestep-chaos-") as state_dir,
        FakeModelServer(responder=conversation_script(SCRIPT)) as fake,
    ):
        fake.on_request(_ModelWatch(engine, steps, report))
        t0 = time.time() + 3.0  # after the workers' first launch
        pool = [
            WorkerProcess(
                [
                    sys.executable,
                    str(WORKER),
                    database_url,
                    fake.base_url,
                    state_dir,
                    str(index),
                    str(workers),
                    str(runs),
                    prefix,
                    repr(t0),
                    repr(spread / max(1, runs)),
                ],
                cwd=ROOT,
            )
            for index in range(workers)
        ]
        killer = _Killer(pool, kill_interval, seed)
        try:
            for worker in pool:
                worker.start()
            for worker in pool:  # the first launch creates the tables polled below
                worker.wait_for_line("LAUNCHED", timeout=120)
            killer.start()
            decided: set[tuple[str, str]] = set()
            deadline = started + max_seconds
            settle_deadline: float | None = None
            while True:
                try:
                    report.approvals_sent += _approve_pending(engine, client, prefix, decided)
                    done = _count_finished(engine, statuses, prefix)
                except sa.exc.DBAPIError:  # tables not created yet, or SQLite busy
                    time.sleep(0.05)
                    continue
                if task is not None:
                    progress.update(task, completed=done)
                now = time.monotonic()
                if done >= runs:
                    break
                if settle_deadline is None and now > deadline:
                    settle_deadline = now + settle_seconds
                    killer.stop.set()
                if settle_deadline is not None and now > settle_deadline:
                    break
                time.sleep(0.05)
        finally:
            killer.stop.set()
            killer.join(timeout=60)
            report.kills = killer.kills
            for worker in pool:  # SIGTERM: a graceful exit writes the workers' last rows
                worker.stop(timeout=30)
            report.worker_output = "\n".join(w.output()[-4000:] for w in pool)
        report.seconds = time.monotonic() - started
        fake.on_request(None)
        try:
            _check(report, engine, client, database_url, ids, Path(state_dir))
        finally:
            client.destroy()
            engine.dispose()
    return report


def _count_finished(engine: sa.Engine, statuses: str, prefix: str) -> int:
    query = sa.text(
        f"SELECT count(*) FROM {statuses} WHERE workflow_uuid LIKE :p AND status = 'SUCCESS'"
    )
    with engine.connect() as conn:
        return int(conn.execute(query, {"p": f"{prefix}-%"}).scalar_one())


def _approve_pending(
    engine: sa.Engine, client: DBOSClient, prefix: str, decided: set[tuple[str, str]]
) -> int:
    """Approve every pending tool call of the soak's runs (once each), as a separate process
    would: the call's decision row, then a DBOS message to the run, as ``timestep.approve``
    writes and sends them."""
    t = tool_calls_table
    query = sa.select(t.c.workflow_id, t.c.call_id).where(
        t.c.status == "pending_approval", t.c.workflow_id.like(f"{prefix}-%")
    )
    with engine.connect() as conn:
        rows = [(r.workflow_id, r.call_id) for r in conn.execute(query)]
    sent = 0
    for workflow_id, call_id in rows:
        if (workflow_id, call_id) in decided:
            continue
        message = {
            "call_id": call_id,
            "approve": True,
            "always": False,
            "message": None,
            "by": "chaos",
            "at": datetime.now(UTC).isoformat(),
        }
        with engine.begin() as conn:
            conn.execute(
                decisions_table.insert().values(
                    workflow_id=workflow_id,
                    call_id=call_id,
                    decision_id=uuid.uuid4().hex,
                    approve=True,
                    always=False,
                    decided_by="chaos",
                    decided_at=message["at"],
                )
            )
        client.send(workflow_id, message, DECISION_TOPIC)
        decided.add((workflow_id, call_id))
        sent += 1
    return sent


def _check(
    report: SoakReport,
    engine: sa.Engine,
    client: DBOSClient,
    url: str,
    ids: list[str],
    state_dir: Path,
) -> None:
    statuses = dbos_table(url, "workflow_status")
    steps = dbos_table(url, "operation_outputs")
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.text(
                    f"SELECT workflow_uuid, status FROM {statuses} WHERE workflow_uuid LIKE :p"
                ),
                {"p": ids[0].rsplit("-", 1)[0] + "-%"},
            ).all()
        )
        step_rows = conn.execute(
            sa.text(
                f"SELECT workflow_uuid, function_id, function_name FROM {steps} "
                "WHERE workflow_uuid LIKE :p"
            ),
            {"p": ids[0].rsplit("-", 1)[0] + "-%"},
        ).all()
        t = session_items_table
        items = conn.execute(
            sa.select(t.c.session_id, t.c.item).where(t.c.session_id.in_(ids)).order_by(t.c.id)
        ).all()
        tc = tool_calls_table
        pending = conn.execute(
            sa.select(tc.c.workflow_id, tc.c.call_id).where(
                tc.c.status == "pending_approval", tc.c.workflow_id.in_(ids)
            )
        ).all()
        dt = decisions_table
        decided = {
            (r.workflow_id, r.call_id)
            for r in conn.execute(
                sa.select(dt.c.workflow_id, dt.c.call_id).where(dt.c.workflow_id.in_(ids))
            )
        }
    report.finished = {w: found.get(w, "MISSING") for w in ids}
    report.pending_rows = [f"{r.workflow_id}/{r.call_id}" for r in pending]

    for workflow_id in ids:
        if report.finished[workflow_id] != "SUCCESS":
            continue
        summary = client.retrieve_workflow(workflow_id).get_result()
        if not isinstance(summary, dict) or summary.get("final_output") != ANSWER:
            report.wrong_output.append(workflow_id)
        # A run leaves its published list as it is; a call in it is pending until decided.
        published = client.get_event(workflow_id, APPROVALS_EVENT, timeout_seconds=0) or []
        if any((workflow_id, p["call_id"]) not in decided for p in published):
            report.pending_events.append(workflow_id)

    # Steps: each run checkpointed exactly its model and tool steps.
    per_run: dict[str, Counter[str]] = defaultdict(Counter)
    tool_steps: set[str] = set()
    for workflow_id, function_id, name in step_rows:
        kind = name.split(":", 1)[0] if ":" in name else name
        per_run[workflow_id][kind] += 1
        if name.startswith("tool:"):
            tool_steps.add(f"{workflow_id}:{function_id}")
    for workflow_id in ids:
        if report.finished[workflow_id] != "SUCCESS":
            continue
        counts = per_run[workflow_id]
        if counts["model"] != MODEL_STEPS or counts["tool"] != TOOL_STEPS:
            report.wrong_step_counts.append(f"{workflow_id} {dict(counts)}")

    # Tools: a body that found its own checkpoint is a repeat; reruns of unfinished ones are ok.
    log: list[list[str]] = []
    for path in state_dir.glob("tools-*.log"):
        log += [line.split() for line in path.read_text().splitlines() if line.strip()]
    report.tool_repeats = [f"{e[1]} {e[2]}" for e in log if e[0] == "repeat"]
    started = Counter(e[2] for e in log if e[0] == "start")
    done = {e[2] for e in log if e[0] == "done"}
    report.tool_reruns = sum(n - 1 for n in started.values())
    report.tool_steps_unlogged = sorted(tool_steps - done)

    # Sessions: no item twice, and every session the same items (the input aside).
    by_session: dict[str, list[str]] = defaultdict(list)
    for session_id, item in items:
        by_session[session_id].append(item)
    shapes: Counter[tuple[str, ...]] = Counter()
    for session_id, session_items in by_session.items():
        dupes = [i for i, n in Counter(session_items).items() if n > 1]
        report.duplicated_session_items += [f"{session_id}: {i[:80]}" for i in dupes]
        shapes[tuple(_shape(json.loads(i)) for i in session_items)] += 1
    for workflow_id in ids:
        if report.finished[workflow_id] == "SUCCESS" and workflow_id not in by_session:
            report.wrong_sessions.append(f"{workflow_id}: no items")
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        for session_id, session_items in by_session.items():
            shape = tuple(_shape(json.loads(i)) for i in session_items)
            if shape != common:
                report.wrong_sessions.append(f"{session_id}: {shape}")


def _shape(item: dict[str, Any]) -> str:
    """An item's kind, without what differs between runs (the input's text)."""
    return str(item.get("type") or item.get("role")) + (
        f":{item['name']}" if item.get("name") else ""
    )


def main() -> None:
    import argparse

    from ._common import fresh_database

    parser = argparse.ArgumentParser(description="The chaos soak alone.")
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    with fresh_database(args.database, "chaos") as url:
        report = run_soak(url, runs=args.runs, max_seconds=args.max_seconds)
    print(report.text())
    if report.violations():
        print(report.worker_output)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
