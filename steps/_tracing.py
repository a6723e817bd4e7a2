"""Steps in the run's OpenTelemetry trace (``timestep._core.tracing``) and their retries.

``Traced`` wraps a step's body so that, when the run is traced, each execution of it is a
span under the run's root; a replayed step never calls its body, so it makes no span. Each
execution is counted, and so are the model client's retries inside one
(``timestep._core.retries``): the run's timeline shows a step's retries. ``Traced.finish``
after the step drops the waits deferred for it if it replayed: the process that first ran
the step emitted them (``Traced.run_step`` runs the step and finishes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from dbos import DBOS, StepOptions

from timestep._core.retries import StepAttempts, attempting

from ._current_run import CurrentRun

__all__ = ["Traced"]

T = TypeVar("T")


class Traced(Generic[T]):
    """A step body (``body``, a coroutine function as DBOS needs), whether it ran and how
    many times."""

    def __init__(
        self,
        run: CurrentRun,
        name: str,
        attributes: Mapping[str, Any],
        call: Callable[..., Awaitable[T]],
        describe: Callable[[T], Mapping[str, Any]] | None = None,
    ) -> None:
        self._attempts: StepAttempts | None = None
        trace = run.trace

        async def body(*args: Any, **kwargs: Any) -> T:
            if self._attempts is None:  # the step id is known once the step runs
                self._attempts = StepAttempts(run.workflow_id, DBOS.step_id or 0)  # set in a step
            attempts = self._attempts
            await attempts.begin()
            with attempting(attempts):
                if trace is None:
                    return await call(*args, **kwargs)
                step = {
                    "timestep.step.id": attempts.step_id,
                    "timestep.step.attempt": attempts.began,
                }
                with trace.span(name, {**attributes, **step}) as span:
                    result = await call(*args, **kwargs)
                    if describe is not None:
                        span.set_attributes(
                            {k: v for k, v in describe(result).items() if v is not None}
                        )
                    return result

        self.body = body
        self._run = run

    async def run_step(
        self, options: StepOptions, reservation: Any, *args: Any, **kwargs: Any
    ) -> T:
        """The step, at the step id ``reservation`` holds (None: the next one), then
        ``finish``."""
        try:
            if reservation is not None:
                result: T = await reservation.run_async(options, self.body, *args, **kwargs)
                return result
            return await DBOS.run_step_async(options, self.body, *args, **kwargs)
        finally:
            self.finish()

    def finish(self) -> None:
        """After the step: a step that replayed leaves the waits before it to their emitter."""
        if self._attempts is None and self._run.trace is not None:
            self._run.trace.drop_pending()
