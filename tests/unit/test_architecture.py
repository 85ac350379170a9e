"""The import contracts in pyproject.toml hold, and would catch an import that runs upward."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("ops", "pipelines", "steps", "api", "materializers", "monitoring", "zenloop")


def _lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(folder / "pyproject.toml"), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(folder), "PATH": str(LINT_IMPORTS.parent)},
    )


def test_the_import_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    core = tmp_path / "zenloop" / "metrics.py"
    core.write_text(core.read_text() + "\nimport ops.cli  # noqa: E402,F401  (runs upward)\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "zenloop.metrics -> ops.cli" in result.stdout
