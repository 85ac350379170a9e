"""Progress for long work, shown with rich on a terminal and as log lines elsewhere.

Steps run with their output captured, and tests and CI have no terminal: there a bar
would be noise, so each advance is logged instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

logger = logging.getLogger(__name__)


class Tracker:
    """Advances one task; `note` changes the text shown beside the bar."""

    def __init__(self, progress: Progress | None, task: int | None, description: str):
        self._progress = progress
        self._task = task
        self._description = description
        self._last_note: str | None = None
        self.done = 0

    @property
    def live(self) -> bool:
        """A bar on a terminal: notes may change often (elsewhere each one is a log line)."""
        return self._progress is not None

    def advance(self, steps: int = 1, note: str | None = None) -> None:
        self.done += steps
        if self._progress is not None and self._task is not None:
            text = f"{self._description}: {note}" if note else self._description
            self._progress.update(self._task, advance=steps, description=text)
        elif note and note != self._last_note:  # a log line per change, not per step
            logger.info("%s: %s", self._description, note)
        self._last_note = note


@contextmanager
def progress(description: str, total: float | None) -> Iterator[Tracker]:
    """A progress bar for `total` units of work (None: no known end)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield Tracker(None, None, description)
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
        yield Tracker(bar, bar.add_task(description, total=total), description)
