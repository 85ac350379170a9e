"""What only works where steps share this machine's disk says so, on any other orchestrator."""

from pathlib import Path

from sqlalchemy.engine import make_url
from zenml.client import Client

from monitoring.database import resolve_log_url
from zenloop.paths import data_dir

# Orchestrators whose steps see this machine's data folder: the local one all of the disk,
# local_docker only the data folder (the docker stack mounts it at the same path).
SHARED_DISK_ORCHESTRATORS = frozenset({"local", "local_docker"})
DATA_DIR_ONLY_ORCHESTRATORS = frozenset({"local_docker"})
FILE_DATABASES = ("sqlite",)


def reachable_log_url(url: str | None) -> str | None:
    """The prediction log's URL, refused with a clear reason when a step cannot reach it.

    The default log is a SQLite file beside the service: a step in a pod on another
    machine would silently read an empty, different file, and a step in a local container
    sees no file outside the data folder.
    """
    flavor = Client().active_stack.orchestrator.flavor
    effective = resolve_log_url(url)
    if not effective.startswith(FILE_DATABASES):
        return url
    if flavor not in SHARED_DISK_ORCHESTRATORS:
        raise RuntimeError(
            f"the prediction log {effective} is a file on the service's machine; steps on "
            f"the '{flavor}' orchestrator cannot reach it: set monitor.log_database_url to a "
            "database they can reach (e.g. postgresql://…)"
        )
    database = Path(make_url(effective).database or "").resolve()
    if flavor in DATA_DIR_ONLY_ORCHESTRATORS and not database.is_relative_to(data_dir()):
        raise RuntimeError(
            f"the prediction log {database} is outside the data folder {data_dir()}, the only "
            f"folder of this machine that steps on the '{flavor}' orchestrator see: put the "
            "log under it (ZENLOOP_DATA_DIR) or in a database server (postgresql://…)"
        )
    return url
