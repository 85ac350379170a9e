"""Drift-check benchmark: zenloop's check vs a plain Evidently DataDriftPreset, same run.

    .venv/bin/python benchmarks/drift.py [--scenario new_market]

Windows of 1,000, 10,000 and 100,000 rows against a 50,000-row reference. The plain report
gets the full frames (with the same explicit column types); ours samples both sides to
its cap. Prints both times, the speed-up, and every column whose verdict differs from the
plain report on the full window.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

from monitoring.drift import check_drift, column_verdicts, monitored_columns  # noqa: E402
from zenloop.config import DriftConfig, FeatureConfig, ProfileConfig  # noqa: E402
from zenloop.data.generator import REGRESSION_TARGET, generate_orders  # noqa: E402
from zenloop.schema import infer_schema  # noqa: E402

REFERENCE_ROWS = 50_000
WINDOWS = (1_000, 10_000, 100_000)
TARGET_SECONDS = 1.5
TARGET_SPEEDUP = 3.0


def _with_prediction(frame):
    """The stand-in model predicts the true total: prediction drift is then real drift."""
    return frame.drop(columns=["is_returned", REGRESSION_TARGET]).assign(
        prediction=frame[REGRESSION_TARGET]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="new_market")
    args = parser.parse_args()
    base = generate_orders(REFERENCE_ROWS, seed=1)
    schema = infer_schema(
        base.drop(columns="is_returned"),
        REGRESSION_TARGET,
        "regression",
        ProfileConfig(),
        FeatureConfig(),
        "generator",
    )
    reference = _with_prediction(base)
    config = DriftConfig()
    numerical, categorical = monitored_columns(schema, reference, config.max_categories)
    numerical = [*numerical, "prediction"]
    kinds = {c: "numerical" for c in numerical} | {c: "categorical" for c in categorical}
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    print(f"reference {REFERENCE_ROWS} rows, {len(kinds)} columns, scenario {args.scenario}")
    print("| window rows | zenloop s | plain preset s | speed-up | verdicts differing |")
    print("|---|---|---|---|---|")
    results = {}
    for rows in WINDOWS:
        window = _with_prediction(generate_orders(rows, seed=2, scenario=args.scenario))
        started = time.perf_counter()
        ours = check_drift("bench", "1", window, reference, schema, {}, config, with_html=False)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        plain = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(window[list(kinds)], data_definition=definition),
            reference_data=Dataset.from_pandas(reference[list(kinds)], data_definition=definition),
        )
        plain_s = time.perf_counter() - started
        plain_verdicts = column_verdicts(plain, kinds)
        mine = {c.column: c for c in ours.report.columns + [ours.report.prediction]}
        differing = [
            f"{c}: ours {mine[c].drifted} ({mine[c].score:.3f})"
            f" vs plain {v.drifted} ({v.score:.3f})"
            for c, v in plain_verdicts.items()
            if c in mine and mine[c].drifted != v.drifted
        ]
        results[rows] = (ours_s, plain_s)
        speedup = plain_s / ours_s
        print(f"| {rows} | {ours_s:.2f} | {plain_s:.2f} | {speedup:.1f}x | {len(differing)} |")
        for line in differing:
            print(f"    differs: {line}")
    ours_s, plain_s = results[max(WINDOWS)]
    print(
        f"\n100,000-row window: {ours_s:.2f} s (target < {TARGET_SECONDS} s), "
        f"{plain_s / ours_s:.1f}x faster than the plain report (target >= {TARGET_SPEEDUP}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
