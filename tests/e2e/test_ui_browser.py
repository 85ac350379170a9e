"""The operations page and the service's /docs in headless Chromium, with no internet.

Against a real service that serves the retrained version and the monitor's history of a
drift -> retrain cycle: the served version, the drift table, the history plot, the
loop-health chart (a line per version, test figures, marks) and the retraining entry are
on the page; the prediction form answers; /docs renders the prediction endpoints. Every
request off 127.0.0.1 is aborted and must not be needed, and the whole walk must log no
console error and no uncaught exception (a Dash callback wired to a component missing
from the layout logs one on every load).
Screenshots go to test-output/screenshots/.
"""

import os
import time

import httpx
import pytest
from playwright.sync_api import Route, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, LOCAL_PREFIXES, VIEWPORT, screenshot
from tests.support.serving import register_models, running_service
from tests.support.ui import running_page, serve_retrained, write_history
from zenloop.config import DataConfig
from zenloop.deployment import request_rows

MODEL = "ui-browser-tests"
TIMEOUT_MS = 60_000
PREDICTIONS = 20
TRAFFIC_PAUSE_S = 0.1
NAVIGATION_ABORT = "net::ERR_ABORTED"
HTTP_TIMEOUT_S = 30.0
LOOP_MARKS = ("drift seen", "retraining started", "promotion")  # the history has no rollback


def _expected_health_legend(page_url: str) -> set[str]:
    """The legend the loop-health chart must show for the records, from the page's API."""
    checks = httpx.get(
        f"{page_url}/api/checks", params={"order": "oldest"}, timeout=HTTP_TIMEOUT_S
    ).json()
    measured = [c for c in checks if c["performance"]]
    names = {f"v{c['model_version']} {c['performance']['metric']}" for c in measured}
    names |= {f"v{c['model_version']} test" for c in measured}
    baselines = [c["performance"]["baseline_name"] for c in measured]
    names |= {f"baseline ({b})" for b in baselines if b}
    return names | set(LOOP_MARKS)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    registered = register_models(
        MODEL, DataConfig(n_rows=2_000, seed=6), ["xgboost", "random_forest"]
    )
    tmp = tmp_path_factory.mktemp("ui-browser")
    tracking = os.environ["MLFLOW_TRACKING_URI"]
    with running_service(tmp, MODEL, tracking_uri=tracking) as service:
        write_history(registered, service.log_db)
        serve_retrained(registered, service.url)
        with running_page(tmp, service.url, service.log_db) as page, service.client() as client:
            for row in request_rows(registered.holdout.head(PREDICTIONS)):  # traffic it samples
                assert client.post("/predict", json=row).status_code == 200
                time.sleep(TRAFFIC_PAUSE_S)
            yield service, page


def test_page_and_docs_in_a_browser_without_internet(setup):
    service, ops = setup
    blocked: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(LOCAL_PREFIXES):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    failed: list[str] = []
    errors: list[str] = []  # console errors and uncaught exceptions over the whole test
    with sync_playwright() as playwright:
        chromium = {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}
        browser = playwright.chromium.launch(**chromium)
        page = browser.new_page(viewport=VIEWPORT)
        page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.route("**/*", local_only)
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(ops.url)
            page.locator("#served-version").get_by_text("v2").wait_for()
            drift = page.locator("#drift-table")
            drift.get_by_text("unit_price").wait_for()
            assert "threshold" in drift.inner_text() and "verdict" in drift.inner_text()
            history = page.locator("#history-graph")
            history.locator(".main-svg").first.wait_for()
            history.get_by_text("retrain").first.wait_for()  # the legend of decisions
            history.get_by_text("v2 live").wait_for()  # the retrained version going live
            retrains = page.locator("#retrain-table")
            retrains.get_by_text("promoted and deployed").first.wait_for()
            assert "rmse" in retrains.inner_text()
            page.locator("#traffic-graph .main-svg").first.wait_for()
            health = page.locator("#health-graph")
            expected = _expected_health_legend(ops.url)
            assert {"v1 rmse", "v2 rmse", "v1 test", "v2 test"} <= expected, expected
            health.locator(".legendtext").get_by_text("v2 rmse", exact=True).wait_for()
            legend = set(health.locator(".legendtext").all_text_contents())
            assert legend == expected, (legend, expected)
            assert health.locator(".scatterlayer .trace").count() == len(expected)
            page.get_by_text("MLflow UI").wait_for()
            screenshot(page, "ui-01-operations-page", full_page=True)

            page.locator("#predict-button").click()
            result = page.locator("#prediction-output")
            result.get_by_text("model version: v2").wait_for()
            assert "prediction: " in result.inner_text()
            page.locator("#prediction-output").scroll_into_view_if_needed()
            screenshot(page, "ui-02-prediction-form")

            page.goto(f"{service.url}/docs")
            paths = page.locator(".opblock-summary-path")
            paths.first.wait_for()
            rendered = set(paths.all_inner_texts())
            assert {"/predict", "/predict_batch", "/model-info"} <= rendered, rendered
            screenshot(page, "ui-03-service-docs", full_page=True)
        except Exception:
            screenshot(page, "ui-failure", full_page=True)
            raise
        finally:
            browser.close()
    # requests still in flight when the test navigates away are aborted, not missing
    missing = [f for f in failed if not f.endswith(NAVIGATION_ABORT)]
    assert blocked == [] and missing == [], (blocked, missing)
    assert errors == [], errors
