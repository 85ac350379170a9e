"""What only works where steps share this machine's disk says so, on any other orchestrator."""

from zenml.client import Client

from monitoring.log_store import default_log_url

# Orchestrators whose steps see this machine's data folder (local_docker mounts it).
SHARED_DISK_ORCHESTRATORS = frozenset({"local", "local_docker"})
FILE_DATABASES = ("sqlite",)


def reachable_log_url(url: str | None) -> str | None:
    """The prediction log's URL, refused with a clear reason when a step cannot reach it.

    The default log is a SQLite file beside the service: a step in a pod on another
    machine would silently read an empty, different file.
    """
    flavor = Client().active_stack.orchestrator.flavor
    effective = url or default_log_url()
    if effective.startswith(FILE_DATABASES) and flavor not in SHARED_DISK_ORCHESTRATORS:
        raise RuntimeError(
            f"the prediction log {effective} is a file on the service's machine; steps on "
            f"the '{flavor}' orchestrator cannot reach it: set monitor.log_database_url to a "
            "database they can reach (e.g. postgresql://…)"
        )
    return url
