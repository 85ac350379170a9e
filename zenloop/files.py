"""Files other processes read while they change: replaced whole, never seen half written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DEFAULT_MODE = 0o644


def write_atomically(path: Path, text: str, mode: int = DEFAULT_MODE) -> None:
    """Write `text` to a temporary file beside `path` (unique to this call, so threads and
    processes may write at once) and rename it over `path`: a reader sees the old content
    or the new, never a part. `mode` applies from the first byte (0o600 for secrets)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
