"""The one place that starts and stops background processes (service, monitor, retraining).

A managed process has a pid file and a log file; `start` waits until it says it is ready,
`stop` asks politely (SIGTERM) and insists (SIGKILL) only after a grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

from zenloop.errors import OperationError
from zenloop.pids import alive
from zenloop.waiting import poll_until

STOP_TIMEOUT_S = 60.0
KILL_WAIT_S = 10.0
CLI_MODULE = "ops.cli"
# what a process writing to a file is told: ZenML's log formatter and rich add no colour,
# and MLflow draws no progress bars (a carriage-return line per artifact it downloads)
PLAIN_OUTPUT = {
    "ZENML_LOGGING_COLORS_DISABLED": "true",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

logger = logging.getLogger(__name__)


def zenloop_command(*args: str) -> list[str]:
    """`zenloop <args>` run by this interpreter, so children use the same environment."""
    return [sys.executable, "-m", CLI_MODULE, *args]


def spawn(command: list[str], log_file: Path, env: dict[str, str] | None = None) -> int:
    """Start a detached process (its own session and process group) that outlives its
    parent; its output goes to `log_file`, as plain text (no colour codes)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    plain = {**(os.environ if env is None else env), **PLAIN_OUTPUT}
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=plain
        )
    return process.pid


def plain_unless_terminal() -> None:
    """PLAIN_OUTPUT's settings, where not set already, when stdout is a file or a pipe
    (`make demo > demo.log`), as spawned processes have them. Before ZenML is imported:
    its formatter reads its colour setting once."""
    if not sys.stdout.isatty():
        for name, value in PLAIN_OUTPUT.items():
            os.environ.setdefault(name, value)


@contextmanager
def plain_output() -> Iterator[None]:
    """PLAIN_OUTPUT in this process's environment while the block runs, for a child that a
    library starts with a copy of it (ZenML's local deployer starts the service so, its
    output going to the deployment's daemon.log); the environment is restored after."""
    with patch.dict(os.environ, PLAIN_OUTPUT):  # the standard library's save and restore
        yield


def _signal(pid: int, signum: int) -> None:
    """Signal a process and, when it leads its own group (as spawned ones do), its children."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


class BackgroundProcess:
    """A long-lived process known by its pid file (one per service port, one monitor)."""

    def __init__(self, pid_file: Path, log_file: Path):
        self.pid_file = pid_file
        self.log_file = log_file

    @classmethod
    def running_in(cls, folder: Path, stem: str) -> list[BackgroundProcess]:
        """The live processes whose files in `folder` match the stem's pattern, with `{port}`
        standing for any port (e.g. every service that was started here)."""
        found = (
            cls(pid_file, pid_file.with_suffix(".log"))
            for pid_file in sorted(folder.glob(stem.format(port="*") + ".pid"))
        )
        return [process for process in found if process.running_pid() is not None]

    def running_pid(self) -> int | None:
        """The pid in the pid file if that process is alive; a stale file is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError):
            return None
        except ProcessLookupError:
            self.pid_file.unlink(missing_ok=True)
            return None
        except PermissionError:  # alive, but another user's: not ours to manage
            return None

    def claim(self) -> None:
        """Called by the process itself when it runs in the foreground."""
        if (pid := self.running_pid()) is not None and pid != os.getpid():
            raise OperationError(f"already running (pid {pid}); stop it first")
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(str(os.getpid()))

    def release(self) -> None:
        if self.running_pid() == os.getpid():
            self.pid_file.unlink(missing_ok=True)

    def start(
        self,
        command: list[str],
        ready: Callable[[], bool],
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> int:
        """Start `command` detached and wait until `ready()` says so."""
        if (pid := self.running_pid()) is not None:
            raise OperationError(f"already running (pid {pid}); stop it first")
        pid = spawn(command, self.log_file, env)

        def started() -> bool:
            if not alive(pid):
                raise OperationError(f"it exited at start-up; see {self.log_file}")
            return ready()

        if not poll_until(started, timeout):
            _signal(pid, signal.SIGTERM)
            raise OperationError(f"not ready within {timeout:.0f}s; see {self.log_file}")
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.pid_file.exists():  # a process that does not claim its own file
            self.pid_file.write_text(str(pid))
        return pid

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        return poll_until(lambda: not alive(pid), timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait for a graceful exit; SIGKILL only after the grace period."""
        pid = self.running_pid()
        if pid is None:
            return None
        _signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            logger.warning("pid %d ignored SIGTERM for %.0fs: killing it", pid, timeout)
            _signal(pid, signal.SIGKILL)
            if not self._wait_gone(pid, KILL_WAIT_S):
                raise OperationError(f"pid {pid} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return pid
