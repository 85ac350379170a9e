"""The deployment pipeline: checks, hand-over to a running service, refusal leaves it untouched."""

import httpx
import pytest

from tests.support.pipelines import BIN, run_command, run_config, stack_up
from tests.support.serving import free_port, serving_file

MODEL = "deploy-tests"
TRAINING = {
    "data": {"n_rows": 2000, "seed": 3},
    "candidates": [{"name": "xgboost", "family": "xgboost", "params": {"n_estimators": 40}}],
    "gates": {"min_r2": 0.5, "max_gap_pct": None},
    "reference": {"sample_size": 200},
}


def test_deploy_hands_over_to_the_service_and_a_failed_check_leaves_it_untouched(tmp_path):
    stack_up()
    run_command(
        str(BIN / "zenloop"), "train", "-c", str(run_config(tmp_path / "t.yaml", TRAINING, MODEL))
    )
    port = free_port()
    serving = serving_file(tmp_path, port, MODEL, tmp_path / "log.db")
    deploy = {"model_name": MODEL, "service_url": f"http://127.0.0.1:{port}", "latency_samples": 50}
    url = f"http://127.0.0.1:{port}"
    try:
        run_command(str(BIN / "zenloop"), "serve", "--detach", "-c", str(serving))
        waiting = httpx.get(f"{url}/ready")
        assert waiting.status_code == 503, "no version is validated yet: nothing may serve"
        run_command(
            str(BIN / "zenml"),
            "pipeline",
            "run",
            "pipelines.deployment.deployment_pipeline",
            "-c",
            str(run_config(tmp_path / "d.yaml", deploy, MODEL, key="deploy")),
        )
        assert httpx.get(f"{url}/ready").json() == {"status": "ready", "model_version": "1"}
        row = {
            "order_ts": "2025-03-01T10:00:00",
            "category": "Books",
            "sub_category": "Novel",
            "seller_id": "S000001",
            "product_title": "Novaco Classic Blue Novel 123",
            "unit_price": 12.5,
            "quantity": 2,
            "discount": 0.0,
            "tax": 1.0,
            "shipping_cost": 4.99,
            "payment_method": "card",
            "city": "Austin",
            "state": "TX",
            "country": "US",
        }
        assert httpx.post(f"{url}/predict", json=row).status_code == 200

        impossible = {**deploy, "max_p50_latency_ms": 0.0001}
        refused = run_command(
            str(BIN / "zenloop"),
            "deploy",
            "-c",
            str(run_config(tmp_path / "d2.yaml", impossible, MODEL, key="deploy")),
            "--serving-config",
            str(serving),
            check=False,
        )
        assert refused.returncode != 0
        assert "was not deployed; the live model is untouched" in refused.stdout + refused.stderr
        assert httpx.get(f"{url}/ready").json()["model_version"] == "1"

        status = run_command(str(BIN / "zenloop"), "status", "-c", str(serving))
        assert f"serving {MODEL} v1" in status.stdout
    finally:
        stopped = run_command(
            str(BIN / "zenloop"), "serve", "--stop", "-c", str(serving), check=False
        )
    assert f"stopped service {MODEL}-{port}" in stopped.stdout
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=2.0)
