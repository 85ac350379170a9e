"""The registry model is self-contained: it carries zenloop's code, its requirements, a
signature from the feature schema and an input example.

It loads in a process that never imported zenloop (from the model's own code copy), and
`mlflow models serve --env-manager uv` serves the champion from a fresh environment with the
same predictions as zenloop's service, integer inputs and missing values included.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.support.pipelines import stack_up
from tests.support.serving import free_port, register_models, running_service
from zenloop.config import DataConfig
from zenloop.deployment import request_rows

MODEL = "self-contained"
ROWS = 30
SERVE_TIMEOUT_S = 600.0  # a fresh environment: uv downloads and installs the requirements
ENV_MANAGER = "uv"  # MLflow's virtualenv manager; uses pyenv's Python or uv's (here: uv)
LOAD_SCRIPT = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.DataFrame(json.loads(sys.argv[2]))
out = model.predict(rows)
print(json.dumps({"zenloop_file": sys.modules["zenloop"].__file__,
                  "prediction": out["prediction"].tolist()}))
"""


@pytest.fixture(scope="module")
def registered():
    stack_up()  # the service follows the active stack's tracker
    return register_models(MODEL, DataConfig(n_rows=2_000, seed=31), ["xgboost"])


@pytest.fixture(scope="module")
def rows(registered) -> list[dict]:
    """Holdout rows with integer-valued numbers and missing values, as clients send them."""
    records = request_rows(registered.holdout.head(ROWS))
    schema = next(iter(registered.bundles.values())).schema
    numeric = [k for k, v in records[0].items() if isinstance(v, float)]
    nullable = [k for k in records[0] if schema.column(k).nullable]
    for i, record in enumerate(records):
        if i % 3 == 0:
            record[nullable[i % len(nullable)]] = None  # missing where training had gaps
        if i % 3 == 1:
            for key in numeric:  # whole numbers: JSON integers, int64 in pandas
                if record[key] is not None:
                    record[key] = round(record[key])
    return records


@pytest.fixture(scope="module")
def service_predictions(registered, rows, tmp_path_factory) -> list:
    with (
        running_service(tmp_path_factory.mktemp("svc"), MODEL) as service,
        service.client() as client,
    ):
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        batch = client.post("/predict_batch", json={"rows": rows})
    assert batch.status_code == 200, batch.text
    return [p["prediction"] for p in batch.json()["predictions"]]


def test_model_declares_code_requirements_signature_and_example(registered):
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{MODEL}@champion")
    assert info.signature is not None and info.saved_input_example_info is not None
    inputs = {spec.name: spec for spec in info.signature.inputs.inputs}
    assert inputs and not any(spec.required for spec in inputs.values())
    local = mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion")
    assert os.path.isfile(os.path.join(local, "code", "zenloop", "bundle.py"))
    with open(os.path.join(local, "requirements.txt")) as file:
        requirements = file.read()
    for package in ("mlflow==", "scikit-learn==", "xgboost==", "pydantic=="):
        assert package in requirements


def test_loads_in_a_process_that_never_imported_zenloop(registered, rows, service_predictions):
    """A plain interpreter in an empty folder: zenloop comes from the model's code copy."""
    import mlflow

    local = mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, local, json.dumps(rows)],
        capture_output=True,
        text=True,
        cwd=local,
        check=True,
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["zenloop_file"].startswith(os.path.realpath(local)) or loaded[
        "zenloop_file"
    ].startswith(local)
    np.testing.assert_allclose(loaded["prediction"], service_predictions, rtol=1e-5)


def test_mlflow_serve_in_a_fresh_environment_predicts_like_the_service(
    registered, rows, service_predictions, tmp_path
):
    if shutil.which("uv", path=os.path.dirname(sys.executable)) is None and not shutil.which("uv"):
        pytest.fail("uv is missing: `make test` installs it (MLflow's env manager)")
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        "MLFLOW_ENV_ROOT": str(tmp_path / "envs"),
    }
    log = (tmp_path / "mlflow-serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/{MODEL}@champion",
            "--env-manager",
            ENV_MANAGER,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],  # fmt: skip
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "mlflow-serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise AssertionError("mlflow models serve did not come up")
        frame = pd.DataFrame(rows)
        body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
        response = httpx.post(f"{url}/invocations", json=body, timeout=60)
        assert response.status_code == 200, response.text
        served = response.json()["predictions"]
        served = [row["prediction"] for row in served] if isinstance(served[0], dict) else served
        np.testing.assert_allclose(served, service_predictions, rtol=1e-5)
    finally:
        os.killpg(process.pid, 15)
        process.wait(30)
