"""The remote stack on paper, checked offline: it parses, every flavour and config key exists
in the installed ZenML integrations, its secret references are declared, the image's pinned
requirements are consistent, and the image they describe builds (the shared session build).
"""

import re
from importlib.metadata import PackageNotFoundError, distribution

import pytest
from packaging.requirements import Requirement
from zenml.enums import StackComponentType

from ops.images import PROJECT_IMAGE, REQUIREMENTS_FILE, SKIP_DISTRIBUTIONS
from ops.stacks import StackFile, load_stack_file
from tests.support.containers import project_image  # noqa: F401  (fixture)

SECRET_REFERENCE = re.compile(r"\{\{(\w+)\.(\w+)\}\}")
LINUX = {"sys_platform": "linux", "platform_system": "Linux", "extra": ""}


@pytest.fixture(scope="module")
def remote() -> StackFile:
    return load_stack_file("remote")


def _flavors(stack: StackFile) -> dict[tuple[str, str], type]:
    """(component type, flavour name) -> flavour class: built-in, from all integrations,
    and the project's own that the stack file registers (the webhook alerter)."""
    from zenml.integrations.registry import integration_registry
    from zenml.stack.flavor_registry import FlavorRegistry
    from zenml.utils import source_utils

    found = {}
    classes = list(FlavorRegistry().builtin_flavors)
    for integration in integration_registry.integrations.values():
        classes += integration.flavors()
    classes += [source_utils.load(flavor.source) for flavor in stack.flavors]
    for flavor_class in classes:
        flavor = flavor_class()
        found[(flavor.type.value, flavor.name)] = flavor_class
    return found


def test_the_remote_stack_names_the_components_a_team_needs(remote):
    flavors = {kind: spec.flavor for kind, spec in remote.components.items()}
    assert flavors == {
        "orchestrator": "kubernetes",
        "artifact_store": "s3",
        "container_registry": "aws",
        "image_builder": "local",
        "experiment_tracker": "mlflow",
        "model_registry": "mlflow",
        "deployer": "kubernetes",
        "alerter": "zenloop_webhook",
    }
    assert remote.zenml_server is None and remote.mlflow_server is None  # nothing starts here


def test_flavours_and_config_keys_exist_in_the_installed_integrations(remote):
    flavors = _flavors(remote)
    for kind, spec in remote.components.items():
        key = (StackComponentType(kind).value, spec.flavor)
        assert key in flavors, f"no {spec.flavor} flavour for {kind}"
        config_class = flavors[key]().config_class
        unknown = set(spec.configuration) - set(config_class.model_fields)
        assert not unknown, f"{kind} {spec.flavor}: unknown keys {unknown}"
        # values validate; a secret reference stands for a string only resolved at run time
        values = {
            k: SECRET_REFERENCE.sub("resolved-at-run-time", v) if isinstance(v, str) else v
            for k, v in spec.configuration.items()
        }
        config_class(**values)


def test_secret_references_are_declared_and_never_values(remote):
    for spec in remote.components.values():
        for value in spec.configuration.values():
            for secret, key in SECRET_REFERENCE.findall(str(value)):
                assert key in remote.secrets.get(secret, {}), f"{secret}.{key} is not declared"
    assert "zenloop_prediction_log" in remote.secrets  # PostgreSQL URL for service and monitor
    for values in remote.secrets.values():
        assert all(value.default is None for value in values.values()), "no real defaults"


def test_the_image_requirements_are_a_consistent_closure():
    """Every pinned package's own requirements are met by the other pins (pip check, offline)."""
    pins = {}
    for line in REQUIREMENTS_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    problems = []
    for name, version in pins.items():
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # image-only (the PostgreSQL driver)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(LINUX):
                continue
            wanted = requirement.name.lower().replace("_", "-")
            if wanted in SKIP_DISTRIBUTIONS:
                continue
            if wanted not in pins or not requirement.specifier.contains(
                pins[wanted], prereleases=True
            ):
                problems.append(f"{name}=={version} needs {text}; pinned {pins.get(wanted)}")
    assert not problems, problems


@pytest.mark.slow
def test_the_image_builds(project_image):  # noqa: F811
    assert project_image == PROJECT_IMAGE
