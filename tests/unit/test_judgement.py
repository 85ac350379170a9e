"""Judgement a user can leave alone: time order, out-of-time splits, how much history to
learn from, models that follow a trend, naive baselines that must be beaten, keys and
leaks. Real fits on synthetic tables whose truth is known."""

import numpy as np
import pandas as pd
import pytest

from tests.support.data import lenient_gates
from zenloop.baselines import fit_baselines, rolling_baselines, score_baselines
from zenloop.config import (
    CandidateConfig,
    ColumnRole,
    FeatureConfig,
    HistoryConfig,
    ProfileConfig,
    SplitConfig,
    TrainingConfig,
)
from zenloop.in_process import train_in_process
from zenloop.metrics import primary_metric
from zenloop.promotion import decide, leaks_of
from zenloop.report import CandidateBoard
from zenloop.schema import FlagKind, infer_schema
from zenloop.time_order import find_time_column, ordered_split
from zenloop.training import backtest_history, fit_candidate, split_in_order

PROFILE = ProfileConfig()
RNG_SEED = 3


def _panel(months: int = 60, cities: int = 20, seed: int = RNG_SEED) -> pd.DataFrame:
    """A monthly panel: the price follows a trend of its month, plus each city's level."""
    rng = np.random.default_rng(seed)
    month = np.repeat(np.arange(months), cities)
    city = np.tile([f"c{i}" for i in range(cities)], months)
    level = np.tile(rng.normal(0, 20, cities), months)
    size = rng.uniform(50, 150, len(month))
    price = 100 + 3.0 * month + level + 0.5 * size + rng.normal(0, 5, len(month))
    return pd.DataFrame({"month": month, "city": city, "size": size, "price": price})


