"""The OpenAPI contract is the behaviour: schemathesis against a real service, then the monitor
reads what the fuzzer got logged.

Every operation is fuzzed from /openapi.json (admin ones with the token) with a bounded
number of cases. Schemathesis' default checks must all pass: no 5xx, every status and
response body as documented, schema-valid requests accepted and schema-violating ones
refused. Then the fuzzed log must still be a window the drift check can read.
"""

import io
import re
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from monitoring.drift import check_drift
from monitoring.log_store import PredictionLogStore
from tests.support.serving import ADMIN_TOKEN, register_models, running_service
from zenloop.config import DataConfig, DriftConfig
from zenloop.deployment import VALIDATED_TAG
from zenloop.reference import reference_sample

MODEL = "fuzz-tests"
# ZenML's own routes beside zenloop's in the deployed service: `/invoke` runs the whole
# inference pipeline per call, and both are ZenML's contract, not zenloop's
ZENML_ROUTES = ("/invoke", "/info")
MAX_EXAMPLES = 40  # per operation and phase: about 500 cases in all
SEED = 7
FUZZ_TIMEOUT_S = 300
REFERENCE_ROWS = 400
# A 413 is how the service refuses a batch over max_batch_rows (schema: maxItems), and
# /models/load takes exactly one of alias or version, which OpenAPI cannot state.
CONFIG = """
[checks]
negative_data_rejection.expected-statuses = [
    400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429
]

[[operations]]
include-path = "/models/load"
checks.positive_data_acceptance.enabled = false
"""


@pytest.fixture(scope="module")
def registered():
    registered = register_models(
        MODEL, DataConfig(n_rows=2_000, seed=51), ["random_forest", "xgboost"]
    )
    MlflowClient().set_model_version_tag(MODEL, "2", VALIDATED_TAG, "test")  # loads may swap
    return registered


@pytest.fixture(scope="module")
def fuzzed(registered, tmp_path_factory):
    """One schemathesis run against a real service: its output and the service's log."""
    tmp_path = tmp_path_factory.mktemp("fuzz")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    with running_service(tmp_path, MODEL) as svc:
        svc.wait_ready()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(config),
                "run",
                f"{svc.url}/openapi.json",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--header",
                f"Authorization: Bearer {ADMIN_TOKEN}",
                "--no-shrink",
                "--workers",
                "1",
                *[arg for path in ZENML_ROUTES for arg in ("--exclude-path", path)],
            ],
            capture_output=True,
            text=True,
            timeout=FUZZ_TIMEOUT_S,
        )
    return run, PredictionLogStore(f"sqlite:///{svc.log_db}")


def test_schemathesis_finds_nothing_and_the_fuzzed_log_stays_readable(fuzzed):
    run, store = fuzzed
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated and int(generated.group(1)) >= MAX_EXAMPLES, run.stdout[-2000:]
    assert "10 selected / 12 total" in run.stdout, "every zenloop operation was fuzzed"
    logged = store.last_rows(100_000)
    assert len(logged) > 0 and logged.attrs["unreadable_rows"] == 0
    logged.to_parquet(io.BytesIO())  # what the monitoring pipeline stores as an artifact


def test_a_drift_check_reads_the_fuzzed_log(fuzzed, registered):
    _, store = fuzzed
    champion = registered.bundles["1"]
    window = store.last_rows(100_000, "1")
    reference = reference_sample(registered.holdout, champion, REFERENCE_ROWS, 0)
    check = check_drift(
        MODEL,
        "1",
        window,
        reference,
        champion.schema,
        champion.metrics["test"],
        DriftConfig(),
        with_html=False,
    )
    assert check.report.window_rows == len(window)
