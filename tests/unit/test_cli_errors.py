"""A user's fixable error is one line; a bug shows its traceback; --debug shows both."""

from click.testing import CliRunner

from ops.cli import cli
from zenloop.data.loading import DataValidationError


def test_a_users_error_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["init", "--data", str(tmp_path / "no.csv"), "--target", "y"])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'no.csv'}: file not found"


def test_a_bug_is_not_dressed_as_a_users_error(tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("zenloop.data.loading.read_file", broken)  # read when the command runs
    result = CliRunner().invoke(cli, ["init", "--data", "any.csv", "--target", "y"])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)
    assert "error:" not in result.output


def test_debug_shows_the_traceback_of_a_users_error_too(tmp_path):
    args = ["--debug", "init", "--data", str(tmp_path / "no.csv"), "--target", "y"]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, DataValidationError)


def test_step_pods_are_not_rendered_for_a_local_store():
    """A pod cannot reach a local ZenML database: say so before compiling anything."""
    args = ["stack", "manifests", "training", "-c", "configs/training.yaml", "--image", "i:1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "local database" in result.output and "zenml login" in result.output


def test_deploying_a_model_without_a_champion_says_so_in_one_line(tmp_path):
    """A training run that promoted nothing (its gates, its naive baselines) leaves nothing
    to deploy: `zenloop deploy` says so before it starts a service or a pipeline."""
    import yaml

    assert CliRunner().invoke(cli, ["stack", "up", "local"]).exit_code == 0
    config = tmp_path / "deployment.yaml"
    config.write_text(yaml.safe_dump({"parameters": {"deploy": {"model_name": "never-promoted"}}}))
    result = CliRunner().invoke(cli, ["deploy", "-c", str(config)])
    assert result.exit_code == 1, result.output
    assert "never-promoted has no champion yet: no training run promoted a model" in result.output
    assert "Traceback" not in result.output
