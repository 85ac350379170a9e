"""A background process writes its log file as plain text: no colour codes, whatever the
environment it was started from asked for."""

import os
import sys

from ops.processes import spawn
from zenloop.pids import alive
from zenloop.waiting import poll_until

LOGS = (
    "import logging\n"
    "from zenml.logger import get_logger\n"
    "get_logger('zenloop.test').warning('a warning for the file')\n"
)
ESC = "\x1b["


def test_a_spawned_process_logs_without_colour_codes(tmp_path):
    log_file = tmp_path / "process.log"
    coloured = {k: v for k, v in os.environ.items() if k != "ZENML_LOGGING_COLORS_DISABLED"}
    pid = spawn([sys.executable, "-c", LOGS], log_file, env=coloured)
    poll_until(lambda: not alive(pid), timeout=120)
    text = log_file.read_text()
    assert "a warning for the file" in text, text
    assert ESC not in text, repr(text)
