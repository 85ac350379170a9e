"""The Kubernetes Job that ZenML's orchestrator would create for each step, rendered offline.

On a Kubernetes stack, ZenML submits an orchestrator pod; that pod, inside the cluster, turns
each step of the snapshot into a Job (`kubernetes_orchestrator_entrypoint.start_step_job`).
Nothing of that is visible before a cluster runs it. Here the same ZenML calls run on the
client, from a real snapshot of the pipeline compiled for the active stack: the orchestrator's
merged settings per step, the build's image, ZenML's step entrypoint, its default resource
request, its pod and job builders. The result is what a team can read, diff and
`kubectl apply --dry-run` before the first run. What only the cluster knows (the
orchestrator pod's name and owner, the run's id) is a placeholder, and a step with no
`pod_failure_policy` of its own gets ZenML's default one there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from zenml.client import Client
from zenml.constants import ORCHESTRATOR_DOCKER_IMAGE_KEY
from zenml.enums import StoreType
from zenml.models import BuildItem, PipelineBuildBase, PipelineSnapshotResponse
from zenml.pipelines.pipeline_definition import Pipeline

from ops.runs import pipeline as validated_pipeline
from zenloop.errors import UserError

KUBERNETES_FLAVOR = "kubernetes"
# ZenML's own floor when a step sets no memory request (start_step_job)
DEFAULT_MEMORY_REQUEST = "400Mi"
# known only inside the cluster (the run, named after the orchestrator pod there); a valid
# label value, so the file passes `kubectl apply --dry-run`
RUN_PLACEHOLDER = "rendered-not-run"
SNAPSHOT_NAME_SUFFIX = "-manifests"
JOB_API_VERSION, JOB_KIND = "batch/v1", "Job"


def _require_kubernetes_stack() -> Any:
    """The active stack's orchestrator, if pods can run it: Kubernetes, and a ZenML server."""
    client = Client()
    if client.zen_store.type != StoreType.REST:
        raise UserError(
            "step pods reach ZenML over HTTP, and the active ZenML store is a local database: "
            "connect to the team's ZenML server first (zenml login URL)"
        )
    orchestrator = client.active_stack.orchestrator
    if orchestrator.flavor != KUBERNETES_FLAVOR:
        raise UserError(
            f"the active stack's orchestrator is {orchestrator.flavor!r}: step pods are "
            f"rendered for a {KUBERNETES_FLAVOR} orchestrator (zenloop stack up remote)"
        )
    return orchestrator


def pushed_image_build(image: str, *keys: str) -> PipelineBuildBase:
    """A build made of one pushed project image that contains the code, under every key
    the stack asks for (the orchestrator's steps, the deployer's service)."""
    item = BuildItem(image=image, contains_code=True, requires_code_download=False)
    return PipelineBuildBase(images=dict.fromkeys(keys, item), is_local=False, contains_code=True)


def snapshot_for(
    pipeline: Pipeline, config_path: Path, image: str | None = None, build: UUID | None = None
) -> PipelineSnapshotResponse:
    """Compile `pipeline` with its run configuration for the active stack and store it.

    The image is either a ZenML build (`zenml pipeline build`) or an image already pushed,
    which is registered as a build that contains the code (how the project image is built).
    """
    if (image is None) == (build is None):
        raise UserError("give either an image or a ZenML build id")
    if image is not None:
        build = pushed_image_build(image, ORCHESTRATOR_DOCKER_IMAGE_KEY)
    configured = pipeline.with_options(config_path=str(config_path), build=build)
    return configured.create_snapshot(name=f"{pipeline.name}{SNAPSHOT_NAME_SUFFIX}", replace=True)


def render(
    pipeline: str, config_path: Path, image: str | None = None, build: UUID | None = None
) -> dict[str, dict[str, Any]]:
    """Step name -> Job manifest for pipeline `pipeline` run with `config_path`."""
    definition = validated_pipeline(pipeline, config_path)
    orchestrator = _require_kubernetes_stack()
    return step_jobs(snapshot_for(definition, config_path, image, build), orchestrator)


