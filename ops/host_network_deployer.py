"""A Docker deployer whose containers use the host network: ZenML's Docker deployer with
one difference, for the `docker` stack.

ZenML's own Docker deployer publishes the service's port on the bridge network (0.0.0.0),
and from there the container cannot reach the stack's servers on 127.0.0.1 (ZenML,
MLflow). On this stack every container uses the host network, as the step containers of
the local Docker orchestrator do: the service listens on 127.0.0.1 at its own port, and
nothing else changes (image, build, environment, mounts, states, logs, deprovisioning are
ZenML's).

Registered as the deployer flavor `zenloop_docker` by `zenloop stack up docker`.
"""

from __future__ import annotations

from typing import Any

from zenml.deployers.docker.docker_deployer import DockerDeployer, DockerDeployerFlavor
from zenml.enums import DeploymentStatus

HOST_NETWORK = "host"
LOCALHOST = "127.0.0.1"
PORT_LABEL = "zenloop-port"  # where the container's service listens, on the host


class _HostNetworkContainers:
    """docker-py's container collection, whose `run` uses the host network: the port
    ZenML would publish is where the service listens (kept as a label), and the bridge's
    host alias has no meaning there."""

    def __init__(self, containers: Any):
        self._containers = containers

    def run(self, **kwargs: Any) -> Any:
        ports = kwargs.pop("ports", None) or {}
        kwargs.pop("extra_hosts", None)
        labels = {**(kwargs.pop("labels", None) or {})}
        labels[PORT_LABEL] = ",".join(str(port).split("/")[0] for port in ports)
        return self._containers.run(network_mode=HOST_NETWORK, labels=labels, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._containers, name)


class _HostNetworkClient:
    """A docker-py client whose containers run on the host network."""

    def __init__(self, client: Any):
        self._client = client
        self.containers = _HostNetworkContainers(client.containers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class HostNetworkDockerDeployer(DockerDeployer):
    """ZenML's Docker deployer, with its containers on the host network."""

    @property
    def docker_client(self) -> Any:
        return _HostNetworkClient(super().docker_client)

    def _get_container_operational_state(self, container: Any):
        state = super()._get_container_operational_state(container)
        port = (container.labels or {}).get(PORT_LABEL)
        if state.status == DeploymentStatus.RUNNING and port:
            state.url = f"http://{LOCALHOST}:{port}"
        return state


class HostNetworkDockerDeployerFlavor(DockerDeployerFlavor):
    @property
    def name(self) -> str:
        return "zenloop_docker"

    @property
    def implementation_class(self) -> type[DockerDeployer]:
        return HostNetworkDockerDeployer
