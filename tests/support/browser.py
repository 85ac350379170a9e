"""A user's walk through the ZenML dashboard and the MLflow UI, in headless Chromium.

The browser is Debian's chromium (installed by `make test`), driven by Playwright with
`executable_path`; nothing is downloaded. Only 127.0.0.1 is reached: every other request
(the dashboard asks for avatars and logos on the internet) is refused. Screenshots go to
test-output/screenshots/ beside the test's other output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import FrameLocator, Locator, Page, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# --disable-3d-apis: the dashboard's WebGL background keeps a software-GL renderer so busy
# that every Playwright call times out; the rest keep Chromium off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-3d-apis",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_PREFIXES = ("http://127.0.0.1", "data:", "blob:")
TIMEOUT_MS = 60_000
SURVEY_WAIT_MS = 15_000  # a fresh server redirects to its survey within this
SHEET_WAIT_MS = 10_000  # an artifact's sheet opens within this after a click on its node
NODE_CLICK_ATTEMPTS = 4
VIEWPORT = {"width": 1440, "height": 1000}
RETRAIN_RUN = re.compile(r"retrain-after-(\S+)")
PIPELINE_NAME = "inference_pipeline"  # the service's deployment runs it


def _local_only(route: Route) -> None:
    if route.request.url.startswith(LOCAL_PREFIXES):
        route.continue_()
    else:
        route.abort()


def screenshot(page: Page, name: str, full_page: bool = False) -> Path:
    """A picture of the page for people to look at (tests assert on the page's text)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def _onboarding(page: Page) -> None:
    """A fresh local server asks who you are; answer as a user would."""
    try:
        page.wait_for_url(re.compile(r"/survey"), timeout=SURVEY_WAIT_MS)
    except PlaywrightTimeoutError:  # answered before: the dashboard opens directly
        return
    page.locator("input[name=fullName]").fill("zenloop operator")
    news = page.get_by_role("checkbox")
    if news.count() and news.first.is_checked():
        news.first.click()  # "send me news" needs an email; no
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("ML Engineer", exact=True).click()
    page.get_by_text("My Laptop", exact=True).click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("Skip this step").click()
    # "Congratulations": the answers are saved; the next page we open is the dashboard
    page.get_by_text("Go to Dashboard").wait_for()  # a link styled as a button


def _runs_named(page: Page, dashboard: str, filter_value: str) -> None:
    """The dashboard's run list, searched by name (the search box's own URL)."""
    page.goto(f"{dashboard}/projects/default/runs?name={quote(filter_value)}&operator=or&page=1")


def _mouse_click(page: Page, target: Locator) -> None:
    """A mouse click at the element's centre: Playwright's click() was seen to hang on the
    dashboard with this Chromium, and a node of the DAG canvas ignores it at times."""
    target.wait_for()
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None, f"{target} has no box on the page"
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def _open_visualization(page: Page, artifact: str) -> None:
    """Click an artifact node of the open run's DAG and show its first visualization.

    The canvas can swallow a click while it is still laying out and fitting the view, so
    the node is clicked again (a bounded number of times) until its sheet opens.
    """
    node = page.get_by_text(artifact, exact=True).locator("visible=true").first
    dialog = page.get_by_role("dialog").first
    for attempt in range(1, NODE_CLICK_ATTEMPTS + 1):
        _mouse_click(page, node)
        try:
            dialog.wait_for(timeout=SHEET_WAIT_MS)
            break
        except PlaywrightTimeoutError:
            if attempt == NODE_CLICK_ATTEMPTS:
                raise
    dialog.get_by_role("tab", name="Visualization").click()
    preview = page.get_by_role("button", name="Load Preview")
    preview.wait_for()
    preview.click()


def _report_frame(page: Page) -> FrameLocator:
    return page.frame_locator("iframe[title='Secure HTML Content']").first


@contextmanager
def local_browser_page(failure_shot: str) -> Iterator[Page]:
    """A headless page that reaches only 127.0.0.1; a screenshot is saved if the walk fails."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(TIMEOUT_MS)
        page.route("**/*", _local_only)
        try:
            yield page
        except Exception:
            screenshot(page, failure_shot)
            raise
        finally:
            browser.close()


def dashboard_walkthrough(dashboard: str, mlflow_url: str, model: str) -> dict[str, str]:
    """Onboarding, a training run's candidate board, the drift report of the monitoring run
    that triggered a retraining (found from the run list), and the champion in MLflow.

    Returns what each page showed (its text); a screenshot of each is kept for people."""
    shown: dict[str, str] = {}
    with local_browser_page("failure") as page:
        page.goto(dashboard)
        _onboarding(page)

        _runs_named(page, dashboard, "startswith:retrain-after-")
        retrain_link = page.get_by_text(RETRAIN_RUN).first
        retrain_link.wait_for()
        shown["run_list"] = retrain_link.inner_text()
        screenshot(page, "01-run-list-retraining")
        trigger = RETRAIN_RUN.search(shown["run_list"]).group(1)

        retrain_link.click()  # the retraining is a training run: its candidate board
        page.get_by_text("train_candidates", exact=True).first.wait_for()
        _open_visualization(page, "candidate_board")
        dialog = page.get_by_role("dialog").first
        dialog.get_by_text(re.compile("Candidates")).first.wait_for()
        shown["candidate_board"] = dialog.inner_text()
        screenshot(page, "02-training-run-candidate-board")

        _runs_named(page, dashboard, trigger)
        page.get_by_text(trigger).first.click()
        page.get_by_text("check_window_drift", exact=True).first.wait_for()
        _open_visualization(page, "drift_check")
        report = _report_frame(page)
        report.locator("table").first.wait_for()
        shown["drift_report_header"] = report.locator("table").first.inner_text()
        shown["drift_report"] = report.locator("body").inner_text()
        screenshot(page, "03-monitoring-run-drift-report")

        page.goto(f"{mlflow_url}/#/models/{model}")
        page.get_by_text("champion").first.wait_for()
        shown["mlflow_model"] = page.locator("body").inner_text()
        screenshot(page, "04-mlflow-registered-model-champion")
    return shown


def operations_page_after_the_loop(page_url: str, served: str) -> dict[str, str]:
    """The operations page after a real drift -> retrain cycle: the text of what serves,
    the drift table and the retraining table (the history plot must be drawn)."""
    with local_browser_page("failure-operations-page") as page:
        page.goto(page_url)
        page.locator("#served-version").get_by_text(f"v{served}").wait_for()
        page.locator("#drift-table").get_by_text("threshold").wait_for()
        page.locator("#history-graph .main-svg").first.wait_for()
        page.locator("#retrain-table").get_by_text("promoted and deployed").first.wait_for()
        screenshot(page, "05-operations-page-after-the-loop")
        return {
            part: page.locator(f"#{part}").inner_text()
            for part in ("served-version", "drift-table", "retrain-table")
        }


def deployment_pages(dashboard: str, name: str, deployment_id: str) -> dict[str, str]:
    """The dashboard's deployment list and the deployment's own page, as a user opens them.

    Returns each page's text; a screenshot of each is kept for people."""
    shown: dict[str, str] = {}
    with local_browser_page("deployment-failure") as page:
        page.goto(dashboard)
        _onboarding(page)
        page.goto(f"{dashboard}/projects/default/deployments")
        page.get_by_text(name).first.wait_for()
        shown["list"] = page.locator("body").inner_text()
        screenshot(page, "05-deployments")
        page.goto(f"{dashboard}/projects/default/deployments/{deployment_id}")
        page.get_by_text(PIPELINE_NAME).first.wait_for()
        shown["deployment"] = page.locator("body").inner_text()
        screenshot(page, "06-deployment")
    return shown
