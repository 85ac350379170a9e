"""The tables of the first release: the prediction log, feedback, and the monitor's
checks, policy state, retrain lease and retrainings.

A database written before migrations existed may hold some of them already (the log
tables without the monitor's, say): only the missing ones are created.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME, ID = 128, 64


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    def create(name: str, *columns, indexes: tuple[str, ...] = ()) -> None:
        if name in existing:
            return
        op.create_table(name, *columns)
        for column in indexes:
            op.create_index(f"ix_{name}_{column}", name, [column])

    create(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(ID), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(ID), nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("prediction", sa.Text, nullable=False),
        sa.Column("probabilities", sa.Text, nullable=True),
        sa.UniqueConstraint("request_id"),
        indexes=("created_at", "model_version"),
    )
    create(
        "feedback",
        sa.Column("request_id", sa.String(ID), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ground_truth", sa.Text, nullable=False),
    )
    create(
        "monitor_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("checked_at", sa.Float, nullable=False),
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
        indexes=("checked_at",),
    )
    create(
        "monitor_state",
        sa.Column("model_name", sa.String(NAME), primary_key=True),
        sa.Column("consecutive_drifted", sa.Integer, nullable=False),
        sa.Column("last_retrain_at", sa.Float, nullable=True),
        sa.Column("last_log_id", sa.Integer, nullable=False),
    )
    create(
        "monitor_leases",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("owner", sa.String(ID), nullable=True),
        sa.Column("purpose", sa.Text, nullable=True),
        sa.Column("acquired_at", sa.Float, nullable=True),
        sa.Column("renewed_at", sa.Float, nullable=True),
    )
    create(
        "monitor_retrains",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(NAME), nullable=False),
        sa.Column("check_id", sa.Integer, nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("promoted", sa.Boolean, nullable=True),
        sa.Column("deployed_version", sa.String(NAME), nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
    )
