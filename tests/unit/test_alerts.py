"""Alerts: each happening told once, from the monitor's records, through a real ZenML
alerter component of the webhook flavor, received on a local HTTP server."""

from monitoring.alerts import AlertCursor, AlertEvent, new_alerts
from ops.webhook_alerter import AlertParameters, WebhookAlerter, WebhookAlerterConfig
from tests.support.webhook import webhook

BEHIND = {
    "metric": "rmse", "window_value": 30.0, "test_value": 10.0, "ratio": 3.0,
    "labelled_rows": 400, "degraded": True, "max_ratio": 1.5, "behind_baseline": True,
    "baseline_name": "recent mean", "baseline_value": 20.0, "model_on_baseline_rows": 30.0,
    "baseline_rows": 400,
}  # fmt: skip


def _check(id_: int, retrain: bool, performance: dict | None = None) -> dict:
    report = {"model_version": "1", "performance": performance}
    return {"id": id_, "retrain": retrain, "reason": "5/13 columns drifted", "report": report}


def _retrain(id_: int, **fields) -> dict:
    base = {
        "id": id_, "finished_at": None, "failed": False, "promoted": False,
        "deployed_version": None, "replaced_version": "1", "summary": "", "review": None,
        "rolled_back_at": None,
    }  # fmt: skip
    return {**base, **fields}


def test_each_happening_is_told_once_and_the_past_is_no_news():
    cursor = AlertCursor.from_now([_check(1, True)], [_retrain(1, finished_at=1.0, failed=True)])
    assert new_alerts("m", [_check(1, True)], [], cursor) == [], "before the monitor started"

    checks = [_check(3, False, BEHIND), _check(2, True)]  # newest first, as stored
    running = [_retrain(2)]
    told = new_alerts("m", checks, running, cursor)
    assert [a.event for a in told] == [AlertEvent.DRIFT_CONFIRMED, AlertEvent.BEHIND_BASELINE]
    assert new_alerts("m", checks, running, cursor) == [], "told once"

    promoted = [_retrain(2, finished_at=2.0, promoted=True, deployed_version="2")]
    (promotion,) = new_alerts("m", checks, promoted, cursor)
    assert promotion.event == AlertEvent.PROMOTION and "v2 promoted" in promotion.message
    rolled = [{**promoted[0], "rolled_back_at": 3.0, "review": "rolled back: worse"}]
    (rollback,) = new_alerts("m", checks, rolled, cursor)
    assert rollback.event == AlertEvent.ROLLBACK and "rolled back" in rollback.message
    failed = [_retrain(4, finished_at=4.0, failed=True, summary="boom"), *rolled]
    (failure,) = new_alerts("m", checks, failed, cursor)
    assert failure.event == AlertEvent.RETRAINING_FAILED and "boom" in failure.message
    still_behind = [_check(5, False, BEHIND), *checks]
    assert new_alerts("m", still_behind, failed, cursor) == [], "behind is told when it begins"


def test_the_webhook_alerter_posts_slack_text_and_the_alerts_fields():
    with webhook() as hook:
        alerter = WebhookAlerter(
            name="hook", id=None, config=WebhookAlerterConfig(webhook_url=hook.url),
            flavor="zenloop_webhook", type="alerter", user=None, created=None, updated=None,
        )  # fmt: skip
        params = AlertParameters(event="promotion", model="m", where="zenloop status")
        assert alerter.post("m: v2 promoted", params)
        (body,) = hook.received
        assert body["text"] == "m: v2 promoted (see zenloop status)"
        assert body["event"] == "promotion" and body["model"] == "m"
    assert not alerter.post("nobody listens", params), "undelivered: False, no exception"


def test_every_stack_file_loads_and_has_the_webhook_alerter():
    from ops.stacks import load_stack_file, stack_names

    for name in stack_names():
        stack = load_stack_file(name)  # validated: a misplaced block fails here
        assert stack.components["alerter"].flavor == "zenloop_webhook", name
        assert any(f.kind == "alerter" for f in stack.flavors), f"{name} registers the flavor"
