"""`--stop` finds what was started, whatever config it was started with; `--port` moves it.
On the local stack, ZenML lists what `zenloop serve --detach` deployed.

Real `zenloop serve --detach` deployments (the local stack's deployer) and `zenloop ui`
processes, in a data folder of their own.
"""

import os

import httpx
import yaml

from tests.support.pipelines import BIN, run_command, stack_up
from tests.support.serving import free_port


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_stop_finds_a_service_and_a_page_started_with_their_own_configs(tmp_path):
    zenloop = str(BIN / "zenloop")
    env = {**os.environ, "ZENLOOP_DATA_DIR": str(tmp_path / "data")}
    first, second, page_port = free_port(), free_port(), free_port()
    serving = tmp_path / "serving.yaml"
    serving.write_text(
        yaml.safe_dump(
            {
                "port": first,
                "model": {"name": "nothing-registered"},  # up, not ready: enough here
                "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "events": {"url": None},
            }
        )
    )
    page = tmp_path / "ui.yaml"
    page.write_text(yaml.safe_dump({"serving_config": str(serving), "tracking_uri": "none"}))
    stack_up()  # the local stack's deployer runs the services
    run_command(zenloop, "serve", "-c", str(serving), "--detach", env=env)
    run_command(zenloop, "serve", "-c", str(serving), "--port", str(second), "--detach", env=env)
    run_command(zenloop, "ui", "-c", str(page), "--port", str(page_port), "--detach", env=env)
    urls = [f"http://127.0.0.1:{p}/health" for p in (first, second)]
    page_url = f"http://127.0.0.1:{page_port}/api/health"
    assert all(_answers(url) for url in [*urls, page_url])
    listed = run_command(
        str(BIN / "zenml"), "deployment", "list", "--columns", "name,status,url", env=env
    ).stdout
    for port in (first, second):  # ZenML lists both, running at their URLs
        assert f"nothing-registered-{port}" in listed and f"http://127.0.0.1:{port}" in listed
    assert listed.count("RUNNING") >= 2, listed

    narrowed = run_command(zenloop, "serve", "--stop", "--port", str(second), env=env)
    assert f"stopped service nothing-registered-{second}" in narrowed.stdout
    assert not _answers(urls[1])
    assert _answers(urls[0]), "--port stops only that one"
    stopped = run_command(zenloop, "serve", "--stop", env=env)  # no -c: the default config
    assert stopped.stdout.count("stopped service") == 1 and not _answers(urls[0])
    assert "no service is running" in run_command(zenloop, "serve", "--stop", env=env).stdout

    pages = run_command(zenloop, "ui", "--stop", env=env)
    assert "stopped operations page pid" in pages.stdout and not _answers(page_url)