def test_the_time_column_is_found_from_its_values():
    panel = _panel()
    found = find_time_column(panel, "price", PROFILE)
    assert found is not None and found.name == "month"
    assert "never decreasing in file order" in found.reason
    dated = panel.assign(
        day=pd.Timestamp("2020-01-01") + pd.to_timedelta(panel["month"] * 30, unit="D")
    ).assign(day=lambda f: f["day"].dt.strftime("%Y-%m-%d"))
    assert find_time_column(dated.sample(frac=1.0, random_state=0), "price", PROFILE).name == "day"
    years = panel.assign(year=2000 + panel["month"] // 12).drop(columns="month")
    assert find_time_column(years.sample(frac=1.0, random_state=1), "price", PROFILE).name == "year"
    # measurements, a shuffled index and a row number do not order anything in time
    shuffled = panel.sample(frac=1.0, random_state=2).reset_index(drop=True)
    shuffled.insert(0, "row", np.arange(len(shuffled)))
    assert find_time_column(shuffled.drop(columns="month"), "price", PROFILE) is None


def test_an_out_of_time_split_keeps_the_latest_rows_for_validation_and_test():
    panel = _panel().sample(frac=1.0, random_state=0)  # the file is not in time order
    schema = infer_schema(panel, "price", "regression", PROFILE, FeatureConfig(), "p", "month")
    train, validation, test, order = split_in_order(panel, schema, SplitConfig())
    assert order == "time" and len(test) == round(0.2 * len(panel))
    assert train["month"].max() <= validation["month"].min()
    assert validation["month"].max() <= test["month"].min()
    exact = ordered_split(panel, "month", SplitConfig(test_rows=7, validation_rows=5))
    assert [len(part) for part in exact] == [len(panel) - 12, 5, 7]
    # without a time column the split is random, and the file order is ignored
    plain = infer_schema(panel, "price", "regression", PROFILE, FeatureConfig(), "p")
    *_, order = split_in_order(panel, plain, SplitConfig())
    assert order == "random"


def test_an_ordered_split_whose_training_rows_lack_a_class_falls_back_to_random():
    frame = pd.DataFrame({"t": np.arange(400), "x": np.arange(400) % 7})
    frame["label"] = np.where(frame["t"] < 360, "old", "new")  # "new" occurs only at the end
    schema = infer_schema(frame, "label", "classification", PROFILE, FeatureConfig(), "f", "t")
    train, _, _, order = split_in_order(frame, schema, SplitConfig())
    assert order == "random" and set(train["label"]) == {"old", "new"}


def _shifting(n: int = 4_000, seed: int = RNG_SEED) -> pd.DataFrame:
    """The relation turns around at 60% of the rows: only recent rows teach it."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    t = np.arange(n)
    slope = np.where(t < 0.6 * n, 10.0, -10.0)
    return pd.DataFrame({"t": t, "x": x, "y": slope * x + rng.normal(0, 1, n)})


def _history_splits(frame: pd.DataFrame, time_is_feature: bool = True):
    """Out-of-time splits; the time column orders the rows, and is a feature or not."""
    roles = {} if time_is_feature else {"t": ColumnRole.IGNORE}
    profile = ProfileConfig(column_roles=roles)
    schema = infer_schema(frame, "y", "regression", profile, FeatureConfig(), "f", "t")
    train, validation, test, _ = split_in_order(frame, schema, SplitConfig())
    return schema, {"train": train, "validation": validation, "test": test}


def test_the_history_backtest_learns_from_recent_rows_when_the_relation_moved():
    schema, splits = _history_splits(_shifting(), time_is_feature=False)
    probe = [CandidateConfig(name="hgb", family="hist_gradient_boosting")]
    config = HistoryConfig(recent_rows=500)
    choice = backtest_history(probe, schema, FeatureConfig(), splits, 0, config, ordered=True)[0]
    assert set(choice.scores) == {"all", "weighted", "recent"} and choice.probe == "hgb"
    assert choice.recipe in ("weighted", "recent"), choice
    assert choice.scores[choice.recipe] < 0.5 * choice.scores["all"], choice.scores
    assert choice.rows == {"all": len(splits["train"]), "weighted": len(splits["train"]),
                           "recent": 500}  # fmt: skip
    # a relation that holds: old rows are more data, and all of them win or tie
    noise = np.random.default_rng(0).normal(0, 1, 4_000)
    stable = _shifting().assign(y=lambda f: 10.0 * f["x"] + noise)
    schema, splits = _history_splits(stable, time_is_feature=False)
    kept = backtest_history(probe, schema, FeatureConfig(), splits, 0, config, ordered=True)[0]
    assert kept.scores["all"] <= kept.scores["recent"] * 1.05, kept.scores
    # no order, nothing to weigh
    unordered = backtest_history(probe, schema, FeatureConfig(), splits, 0, config, ordered=False)[
        0
    ]
    assert unordered.recipe == "all" and not unordered.scores and "random" in unordered.reason


def test_the_backtest_fit_of_the_chosen_rows_is_the_candidate_fit_it_saves():
    """The probe fitted on the chosen recipe's rows is reused by `fit_candidate`: the
    candidate is the same model a fit of its own gives, judged the same."""
    schema, splits = _history_splits(_shifting(), time_is_feature=False)
    candidates = [CandidateConfig(name="hgb", family="hist_gradient_boosting")]
    config = HistoryConfig(recent_rows=500)
    choice, probe = backtest_history(
        candidates, schema, FeatureConfig(), splits, 0, config, ordered=True
    )
    assert probe is not None and probe.candidate == "hgb"
    fits = [
        fit_candidate(
            candidates[0], schema, FeatureConfig(), lenient_gates(), splits, 0,
            history=choice, ordered=True, probe=reused,
        )
        for reused in (None, probe)
    ]  # fmt: skip
    (own, own_result), (saved, saved_result) = fits
    assert saved_result.metrics == own_result.metrics
    assert (saved_result.early_stopped, saved_result.rounds_used) == (
        own_result.early_stopped,
        own_result.rounds_used,
    )
    rows = splits["test"].drop(columns="y")
    np.testing.assert_array_equal(saved.pipeline.predict(rows), own.pipeline.predict(rows))
    # another candidate, or one that searches, fits on its own
    other = CandidateConfig(name="hgb2", family="hist_gradient_boosting")
    assert fit_candidate(
        other, schema, FeatureConfig(), lenient_gates(), splits, 0,
        history=choice, ordered=True, probe=probe,
    )[0].pipeline is not probe.pipeline  # fmt: skip
    _, none = backtest_history(candidates, schema, FeatureConfig(), splits, 0, config, False)
    assert none is None


def test_a_trend_is_followed_past_the_training_rows_by_the_extrapolating_candidates():
    schema, splits = _history_splits(_panel().rename(columns={"price": "y", "month": "t"}))
    results = {}
    for family in ("trend", "linear", "hist_gradient_boosting"):
        candidate = CandidateConfig(name=family, family=family)
        _, result = fit_candidate(
            candidate, schema, FeatureConfig(), lenient_gates(), splits, 0, ordered=True
        )
        results[family] = result.metrics["test"]["rmse"]
    # trees hold still past the last month they saw; a linear part goes on
    assert results["trend"] < 0.5 * results["hist_gradient_boosting"], results
    assert results["linear"] < 0.5 * results["hist_gradient_boosting"], results


def test_naive_baselines_are_fitted_on_earlier_rows_and_scored_on_later_ones():
    panel = _panel()
    schema = infer_schema(panel, "price", "regression", PROFILE, FeatureConfig(), "p", "month")
    history = panel[panel["month"] < 48]
    baselines = {b.name: b for b in fit_baselines(history, schema, window=100, ordered=True)}
    assert set(baselines) == {"recent mean", "recent median", "last period mean"}
    assert baselines["recent mean"].value == pytest.approx(history["price"].tail(100).mean())
    last = history[history["month"] == 47]["price"].mean()
    assert baselines["last period mean"].value == pytest.approx(last)
    later = panel[panel["month"] >= 48]
    scores = score_baselines(list(baselines.values()), later, schema, primary_metric("regression"))
    assert scores["last period mean"] < scores["recent mean"], "the latest level is nearer"


def test_rolling_baselines_forecast_each_row_from_the_rows_before_it():
    y = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    mean = rolling_baselines(y, "regression", 0, window=2, min_history=1)[0]
    assert mean.predicted[1:].tolist() == [1.0, 2.0, 4.0, 6.0]
    assert mean.scored.tolist() == [False, True, True, True, True]
    y, times = np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0]), np.array([1.0, 1, 1, 2, 2, 2])
    _, last = rolling_baselines(y, "regression", 0, window=10, min_history=1, times=times)
    assert last.name == "last period mean"
    assert last.predicted[3:].tolist() == [3.0, 3.0, 3.0]  # the mean of the earlier period
    assert last.scored.tolist() == [False, False, False, True, True, True]
    unique = np.arange(6.0)  # a timestamp per row names no period
    assert len(rolling_baselines(y, "regression", 0, 10, 1, times=unique)) == 1
    codes = np.array([0, 0, 1, 1, 1])
    prior = rolling_baselines(codes, "classification", 2, window=3, min_history=2)[0]
    assert prior.proba[4].tolist() == pytest.approx([2 / 5, 3 / 5])  # 1 of 0, 2 of 1, +1 each


def test_a_candidate_that_does_not_beat_a_naive_baseline_is_not_promoted():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"t": np.arange(1_000), "noise": rng.normal(size=1_000)})
    frame["y"] = 50 + rng.normal(0, 1, 1_000)  # nothing to learn: the mean is the best
    config = TrainingConfig.model_validate(
        {
            "data": {"source": "file", "path": "f.csv", "target": "y", "time_column": "t"},
            "candidates": [{"name": "forest", "family": "random_forest",
                            "params": {"min_samples_leaf": 1, "max_features": 1.0}}],
            "gates": {"min_r2": None, "max_gap_pct": None},
        }
    )  # fmt: skip
    trained = train_in_process(frame.drop(columns="t").assign(t=frame["t"]), config)
    decision = decide(
        "m", trained.board, trained.best(), None, None, {"test": trained.splits["test"]},
        0.0, trained.baselines,
    )  # fmt: skip
    assert not decision.promoted and decision.beats_baselines is False
    assert "does not beat a naive baseline" in decision.reason
    assert decision.out_of_time and "out-of-time on 't'" in decision.split
    markdown = decision.to_markdown()
    assert "recent mean" in markdown and "Validation" in markdown


def test_without_a_time_column_the_summary_says_the_split_is_random():
    frame = _panel().drop(columns="month")
    config = TrainingConfig.model_validate(
        {
            "data": {"source": "file", "path": "f.csv", "target": "price"},
            "candidates": [{"name": "linear", "family": "linear"}],
            "gates": {"min_r2": None, "max_gap_pct": None},
        }
    )
    trained = train_in_process(frame, config)
    decision = decide(
        "m", trained.board, trained.best(), None, None, {"test": trained.splits["test"]},
        0.0, trained.baselines,
    )  # fmt: skip
    assert decision.promoted and not decision.out_of_time
    assert "no column orders the rows in time" in decision.to_markdown()
    assert set(decision.baselines) == {"training mean", "training median"}


def _loans(n: int = 2_000, seed: int = RNG_SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, n)
    bad = rng.random(n) < 1 / (1 + np.exp((income - 25_000) / 5_000))
    # a column recorded after the outcome: collections start for most bad loans, some good
    collections = np.where(bad, rng.random(n) < 0.9, rng.random(n) < 0.05).astype(int)
    return pd.DataFrame(
        {
            "loan_id": rng.integers(0, int(n * 0.9), n),  # repeated codes, about 64% distinct
            "branch": rng.choice([f"B{i:04d}" for i in range(int(n * 0.9))], n),
            "income": income.round(0),
            "collections": collections,
            # an amount that differs on every row: skewed, not spread like codes
            "deposits": rng.permutation(np.unique(rng.lognormal(8, 1.5, 3 * n).round()))[:n],
            # amounts that a few rows share: skewed too, a measure and no key
            "savings": rng.lognormal(9, 1.5, n).round(-1),
            "bad": np.where(bad, "bad", "good"),
        }
    )


def test_keys_are_flagged_and_ignored_and_a_strong_leak_is_flagged():
    frame = _loans()
    schema = infer_schema(frame, "bad", "classification", PROFILE, FeatureConfig(), "loans")
    for key in ("loan_id", "branch"):
        spec = schema.column(key)
        assert spec.role == ColumnRole.IGNORE, spec
        assert [f.kind for f in spec.flags][:1] == [FlagKind.KEY], spec
    assert "distinct" in schema.column("branch").flags[0].reason
    leak = schema.column("collections")
    assert leak.role != ColumnRole.IGNORE and leak.flagged(FlagKind.TARGET_PROXY)
    assert leak.alone_score >= 0.9
    assert not schema.column("income").flagged(FlagKind.KEY), "a measure, not a key"
    assert not schema.column("deposits").flags, "distinct skewed integers: an amount"
    assert not schema.column("savings").flagged(FlagKind.KEY), "repeated skewed integers too"
    assert any(item.startswith("collections (target_proxy") for item in schema.suspected_leaks())


def test_a_column_close_to_the_whole_model_is_flagged_after_training():
    frame = _loans()
    profile = ProfileConfig(leak_threshold=0.99)  # the strong-alone rule off, the margin on
    schema = infer_schema(frame, "bad", "classification", profile, FeatureConfig(), "loans")
    assert not schema.column("collections").flags
    train, validation, test, _ = split_in_order(frame, schema, SplitConfig())
    splits = {"train": train, "validation": validation, "test": test}
    bundle, result = fit_candidate(
        CandidateConfig(name="linear", family="linear"), schema, FeatureConfig(),
        lenient_gates(), splits, 0,
    )  # fmt: skip
    leaks = leaks_of(bundle, profile)
    assert any("collections" in leak and "within 0.05 of the whole model" in leak for leak in leaks)
    board = CandidateBoard("classification", [result])
    decision = decide("m", board, bundle, None, None, {"test": test}, 0.0, profile=profile)
    assert "collections" in " ".join(decision.suspected_leaks)