def step_jobs(snapshot: PipelineSnapshotResponse, orchestrator: Any) -> dict[str, dict[str, Any]]:
    """Step name -> the Job manifest (as sent to the Kubernetes API) for every step, from
    the stack's Kubernetes orchestrator."""
    from kubernetes.client import ApiClient
    from zenml.constants import LINUX_GID_CLAIM_KEY, LINUX_UID_CLAIM_KEY
    from zenml.entrypoints.step_entrypoint_configuration import StepEntrypointConfiguration
    from zenml.integrations.kubernetes import kube_utils
    from zenml.integrations.kubernetes.constants import (
        ENV_ZENML_KUBERNETES_RUN_ID,
        KUBERNETES_SECRET_TOKEN_KEY_NAME,
        STEP_NAME_ANNOTATION_KEY,
        WORKSPACE_USER_ID_ANNOTATION_KEY,
    )
    from zenml.integrations.kubernetes.manifest_utils import (
        build_job_manifest,
        build_pod_manifest,
        pod_template_manifest_from_pod,
    )
    from zenml.orchestrators.utils import get_config_environment_vars
    from zenml.utils import env_utils

    stack = Client().active_stack
    user = Client().active_user
    shared_env, secrets = get_config_environment_vars()
    shared_env[ENV_ZENML_KUBERNETES_RUN_ID] = RUN_PLACEHOLDER
    pipeline_name = snapshot.pipeline_configuration.name
    base_labels = {
        "project_id": kube_utils.sanitize_label_value(str(snapshot.project_id)),
        "run_id": RUN_PLACEHOLDER,
        "run_name": RUN_PLACEHOLDER,
        "pipeline": kube_utils.sanitize_label_value(pipeline_name),
    }
    serializer = ApiClient()
    jobs = {}
    for step_name, step in snapshot.step_configurations.items():
        settings = orchestrator.get_settings(step)
        labels = {**base_labels, "step_name": kube_utils.sanitize_label_value(step_name)}
        env = {**shared_env, **env_utils.get_runtime_environment(config=step.config, stack=stack)}
        pod_settings = kube_utils.apply_default_resource_requests(
            memory=DEFAULT_MEMORY_REQUEST, pod_settings=settings.pod_settings
        )
        if orchestrator.config.pass_zenml_token_as_secret:
            env.pop("ZENML_STORE_API_TOKEN", None)
            pod_settings.env.append(
                {
                    "name": "ZENML_STORE_API_TOKEN",
                    "valueFrom": {
                        "secretKeyRef": {
                            "name": orchestrator.get_token_secret_name(snapshot.id),
                            "key": KUBERNETES_SECRET_TOKEN_KEY_NAME,
                        }
                    },
                }
            )
        else:
            env.update(secrets)
        pod = build_pod_manifest(
            pod_name=None,
            image_name=orchestrator.get_image(snapshot=snapshot, step_name=step_name),
            command=StepEntrypointConfiguration.get_entrypoint_command(),
            args=StepEntrypointConfiguration.get_entrypoint_arguments(
                step_name=step_name, snapshot_id=snapshot.id
            ),
            env=env,
            privileged=settings.privileged,
            pod_settings=pod_settings,
            service_account_name=settings.step_pod_service_account_name
            or settings.service_account_name,
            mount_local_stores=orchestrator.config.is_local,
            termination_grace_period_seconds=settings.pod_stop_grace_period,
            labels=labels,
            annotations={WORKSPACE_USER_ID_ANNOTATION_KEY: str(user.id)},
            run_as_user=user.oidc_claims.get(LINUX_UID_CLAIM_KEY),
            run_as_group=user.oidc_claims.get(LINUX_GID_CLAIM_KEY),
        )
        retries = step.config.retry.max_retries if step.config.retry else 0
        job = build_job_manifest(
            job_name=kube_utils.sanitize_label(
                f"{settings.job_name_prefix or ''}-{step_name}-{pipeline_name}"
            ),
            pod_template=pod_template_manifest_from_pod(pod),
            backoff_limit=retries + settings.backoff_limit_margin,
            ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
            active_deadline_seconds=settings.active_deadline_seconds,
            pod_failure_policy=settings.pod_failure_policy,
            labels=labels,
            annotations={
                STEP_NAME_ANNOTATION_KEY: step_name,
                WORKSPACE_USER_ID_ANNOTATION_KEY: str(user.id),
            },
        )
        # what the API call adds, so the file stands alone for `kubectl apply --dry-run`
        job.api_version, job.kind = JOB_API_VERSION, JOB_KIND
        job.metadata.namespace = orchestrator.config.kubernetes_namespace
        jobs[step_name] = serializer.sanitize_for_serialization(job)
    return jobs
