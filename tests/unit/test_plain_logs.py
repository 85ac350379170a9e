"""A background process writes its log file as plain text: no colour codes, whatever the
environment it was started from asked for, and no progress bars."""

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
# MLflow downloads an artifact as a retraining's log_model validates its input example
DOWNLOADS = (
    "import mlflow, sys\n"
    "mlflow.set_tracking_uri(sys.argv[1])\n"
    "with mlflow.start_run() as run:\n"
    "    mlflow.log_text('a logged file', 'note.txt')\n"
    "mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=sys.argv[2])\n"
    "print('downloaded')\n"
)
PROGRESS_BAR = "Downloading artifacts"


def test_a_spawned_process_logs_without_colour_codes(tmp_path):
    log_file = tmp_path / "process.log"
    coloured = {k: v for k, v in os.environ.items() if k != "ZENML_LOGGING_COLORS_DISABLED"}
    pid = spawn([sys.executable, "-c", LOGS], log_file, env=coloured)
    poll_until(lambda: not alive(pid), timeout=120)
    text = log_file.read_text()
    assert "a warning for the file" in text, text
    assert ESC not in text, repr(text)


def test_a_spawned_process_draws_no_mlflow_progress_bar(tmp_path):
    log_file = tmp_path / "process.log"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    pid = spawn([sys.executable, "-c", DOWNLOADS, store, str(tmp_path / "out")], log_file)
    poll_until(lambda: not alive(pid), timeout=120)
    text = log_file.read_text()
    assert "downloaded" in text, text
    assert (tmp_path / "out" / "note.txt").is_file()
    assert PROGRESS_BAR not in text, text
