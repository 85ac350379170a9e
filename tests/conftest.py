"""Every test session gets its own ZenML store, repository, data folder and MLflow DB.

The environment is set at import time, before ZenML or MLflow is imported anywhere,
so no test can touch a user's stores. Tests are marked by their folder: `unit` (in
process, seconds), `e2e` (real servers, processes and pipelines) and `containers`
(Docker); the last two are also `slow`.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from zenloop.paths import isolate

SESSION_DIR = Path(tempfile.mkdtemp(prefix="zenloop-tests-"))
isolate(SESSION_DIR)
os.environ.update(ZENML_LOGGING_COLORS_DISABLED="true", AUTO_OPEN_DASHBOARD="false")

if "PYTEST_XDIST_WORKER" in os.environ:
    # a worker's main module has no file, from which ZenML infers the source root
    from zenml.utils.source_utils import set_custom_source_root

    set_custom_source_root(str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session", autouse=True)
def _remove_session_dir():
    yield
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _session_tracking_uri():
    """A test that points MLflow's global client elsewhere cannot leak it into the next ones."""
    yield
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return SESSION_DIR


SLOW_FOLDERS = ("e2e", "containers")
CONTAINERS = "tests/containers"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.parent.name
        if folder in SLOW_FOLDERS:
            item.add_marker(getattr(pytest.mark, folder))
            item.add_marker(pytest.mark.slow)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With pytest-xdist's `--dist loadfile` (as `make test` runs): a file's tests stay on
    one worker, in order, and the container tests, which share the Docker daemon's images,
    all on one, started first (they are the longest)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileAndContainerScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return CONTAINERS if path.startswith(f"{CONTAINERS}/") else path

    return FileAndContainerScheduling(config, log)
