"""Judgement: what a retraining learned from and was judged against, and the review of a
promotion on the labelled rows that came after it.

For each retraining: the best naive baseline on the same held-out rows as both models,
the history recipe its backtest chose (and the backtest's figures), and the champion it
replaced. After a promotion: both versions on the same later labelled rows, the verdict,
and a rollback, if there was one. All nullable: older rows have no value.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = 128
JUDGEMENT_COLUMNS = {
    "error_baseline": sa.Float,
    "baseline_name": lambda: sa.String(NAME),
    "history": lambda: sa.String(NAME),
    "history_scores": sa.Text,  # JSON: recipe -> validation score
    "replaced_version": lambda: sa.String(NAME),
    "later_rows": sa.Integer,
    "later_before": sa.Float,  # the replaced version, on rows the new one served
    "later_after": sa.Float,  # the new version, on the same rows
    "later_baseline": sa.Float,  # the naive baseline, on the same rows
    "reviewed_at": sa.Float,
    "review": sa.Text,
    "rolled_back_at": sa.Float,
    "rolled_back_log_id": sa.Integer,  # the log's last row then: the cooldown counts from it
}


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("monitor_retrains")}
    with op.batch_alter_table("monitor_retrains") as batch:
        for name, kind in JUDGEMENT_COLUMNS.items():
            if name not in present:
                batch.add_column(sa.Column(name, kind(), nullable=True))
