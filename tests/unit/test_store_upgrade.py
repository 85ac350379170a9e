"""A log database written by the previous release opens in this one and loses nothing:
its tables (made by that release's `create_all`, with no schema version) are migrated in
place, its rows read back, its spill files replay, and the class path its drift-check
artifacts were stored under still loads."""

import json
import time

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from zenml.utils import source_utils

from api.log_writer import SPILL_PREFIX, replay_spills
from monitoring import log_store, state_store
from monitoring.database import engine_for, revision
from monitoring.drift_report import DriftCheck
from monitoring.log_store import PredictionLogStore
from monitoring.state_store import RETRAIN_LEASE, MonitorStore
from ui.records import Records

NAME, ID = 128, 64
NOW = 1_796_000_000.0


def _previous_release_schema() -> sa.MetaData:
    """The tables as the previous release declared them (monitoring/log_store.py and
    monitoring/state_store.py before migrations)."""
    old = sa.MetaData()
    sa.Table(
        "predictions", old,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(ID), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("model_version", sa.String(ID), nullable=False, index=True),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("prediction", sa.Text, nullable=False),
        sa.Column("probabilities", sa.Text, nullable=True),
    )  # fmt: skip
    sa.Table(
        "feedback", old,
        sa.Column("request_id", sa.String(ID), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ground_truth", sa.Text, nullable=False),
    )  # fmt: skip
    sa.Table(
        "monitor_checks", old,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("checked_at", sa.Float, nullable=False, index=True),
        sa.Column("model_name", sa.String(NAME), nullable=False),
        sa.Column("model_version", sa.String(NAME), nullable=False),
        sa.Column("window_rows", sa.Integer, nullable=False),
        sa.Column("new_rows", sa.Integer, nullable=False),
        sa.Column("drifted_share", sa.Float, nullable=False),
        sa.Column("last_log_id", sa.Integer, nullable=True),
        sa.Column("drift", sa.Boolean, nullable=False),
        sa.Column("retrain", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )  # fmt: skip
    sa.Table(
        "monitor_state", old,
        sa.Column("model_name", sa.String(NAME), primary_key=True),
        sa.Column("consecutive_drifted", sa.Integer, nullable=False),
        sa.Column("last_retrain_at", sa.Float, nullable=True),
        sa.Column("last_log_id", sa.Integer, nullable=False),
    )  # fmt: skip
    sa.Table(
        "monitor_leases", old,
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("owner", sa.String(ID), nullable=True),
        sa.Column("purpose", sa.Text, nullable=True),
        sa.Column("acquired_at", sa.Float, nullable=True),
        sa.Column("renewed_at", sa.Float, nullable=True),
    )  # fmt: skip
    sa.Table(
        "monitor_retrains", old,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(NAME), nullable=False),
        sa.Column("check_id", sa.Integer, nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("promoted", sa.Boolean, nullable=True),
        sa.Column("deployed_version", sa.String(NAME), nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
    )  # fmt: skip
    return old


def _logged(i: int, version: str) -> dict:
    return {
        "request_id": f"r{i}",
        "created_at": NOW + i,
        "model_version": version,
        "features": json.dumps({"unit_price": 10.0 + i, "city": "Lisbon"}),
        "prediction": json.dumps(100.0 + i),
        "probabilities": None,
    }


def _write_previous_release(url: str) -> None:
    old = _previous_release_schema()
    engine = sa.create_engine(url)
    old.create_all(engine)
    report = {"model_name": "m", "model_version": "1", "drift": True, "columns": [], "reason": "x"}
    check = {"checked_at": NOW, "model_name": "m", "model_version": "1", "window_rows": 600}
    check |= {"new_rows": 600, "drifted_share": 0.5, "last_log_id": 2, "drift": True}
    with engine.begin() as connection:
        t = old.tables
        connection.execute(t["predictions"].insert(), [_logged(i, "1") for i in range(1, 4)])
        connection.execute(
            t["feedback"].insert(), {"request_id": "r1", "created_at": NOW, "ground_truth": "99.0"}
        )
        connection.execute(
            t["monitor_checks"].insert(),
            [
                check | {"retrain": False, "reason": "drift in 1/2", "report": json.dumps(report)},
                check | {"retrain": True, "reason": "retrain: drift", "report": json.dumps(report)},
            ],
        )
        connection.execute(
            t["monitor_state"].insert(),
            {"model_name": "m", "consecutive_drifted": 1, "last_retrain_at": NOW, "last_log_id": 2},
        )
        connection.execute(
            t["monitor_leases"].insert(),
            {"name": RETRAIN_LEASE, "owner": "a-monitor", "purpose": "drift", "renewed_at": NOW},
        )
        connection.execute(
            t["monitor_retrains"].insert(),
            [
                {"model_name": "m", "check_id": 2, "started_at": NOW, "finished_at": NOW + 9,
                 "promoted": False, "deployed_version": None,
                 "summary": "retraining failed, the champion keeps serving: x"},
                {"model_name": "m", "check_id": 2, "started_at": NOW + 10, "finished_at": NOW + 20,
                 "promoted": True, "deployed_version": "2", "summary": "v2 promoted and deployed"},
            ],
        )  # fmt: skip
    engine.dispose()


def _write_previous_release_spill(folder) -> None:
    """A spill file as the previous release named it: not keyed by database."""
    path = folder / f"{SPILL_PREFIX}{int(time.time())}-4242.jsonl"
    path.write_text("".join(json.dumps(_logged(i, "2")) + "\n" for i in (4, 5)))


def test_a_database_of_the_previous_release_is_upgraded_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENLOOP_DATA_DIR", str(tmp_path))  # the default log, as it was
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    _write_previous_release(url)
    _write_previous_release_spill(tmp_path)

    log, monitor = PredictionLogStore(url), MonitorStore(url)  # opening it upgrades it
    assert revision(engine_for(url)) == "0003"
    assert replay_spills(log) == 2 and not list(tmp_path.glob(f"{SPILL_PREFIX}*"))
    assert log.request_ids() == {f"r{i}" for i in range(1, 6)}
    labelled = log.labelled_rows()
    assert list(labelled["request_id"]) == ["r1"] and labelled["ground_truth"][0] == 99.0
    assert log.last_rows(10)["unit_price"].tolist() == [11.0, 12.0, 13.0, 14.0, 15.0]

    state = monitor.load_state("m")
    assert (state.consecutive_drifted, state.last_log_id) == (1, 2)
    assert monitor.recent_checks(5)[0]["report"]["reason"] == "x"
    failed, promoted = monitor.recent_retrains(5, "m")[::-1]
    assert failed["failed"] is True and promoted["failed"] is None  # the summary told it
    assert promoted["deployed_version"] == "2"
    assert MonitorStore(url).drift_onset_log_id("m", "2") == 2, "what v2's retraining saw"
    history = Records(url).retrains(5)
    assert [r["outcome"] for r in history] == ["promoted and deployed", "failed, champion stays"]
    assert history[0]["later_rows"] is None and history[0]["review"] is None  # not reviewed yet
    lease = monitor.engine.connect().execute(sa.text("SELECT owner FROM monitor_leases")).scalar()
    assert lease == "a-monitor"

    # the class path the previous release's drift checks were stored under still loads
    assert source_utils.load("monitoring.drift.DriftCheck") is DriftCheck


def test_the_migrations_make_exactly_the_schema_the_code_reads(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'new.db'}")
    expected = sa.MetaData()  # the log's tables and the monitor's, as the code declares them
    for metadata in (log_store.metadata, state_store.metadata):
        for table in metadata.tables.values():
            table.to_metadata(expected)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), expected)
    assert [d for d in differences if d[0] != "remove_table"] == [], differences
