"""Caching where it is correct: unchanged data and config reuse the training steps; a changed
file under the same path, the promotion and every monitoring window never come from cache."""

from zenml.client import Client
from zenml.enums import ExecutionStatus

from tests.support.data import other_schema_frame
from tests.support.pipelines import BIN, run_command, run_config, stack_up

MODEL = "cache-tests"
NEVER_CACHED = ("fingerprint_data", "promote_candidate")
REUSED = ("load_dataset", "profile_dataset", "split_dataset", "train_candidates", "build_reference")


def _train(config_path) -> dict[str, ExecutionStatus]:
    run_command(str(BIN / "zenloop"), "train", "-c", str(config_path))
    pipeline = Client().get_pipeline("training_pipeline")
    run = Client().list_pipeline_runs(pipeline_id=pipeline.id, sort_by="desc:created", size=1)
    return {name: step.status for name, step in run.items[0].steps.items()}


def test_unchanged_data_is_cached_and_a_changed_file_is_not(tmp_path):
    stack_up()
    data = tmp_path / "rentals.csv"
    other_schema_frame(1_200, "regression").to_csv(data, index=False)
    config = run_config(
        tmp_path / "t.yaml",
        {
            "data": {"source": "file", "path": str(data), "target": "monthly_rent"},
            "candidates": [{"name": "ridge", "family": "linear"}],
            "gates": {"min_r2": 0.0, "max_gap_pct": None},
            "reference": {"sample_size": 200},
        },
        MODEL,
    )
    first = _train(config)
    assert all(status == ExecutionStatus.COMPLETED for status in first.values()), first

    again = _train(config)
    for step in REUSED:
        assert again[step] == ExecutionStatus.CACHED, (step, again)
    for step in NEVER_CACHED:
        assert again[step] == ExecutionStatus.COMPLETED, (step, again)
    latest = Client().get_model_version(MODEL)  # the newest version: the cached run's
    assert latest.get_artifact("reference_data") is not None, "cached outputs stay linked"

    other_schema_frame(1_200, "regression", seed=9).to_csv(data, index=False)  # same path
    changed = _train(config)
    assert changed["load_dataset"] == ExecutionStatus.COMPLETED, changed
    assert changed["train_candidates"] == ExecutionStatus.COMPLETED, changed
