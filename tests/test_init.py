"""`zenloop init` writes a config that the loader accepts and that trains as it is."""

import fsspec
import numpy as np
from click.testing import CliRunner

from ops.cli import cli
from tests.test_defaults import churn_frame
from zenloop.config import ColumnRole, load_training_config
from zenloop.data.loading import load_frame, source_label
from zenloop.report import CandidateBoard
from zenloop.schema import infer_schema
from zenloop.training import fit_candidate, split_frame


def _init(*args: str):
    return CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)


def test_init_writes_a_config_that_loads_and_trains(tmp_path):
    frame = churn_frame(900)
    frame.insert(0, "row_id", np.arange(1, len(frame) + 1))
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    output = tmp_path / "configs" / "mine.yaml"
    result = _init("--data", str(data), "--target", "churn", "-o", str(output))
    assert result.exit_code == 0, result.output
    assert "classification on 'churn'" in result.output
    assert "ignored as row numbers or keys: row_id" in result.output

    config = load_training_config(output)
    assert (config.data.source, config.data.task, config.data.target) == (
        "file",
        "classification",
        "churn",
    )
    assert config.profile.column_roles["row_id"] == ColumnRole.IGNORE
    assert config.profile.column_roles["contract"] == ColumnRole.CATEGORICAL
    assert config.features.preset is None and not config.features.referenced_columns()
    assert "row_number" in output.read_text()  # the reason is beside the role

    loaded = load_frame(config.data)
    schema = infer_schema(
        loaded,
        config.data.target,
        config.data.task,
        config.profile,
        config.features,
        source_label(config.data),
    )
    train, validation, test = split_frame(loaded, schema, config.split)
    splits = {"train": train, "validation": validation, "test": test}
    results = [
        fit_candidate(c, schema, config.features, config.gates, splits, config.split.seed)[1]
        for c in config.candidates
        if c.enabled
    ]
    assert CandidateBoard(task=schema.task, results=results).best_passing() is not None


def test_init_reads_fsspec_uris_and_takes_an_explicit_task(tmp_path):
    frame = churn_frame(300).assign(churned=lambda f: (f["churn"] == "Yes").astype(int))
    with fsspec.open("memory://zenloop-init/customers.parquet", "wb") as handle:
        frame.drop(columns=["churn"]).to_parquet(handle)
    output = tmp_path / "mine.yaml"
    uri = "memory://zenloop-init/customers.parquet"
    result = _init("--data", uri, "--target", "monthly_charges", "-o", str(output))
    assert result.exit_code == 0, result.output
    config = load_training_config(output)
    assert config.data.path == uri and config.data.task == "regression"
    assert _init("--data", uri, "--target", "churned", "-o", str(output)).exit_code != 0
    forced = _init(
        "--data",
        uri,
        "--target",
        "churned",
        "--task",
        "classification",
        "-o",
        str(output),
        "--force",
    )
    assert forced.exit_code == 0, forced.output
    assert load_training_config(output).data.task == "classification"


def test_init_refuses_a_missing_target_naming_the_columns(tmp_path):
    data = tmp_path / "churn.csv"
    churn_frame(200).to_csv(data, index=False)
    result = CliRunner().invoke(cli, ["init", "--data", str(data), "--target", "nope"])
    assert result.exit_code == 2
    assert "target column 'nope' is missing" in result.output
