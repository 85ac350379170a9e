"""Whether a process is alive, by pid: for pid files, sibling workers and child processes."""

from __future__ import annotations

import os
from contextlib import suppress


def alive(pid: int) -> bool:
    with suppress(ChildProcessError):  # reap it if it is our child: zombies look alive
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
