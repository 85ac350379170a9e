"""What every worker of one service serves, when the service runs several worker processes.

Each uvicorn worker holds its own model, and an admin load reaches only one of them. That
worker writes the selection (alias and version) to a small file beside the service's pid
file, with a generation number; every worker follows the file and, once it serves that
generation, says so in a file of its own. The admin call answers when every live worker
serves the new version, so a 200 means the whole service switched.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from api.model_state import Selection
from api.settings import ServingConfig
from zenloop.files import write_atomically
from zenloop.paths import data_dir
from zenloop.pids import alive

logger = logging.getLogger(__name__)

SERVICE_FILES = "serve-{port}"  # the stem of one service's files in the data folder
SELECTION_SUFFIX = ".selection.json"
ACK_SUFFIX = ".served"
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class SharedSelection:
    generation: int
    selection: Selection


class SelectionBoard:
    """The shared selection file of one service and its workers' acknowledgements."""

    def __init__(self, stem: Path, pid: int | None = None):
        self.path = stem.with_name(stem.name + SELECTION_SUFFIX)
        self.pid = pid or os.getpid()
        self._stamp: int | None = None

    def _ack_path(self, pid: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{pid}{ACK_SUFFIX}")

    @classmethod
    def of(cls, config: ServingConfig) -> SelectionBoard:
        """The board of the service on `config.port` (one service per port)."""
        return cls(data_dir() / SERVICE_FILES.format(port=config.port))

    def clear(self) -> None:
        """A service starting afresh serves its config: earlier selections are forgotten."""
        for path in [self.path, *self.path.parent.glob(f"{self.path.name}.*{ACK_SUFFIX}")]:
            path.unlink(missing_ok=True)

    def read(self) -> SharedSelection | None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # written atomically, so only a foreign file gets here
            logger.warning("%s is not a selection file; ignored", self.path)
            return None
        return SharedSelection(raw["generation"], Selection(**raw["selection"]))

    def changed(self) -> SharedSelection | None:
        """The shared selection when the file changed since the last call (cheap: one stat)."""
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        return self.read()

    def forget_change(self) -> None:
        """The last change could not be acted on: report it again on the next call."""
        self._stamp = None

    def publish(self, selection: Selection) -> int:
        """Share a selection under the next generation; its number.

        Under a file lock, so two admin loads in two workers get two generations.
        """
        with self.path.with_name(self.path.name + LOCK_SUFFIX).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read()
            generation = (current.generation if current else 0) + 1
            payload = {"generation": generation, "selection": asdict(selection)}
            write_atomically(self.path, json.dumps(payload))  # readers: old or new, whole
        return generation

    def acknowledge(self, generation: int) -> None:
        """This worker serves `generation` now."""
        self._ack_path(self.pid).write_text(str(generation))

    def withdraw(self) -> None:
        """This worker stops (its acknowledgement must not count for a successor)."""
        self._ack_path(self.pid).unlink(missing_ok=True)

    def serving(self, generation: int) -> int:
        """How many live workers serve `generation` (or a later one)."""
        count = 0
        for path in self.path.parent.glob(f"{self.path.name}.*{ACK_SUFFIX}"):
            pid = path.name.removeprefix(self.path.name + ".").removesuffix(ACK_SUFFIX)
            try:
                served = int(path.read_text())
            except (FileNotFoundError, ValueError):
                continue
            if pid.isdigit() and served >= generation and alive(int(pid)):
                count += 1
        return count
