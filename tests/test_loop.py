"""The whole loop on the local stack: real service, real monitor, real retraining processes."""

import subprocess
import sys

import pytest

from ops.replay import replay
from tests.browser_support import operations_page_after_the_loop
from tests.loop_support import (
    LENIENT,
    TARGET,
    drift_retrains_and_serves,
    loop_environment,
    orders,
    wait_for,
)
from tests.ui_support import running_page

pytestmark = pytest.mark.slow
BURN_S = 900  # the burner stops by itself even if the test is killed
BURNER = (
    f"import time\nend = time.monotonic() + {BURN_S}\nwhile time.monotonic() < end:\n    pass\n"
)


@pytest.fixture
def busy_machine():
    """A CPU-burning process beside the whole test: the loop must close on a busy machine."""
    burner = subprocess.Popen([sys.executable, "-c", BURNER])
    try:
        yield
    finally:
        burner.kill()
        burner.wait()


def test_drift_retrains_and_the_service_serves_the_new_champion(tmp_path, busy_machine):
    with loop_environment(tmp_path, "loop-ok", LENIENT) as loop:
        drift_retrains_and_serves(loop)
        # the operations page, reading this very cycle's service and history
        with running_page(tmp_path, loop.url, tmp_path / "log.db") as page:
            assert operations_page_after_the_loop(page.url, loop.served()).stat().st_size


def test_a_retrain_that_fails_its_gates_leaves_the_champion_serving(tmp_path):
    impossible = {"min_r2": 0.99999, "max_gap_pct": None}
    with loop_environment(tmp_path, "loop-gates", impossible) as loop:
        replay(
            loop.url,
            orders(4000, 404, "promotion_season"),
            TARGET,
            loop.token,
            pause_s=0.3,
            max_seconds=60,
            until=lambda v: loop.outcome() is not None,
        )
        outcome = wait_for(loop.outcome, "the retrain outcome", loop.wait_s)
        assert outcome["promoted"] is False
        assert "no candidate passed the quality gates" in outcome["summary"]
        assert loop.served() == "1"
        assert loop.history.recent_checks(50), "every check is in the monitor's history"
