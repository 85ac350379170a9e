"""Retraining outcomes: whether a retraining failed, and both models' score on the same
held-out labelled rows. The cooldown is read from the retrainings, so the policy state
keeps no retraining time.

A failure was known by its summary before it had a column: those rows are marked.
A database written by a development build may have the new columns already.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NAME = 128
FAILED_SUMMARY = "retraining failed%"
OUTCOME_COLUMNS = {  # all nullable: older rows have no value
    "failed": sa.Boolean,
    "error_metric": lambda: sa.String(NAME),
    "error_before": sa.Float,
    "error_after": sa.Float,
    "error_rows": sa.Integer,
}


def _columns(table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    present = _columns("monitor_retrains")
    with op.batch_alter_table("monitor_retrains") as batch:
        for name, kind in OUTCOME_COLUMNS.items():
            if name not in present:
                batch.add_column(sa.Column(name, kind(), nullable=True))
    if "failed" not in present:
        retrains = sa.table("monitor_retrains", sa.column("failed"), sa.column("summary"))
        op.execute(
            retrains.update().where(retrains.c.summary.like(FAILED_SUMMARY)).values(failed=True)
        )
    if "last_retrain_at" in _columns("monitor_state"):
        with op.batch_alter_table("monitor_state") as batch:
            batch.drop_column("last_retrain_at")
