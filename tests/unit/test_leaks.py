"""Leak and id detection at profiling time, and how it reaches the promotion decision."""

import numpy as np
import pandas as pd

from tests.support.data import lenient_gates
from zenloop.config import CandidateConfig, ColumnRole, FeatureConfig, ProfileConfig, SplitConfig
from zenloop.promotion import decide
from zenloop.report import CandidateBoard
from zenloop.schema import FlagKind, index_flag, infer_schema
from zenloop.training import fit_candidate, split_frame


def leaky_frame(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """Rows sorted by price with their row number in front, and the price again in cents."""
    rng = np.random.default_rng(seed)
    carat = rng.gamma(2.0, 0.4, n)
    cut = rng.choice(["Fair", "Good", "Ideal"], n)
    price = (
        2_000 * carat + 2_500 * (cut == "Ideal") + 1_200 * (cut == "Good") + rng.normal(0, 400, n)
    )
    frame = pd.DataFrame({"carat": carat.round(2), "cut": cut, "price": price.round(0)})
    frame = frame.sort_values("price", kind="stable").reset_index(drop=True)
    frame.insert(0, "row", np.arange(1, n + 1))
    frame["price_cents"] = frame["price"] * 100
    return frame


def _schema(frame: pd.DataFrame, profile: ProfileConfig | None = None, task="regression"):
    target = "price" if task == "regression" else "label"
    return infer_schema(
        frame, target, task, profile or ProfileConfig(), FeatureConfig(), "leaky.csv"
    )


def test_row_numbers_and_target_copies_are_flagged():
    schema = _schema(leaky_frame())
    row = schema.column("row")
    assert row.role == ColumnRole.IGNORE  # index-like: ignored by default
    # sorted by price, the row number alone predicts it: both flags, and it stays ignored
    assert [f.kind for f in row.flags] == [FlagKind.ROW_NUMBER, FlagKind.TARGET_PROXY]
    assert "ordered with the target" in row.flags[0].reason
    copy = schema.column("price_cents")
    assert copy.role == ColumnRole.NUMERIC  # a suspected leak is reported, not dropped
    assert [f.kind for f in copy.flags] == [FlagKind.TARGET_PROXY]
    assert not schema.column("carat").flags and not schema.column("cut").flags
    leaks = schema.suspected_leaks()
    assert len(leaks) == 1 and leaks[0].startswith("price_cents (target_proxy")
    assert schema.ignored_index_columns() == ["row"]
    markdown = schema.to_markdown()
    assert "Suspected leaks" in markdown and "row_number: the integers 1..2000" in markdown


def test_column_roles_override_the_default_ignore_and_the_flag_stays():
    schema = _schema(leaky_frame(), ProfileConfig(column_roles={"row": ColumnRole.NUMERIC}))
    assert schema.column("row").role == ColumnRole.NUMERIC
    assert [leak.split(" ")[:2] for leak in schema.suspected_leaks()] == [
        ["row", "(row_number:"],
        ["row", "(target_proxy:"],
        ["price_cents", "(target_proxy:"],
    ]
    off = _schema(leaky_frame(), ProfileConfig(ignore_index_columns=False, leak_threshold=None))
    assert off.column("row").role == ColumnRole.NUMERIC
    assert not off.column("price_cents").flags


def test_counters_and_keys_are_told_apart_from_measurements():
    n = 500
    rng = np.random.default_rng(1)
    assert index_flag(pd.Series(np.arange(10, 10 + 3 * n, 3))).kind == FlagKind.COUNTER
    assert index_flag(pd.Series(rng.permutation(10 * n)[:n])).kind == FlagKind.UNIQUE_KEY
    assert index_flag(pd.Series([f"K{i:05d}" for i in rng.permutation(n)])).kind == (
        FlagKind.UNIQUE_KEY
    )
    assert index_flag(pd.Series(rng.normal(size=n))) is None  # distinct floats are measures
    assert index_flag(pd.Series(rng.integers(0, 50, n))) is None


def test_a_label_in_disguise_is_flagged_for_classification():
    frame = leaky_frame()
    frame["label"] = np.where(frame["price"] > frame["price"].median(), "high", "low")
    frame["grade"] = frame["label"].map({"high": "A", "low": "B"})
    schema = _schema(frame.drop(columns=["price", "price_cents"]), task="classification")
    assert [f.kind for f in schema.column("grade").flags] == [FlagKind.TARGET_PROXY]


def test_the_promotion_decision_reports_suspected_leaks():
    frame = leaky_frame()
    schema = _schema(frame)
    train, validation, test = split_frame(frame, schema, SplitConfig())
    splits = {"train": train, "validation": validation, "test": test}
    candidate = CandidateConfig(name="linear", family="linear")
    bundle, result = fit_candidate(candidate, schema, FeatureConfig(), lenient_gates(), splits, 0)
    board = CandidateBoard(task="regression", results=[result])
    decision = decide("zenloop", board, bundle, None, None, {"test": test}, 0.0)
    assert decision.promoted
    assert "suspected leaks: price_cents (target_proxy" in decision.reason
    assert decision.ignored_index_columns == ["row"]
    markdown = decision.to_markdown()
    assert "Suspected leaks" in markdown and "ignored as row numbers or keys: row" in markdown
