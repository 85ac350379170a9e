"""Code that reads a library's internals runs only on the versions it was checked against:
pyproject.toml bounds them, and an installed version outside the bounds fails here loudly,
naming what to check before the bound is raised."""

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# distribution -> the code that reads its internals
READ_INTERNALS = {
    "scikit-learn": "zenloop/compiled.py (fitted transformers' and trees' private state)",
    "fastapi": "api/fast_path.py (Starlette's exception-handler lookup, redone ahead of it)",
}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    parsed = (Requirement(line) for line in project["dependencies"])
    return {requirement.name: requirement for requirement in parsed}


@pytest.mark.parametrize("distribution", READ_INTERNALS)
def test_libraries_whose_internals_are_read_are_bounded_and_installed_within(distribution):
    requirement = _requirements()[distribution]
    assert any(spec.operator in ("<", "<=") for spec in requirement.specifier), (
        f"{distribution} needs an upper bound in pyproject.toml: {READ_INTERNALS[distribution]}"
    )
    installed = version(distribution)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{distribution} {installed} is not a version zenloop was checked against "
        f"({requirement.specifier}): check {READ_INTERNALS[distribution]}, then move the bound"
    )
