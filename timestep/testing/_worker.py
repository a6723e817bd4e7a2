"""Run a worker script in a real subprocess, SIGKILL it at a chosen point, restart it.

Crash tests need a real ``kill -9``: no ``finally`` blocks, no atexit, no flushed buffers. ::

    with FakeModelServer(responder=conversation_script(script)) as fake, \\
            WorkerProcess([sys.executable, "worker.py", fake.base_url]) as worker:
        fake.on_request(lambda request: request.index == 1 and worker.kill())
        worker.start()
        worker.wait_killed(timeout=60)      # killed at its second model call
        fake.on_request(None)
        worker.restart()                    # DBOS recovers the run at launch
        worker.wait_for_line("RESULT", timeout=60)

Output (stdout and stderr merged) is collected by a thread, per incarnation; ``output()``
returns all of it, which is what a failing test wants to print.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

__all__ = ["WorkerProcess"]


class WorkerProcess:
    """A restartable subprocess whose output lines can be awaited.

    Used as a context manager it kills a worker still running on exit.

    Args:
        command: The command line, e.g. ``[sys.executable, "worker.py"]``.
        env: Variables added to this process's environment (with ``PYTHONUNBUFFERED=1``).
        cwd: The working directory (default: this process's).

    Attributes:
        command: The command line.
        env: The subprocess's whole environment.
        cwd: The working directory.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.command = list(command)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self._lock = threading.Condition()
        self._lines: list[tuple[int, str]] = []  # (incarnation, line)
        self._incarnation = 0
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._killed = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> WorkerProcess:
        """Start a new incarnation of the worker.

        Returns:
            The worker itself.

        Raises:
            RuntimeError: It is already running.
        """
        if self.running:
            raise RuntimeError("the worker is already running")
        with self._lock:
            self._incarnation += 1
            self._killed = False
        self._process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=self.env,
            cwd=self.cwd,
        )
        self._reader = threading.Thread(
            target=self._read, args=(self._process, self._incarnation), daemon=True
        )
        self._reader.start()
        return self

    def kill(self) -> bool:
        """SIGKILL the worker now (safe from any thread).

        Returns:
            True, so it can end a hook (``lambda request: ... and worker.kill()``).
        """
        process = self._process
        with self._lock:
            self._killed = True
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
        return True

    def stop(self, timeout: float = 30.0) -> int | None:
        """Ask the worker to exit (SIGTERM), SIGKILL it if it has not within ``timeout``;
        returns its exit code.

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.

        Returns:
            The exit code, or None if it was not running.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return None
        process.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.wait(timeout=30)

    def restart(self) -> WorkerProcess:
        """Start a new incarnation (killing the current one if it still runs).

        Returns:
            The worker itself.
        """
        if self.running:
            self.kill()
            self.wait(timeout=30)
        return self.start()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the current incarnation to exit.

        Args:
            timeout: Seconds to wait; None waits for ever.

        Returns:
            The exit code (negative: killed by that signal).

        Raises:
            RuntimeError: The worker was never started.
            subprocess.TimeoutExpired: It did not exit within ``timeout``.
        """
        if self._process is None:
            raise RuntimeError("the worker was never started")
        code = self._process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def wait_killed(self, timeout: float = 60.0) -> None:
        """Wait until the worker has been killed (e.g. by a hook) and has exited.

        Args:
            timeout: Seconds to wait.

        Raises:
            AssertionError: It was not killed in time or exited by itself (the message holds
                its output).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._killed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self._process and self._process.poll() is not None):
                    break
                self._lock.wait(min(remaining, 0.05))
            killed = self._killed
        if not killed:
            raise AssertionError(
                f"the worker was not killed within {timeout}s "
                f"(exit code {self.returncode}); output:\n{self.output()}"
            )
        self.wait(timeout=max(1.0, deadline - time.monotonic()))

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.running:
            self.kill()
            self.wait(timeout=30)

    # -- state and output --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the current incarnation is running."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The current incarnation's process id (None before ``start``)."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """The current incarnation's exit code (None while running or before ``start``)."""
        return self._process.poll() if self._process else None

    def output(self) -> str:
        """Everything every incarnation printed, in order.

        Returns:
            Stdout and stderr, merged.
        """
        with self._lock:
            return "".join(line for _, line in self._lines)

    def lines(self) -> list[str]:
        """The current incarnation's output lines.

        Returns:
            The lines, without their line ends.
        """
        with self._lock:
            return [line.rstrip("\n") for n, line in self._lines if n == self._incarnation]

    def wait_for_line(self, prefix: str, timeout: float = 60.0) -> str:
        """Wait for a line of the current incarnation that starts with ``prefix``.

        Fails at once, with the output, if the worker exits without printing it.

        Args:
            prefix: What the line starts with.
            timeout: Seconds to wait.

        Returns:
            The line, without its line end.

        Raises:
            AssertionError: The worker exited, or the time ran out, first (the message holds
                its output).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for n, line in self._lines:
                    if n == self._incarnation and line.startswith(prefix):
                        return line.rstrip("\n")
                exited = self._process is not None and self._process.poll() is not None
                reader_done = self._reader is None or not self._reader.is_alive()
                remaining = deadline - time.monotonic()
                if (exited and reader_done) or remaining <= 0:
                    break
                self._lock.wait(min(remaining, 0.1))
        why = f"exited with {self.returncode}" if exited else f"timed out after {timeout}s"
        raise AssertionError(f"worker {why} before printing {prefix!r}; output:\n{self.output()}")

    def _read(self, process: subprocess.Popen[str], incarnation: int) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self._lines.append((incarnation, line))
                self._lock.notify_all()
        process.stdout.close()
        with self._lock:
            self._lock.notify_all()
