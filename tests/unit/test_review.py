"""The review of a promotion on the labelled rows after it: both versions on the same rows,
a verdict once enough are in, a rollback only with confidence; and the drift check's
naive baseline. Real models, the real prediction log and monitor records (SQLite)."""

import numpy as np
import pandas as pd

from monitoring.drift import _performance
from monitoring.log_store import PredictionLogStore, PredictionRecord
from monitoring.review import Verdict, review
from monitoring.scoring import labelled_rows, worse_probability
from monitoring.state_store import LaterScores, MonitorStore, RetrainErrors
from tests.support.data import lenient_gates
from zenloop.config import (
    CandidateConfig,
    DriftConfig,
    FeatureConfig,
    ProfileConfig,
    RollbackConfig,
)
from zenloop.deployment import request_rows
from zenloop.metrics import primary_metric
from zenloop.schema import infer_schema
from zenloop.training import fit_candidate, split_frame

RMSE = primary_metric("regression")


def _frame(n: int, slope: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    return pd.DataFrame({"x": x, "y": slope * x + rng.normal(0, 1, n)})


def _model(slope: float, seed: int):
    frame = _frame(600, slope, seed)
    schema = infer_schema(frame, "y", "regression", ProfileConfig(), FeatureConfig(), "f")
    splits = dict(
        zip(("train", "validation", "test"), split_frame(frame, schema, _split()), strict=True)
    )
    bundle, _ = fit_candidate(
        CandidateConfig(name="linear", family="linear"), schema, FeatureConfig(),
        lenient_gates(), splits, 0,
    )  # fmt: skip
    return bundle


def _split():
    from zenloop.config import SplitConfig

    return SplitConfig()


def _log(store: PredictionLogStore, bundle, frame: pd.DataFrame, version: str, start: int) -> None:
    """Served by `bundle` as `version`, then labelled."""
    predicted = bundle.predict_frame(frame)["prediction"]
    records = [
        PredictionRecord(f"r{start + i}", float(start + i), version, row, float(value))
        for i, (row, value) in enumerate(
            zip(request_rows(frame.drop(columns="y")), predicted, strict=True)
        )
    ]
    store.append(records)
    store.add_feedback([(f"r{start + i}", float(v)) for i, v in enumerate(frame["y"])], now=1.0)


def test_a_promotion_worse_on_later_rows_is_rolled_back_and_a_better_one_kept(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log, records = PredictionLogStore(url), MonitorStore(url)
    old, new_worse, new_better = _model(2.0, 1), _model(3.0, 2), _model(2.0, 3)
    later = _frame(400, 2.0, 9)  # the world kept the old relation
    retrain = records.start_retrain("m", None)
    records.finish_retrain(retrain, True, "2", "promoted", errors=RetrainErrors("rmse", 5, 4, 100),
                           replaced_version="1")  # fmt: skip
    promotion = records.promotion_of("m", "2")
    assert promotion["replaced_version"] == "1"
    _log(log, new_worse, later, "2", 0)
    rows = log.labelled_rows_of("2", 10_000)
    labelled = labelled_rows(rows, new_worse.schema)
    replaced = old.predict_raw(labelled.rows)
    config, drift = RollbackConfig(after_rows=300), DriftConfig()

    waiting = review("m", "2", promotion, _first(labelled, 100), _first_out(replaced, 100),
                     new_worse.schema, config, drift)  # fmt: skip
    assert waiting.verdict == Verdict.WAITING and waiting.rows == 100
    assert waiting.after > waiting.before, "both figures on the same rows already"

    verdict = review("m", "2", promotion, labelled, replaced, new_worse.schema, config, drift)
    assert verdict.verdict == Verdict.ROLLBACK, verdict
    assert verdict.worse_probability >= 0.95 and verdict.rows == 400
    assert "rmse v1" in verdict.summary() and "-> v2" in verdict.summary()
    records.record_later_scores(
        retrain, LaterScores(verdict.rows, verdict.before, verdict.after, verdict.baseline,
                             verdict.reason),
    )  # fmt: skip
    records.record_rollback(retrain, verdict.reason, log_id=400)
    assert records.promotion_of("m", "2") is None, "a rolled-back promotion is not reviewed again"
    assert records.retrained_at("m", "1") is not None, "the restored version cools down"

    kept = review("m", "3", {**promotion, "review": None}, *_served(new_better, later, old),
                  new_better.schema, config, drift)  # fmt: skip
    assert kept.verdict == Verdict.KEPT and "confidence only" in kept.reason
    again = review("m", "3", {**promotion, "review": kept.reason}, *_served(new_worse, later, old),
                   new_worse.schema, config, drift)  # fmt: skip
    assert again.verdict == Verdict.KEPT, "a verdict once made stands"
    off = review("m", "2", {**promotion, "review": None}, labelled, replaced, new_worse.schema,
                 RollbackConfig(after_rows=300, enabled=False), drift)  # fmt: skip
    assert off.verdict == Verdict.KEPT and "rollback is off" in off.reason


def _first(labelled, n):
    from monitoring.scoring import Labelled

    return Labelled(labelled.rows.head(n), labelled.y[:n], labelled.predicted[:n], None)


def _first_out(outputs, n):
    return outputs[0][:n], None


def _served(bundle, frame, old):
    from monitoring.scoring import Labelled

    predicted, _ = bundle.predict_raw(frame)
    labelled = Labelled(frame, frame["y"].to_numpy(float), predicted, None)
    return labelled, old.predict_raw(frame)


def test_the_paired_bootstrap_needs_more_than_luck():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, 500)
    same = (y + rng.normal(0, 1, 500), None)
    assert worse_probability(RMSE, y, same, same, 400) == 0.0, "a tie is never worse"
    slightly = (y + (same[0] - y) * 1.01, None)  # 1% more error on every row
    assert worse_probability(RMSE, y, slightly, same, 400) > 0.99, "paired: it is systematic"
    assert worse_probability(RMSE, y, slightly, same, 400, margin=0.05) == 0.0, "but tolerated"
    worse = (y + rng.normal(0, 2, 500), None)
    assert worse_probability(RMSE, y, worse, same, 400) > 0.99
    assert worse_probability(RMSE, y, same, worse, 400) < 0.01


def test_the_drift_check_compares_the_champion_with_a_naive_baseline(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLogStore(url)
    model = _model(2.0, 1)
    later = _frame(600, 2.0, 5)
    _log(log, model, later, "1", 0)
    window = log.last_rows(1_000)
    check = _performance(window, model.schema, model.metrics["test"], DriftConfig())
    assert check.metric == "rmse" and check.baseline_name == "recent mean"
    assert check.baseline_rows == 600 - 50 and not check.behind_baseline
    assert check.model_on_baseline_rows < check.baseline_value
    # the world changed: the champion's answers are now worse than a running mean
    flat = later.assign(y=50.0 + np.random.default_rng(2).normal(0, 1, 600))
    log2 = PredictionLogStore(f"sqlite:///{tmp_path / 'log2.db'}")
    _log(log2, model, flat, "1", 0)
    behind = _performance(log2.last_rows(1_000), model.schema, model.metrics["test"], DriftConfig())
    assert behind.behind_baseline and behind.degraded
    assert "behind the naive baseline 'recent mean'" in behind.baseline_alert()
