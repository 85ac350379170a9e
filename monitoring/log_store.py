"""The durable prediction log: every served prediction, its inputs and later ground truth.

SQLite in WAL mode by default; any SQLAlchemy URL (e.g. PostgreSQL for several replicas)
runs the same code.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from monitoring.database import engine_for, resolve_log_url, sqlite_pragmas

REQUEST_ID_LENGTH = 64
VERSION_LENGTH = 64
GROUND_TRUTH_COLUMN = "ground_truth"  # a window's feedback column (None: not labelled yet)
PROBABILITIES_COLUMN = "probabilities"  # a window's class probabilities, as logged (JSON text)
# other dialects whose INSERT can skip rows whose request id is logged (idempotent replays);
# SQLite's is written out as one multi-row statement (`_values_statement`)
INSERT_IGNORING = {"postgresql": postgresql.insert}
# databases whose appends are one multi-row statement on a connection of the writer's own:
# their placeholder, and how many parameters one statement may hold (SQLite asks its build)
DIRECT_APPEND = {"sqlite": "?", "postgresql": "%s"}
POSTGRESQL_MAX_PARAMETERS = 65_535
LOG_COLUMNS = (
    "request_id",
    "created_at",
    "model_version",
    "features",
    "prediction",
    "probabilities",
)

logger = logging.getLogger(__name__)

metadata = sa.MetaData()
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(REQUEST_ID_LENGTH), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("model_version", sa.String(VERSION_LENGTH), nullable=False, index=True),
    sa.Column("features", sa.Text, nullable=False),
    sa.Column("prediction", sa.Text, nullable=False),
    sa.Column("probabilities", sa.Text, nullable=True),
)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("request_id", sa.String(REQUEST_ID_LENGTH), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("ground_truth", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class PredictionRecord:
    request_id: str
    created_at: float
    model_version: str
    features: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "model_version": self.model_version,
            "features": to_json(self.features).decode(),
            "prediction": to_json(self.prediction).decode(),
            "probabilities": None
            if self.probabilities is None
            else to_json(self.probabilities).decode(),
        }


def _values_statement(rows: int, placeholder: str) -> str:
    """One INSERT of `rows` rows (parameters row by row) skipping logged ids."""
    row = f"({', '.join([placeholder] * len(LOG_COLUMNS))})"
    return (
        f"INSERT INTO {predictions.name} ({', '.join(LOG_COLUMNS)}) VALUES"
        f" {', '.join([row] * rows)} ON CONFLICT (request_id) DO NOTHING"
    )


def _flat(rows: Sequence[dict[str, Any]]) -> tuple:
    """The parameters of `_values_statement`: row by row, column by column."""
    return tuple(row.get(column) for row in rows for column in LOG_COLUMNS)


class PredictionLogStore:
    def __init__(self, url: str | None = None):
        self.url = resolve_log_url(url)
        self.engine = engine_for(self.url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._placeholder = DIRECT_APPEND.get(self.engine.dialect.name)
        self._appender = threading.local()  # each appending thread's own connection
        self._insert_ignoring = None if self._placeholder else self._compile_insert_ignoring()
        # logged rows that could not be read back (bad JSON) and were left out of frames
        self.unreadable_rows = 0

    def append(self, records: Sequence[PredictionRecord]) -> None:
        if records:
            with self.engine.begin() as connection:
                connection.execute(predictions.insert(), [r.to_row() for r in records])

    def append_rows(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows in `to_row` form, skipping request ids already logged; how many were new.

        Idempotent, so a batch retried after a crash or a replayed spill file cannot fail
        on rows that made it the first time. It is the writer's hot path: statements are
        run by the driver as they are, which costs a third of a Core insert.
        """
        if not rows:
            return 0
        if self._placeholder is not None:
            return self._insert_values(rows)
        with self.engine.begin() as connection:
            if self._insert_ignoring is None:  # a dialect without INSERT ... DO NOTHING
                fresh = self._unlogged(connection, rows)
                if fresh:
                    connection.execute(predictions.insert(), fresh)
                return len(fresh)
            params = [{c: row.get(c) for c in LOG_COLUMNS} for row in rows]
            return connection.exec_driver_sql(self._insert_ignoring, params).rowcount

    def _insert_values(self, rows: Sequence[dict[str, Any]]) -> int:
        """The rows as one multi-row INSERT on this thread's own autocommit connection.

        One statement is one round trip, and one call that gives the GIL up: per batch, not
        per row, per BEGIN and COMMIT and per pool check-out and check-in (with its reset).
        SQLite: under load each GIL hand-over lasted until the event loop's thread let go,
        and they set the pace of durable acknowledgements. PostgreSQL: the round trips did
        (five per commit through the pool, one here). More rows than one statement holds
        go in one explicit transaction.
        """
        connection = self._appender_connection()
        step = max(1, self._max_parameters(connection) // len(LOG_COLUMNS))
        chunks = [rows[start : start + step] for start in range(0, len(rows), step)]
        try:
            if len(chunks) == 1:
                return self._execute_values(connection, rows)
            connection.execute("BEGIN")
            added = sum(self._execute_values(connection, chunk) for chunk in chunks)
            connection.execute("COMMIT")
            return added
        except BaseException:  # the next call starts on a new connection (and transaction)
            self._appender.connection = None
            connection.close()
            raise

    def _execute_values(self, connection: Any, rows: Sequence[dict[str, Any]]) -> int:
        statement = _values_statement(len(rows), self._placeholder)
        return connection.execute(statement, _flat(rows)).rowcount

    def _max_parameters(self, connection: Any) -> int:
        if self._sqlite:  # as many as this SQLite's build lets one statement hold
            return connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return POSTGRESQL_MAX_PARAMETERS

    def _appender_connection(self) -> Any:
        """This thread's own connection for appends (the driver's), opened like the
        engine's, committing each statement by itself."""
        connection = getattr(self._appender, "connection", None)
        if connection is None:
            dialect = self.engine.dialect
            cargs, cparams = dialect.create_connect_args(self.engine.url)
            connection = dialect.connect(*cargs, **cparams)
            if self._sqlite:
                sqlite_pragmas(connection, None)
                connection.isolation_level = None
            else:
                connection.autocommit = True
            self._appender.connection = connection
        return connection

    def _compile_insert_ignoring(self) -> str | None:
        """The dialect's INSERT ... ON CONFLICT DO NOTHING, with named parameters."""
        insert = INSERT_IGNORING.get(self.engine.dialect.name)
        if insert is None:
            return None
        statement = insert(predictions).on_conflict_do_nothing(index_elements=["request_id"])
        return str(statement.compile(dialect=self.engine.dialect, column_keys=list(LOG_COLUMNS)))

    @staticmethod
    def _unlogged(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [row["request_id"] for row in rows]
        known = set(
            connection.execute(
                sa.select(predictions.c.request_id).where(predictions.c.request_id.in_(ids))
            ).scalars()
        )
        return [row for row in rows if row["request_id"] not in known]

    @property
    def has_wal(self) -> bool:
        """A SQLite file in WAL mode: its write-ahead log needs checkpoints."""
        return self.engine.dialect.name == "sqlite"

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database without blocking writers (PASSIVE).

        Done often by a thread of its own, so the log stays short and SQLite's automatic
        checkpoint, which runs inside a commit and held acknowledgements for tens of
        milliseconds, never comes due.
        """
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def ping(self) -> None:
        """Raises when the database cannot be reached (the writer's probe in an outage)."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def last_id(self) -> int:
        """The id of the latest logged row (0 for an empty log); cheap on any log size."""
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.max(predictions.c.id))).scalar() or 0

    def request_ids(self) -> set[str]:
        """Every logged request id (for integrity checks of the log)."""
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(predictions.c.request_id)).scalars())

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(predictions)
            ).scalar_one()

    def add_feedback(self, items: Iterable[tuple[str, Any]], now: float) -> list[str]:
        """Store ground truth for known request ids (the latest wins); return unknown ids."""
        items = dict(items)
        with self.engine.begin() as connection:
            known = set(
                connection.execute(
                    sa.select(predictions.c.request_id).where(
                        predictions.c.request_id.in_(list(items))
                    )
                ).scalars()
            )
            if known:
                connection.execute(feedback.delete().where(feedback.c.request_id.in_(known)))
                connection.execute(
                    feedback.insert(),
                    [
                        {
                            "request_id": rid,
                            "created_at": now,
                            "ground_truth": json.dumps(items[rid]),
                        }
                        for rid in known
                    ],
                )
        return [rid for rid in items if rid not in known]

    def _frame(self, query: sa.Select) -> pd.DataFrame:
        """Logged rows as a frame: one column per feature plus the log's own columns.

        A row whose stored JSON cannot be read is left out and counted
        (`unreadable_rows`, and `frame.attrs["unreadable_rows"]`): one bad row must never
        cost the monitor its whole window.
        """
        joined = predictions.outerjoin(feedback, predictions.c.request_id == feedback.c.request_id)
        query = query.select_from(joined).add_columns(
            predictions.c.id,
            predictions.c.request_id,
            predictions.c.created_at,
            predictions.c.model_version,
            predictions.c.features,
            predictions.c.prediction,
            predictions.c.probabilities,
            feedback.c.ground_truth,
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(predictions.c.id)).mappings().all()
        parsed = [p for p in map(_parse_logged, rows) if p is not None]
        unreadable = len(rows) - len(parsed)
        if unreadable:
            self.unreadable_rows += unreadable
            logger.warning("prediction log: %d unreadable rows left out of the frame", unreadable)
        features = _uniform_columns(pd.DataFrame([p[0] for p in parsed]))
        meta = pd.DataFrame(
            [p[1] for p in parsed],
            columns=[
                "log_id",
                "request_id",
                "logged_at",
                "model_version",
                "prediction",
                PROBABILITIES_COLUMN,
                GROUND_TRUTH_COLUMN,
            ],
        )
        frame = pd.concat([features, meta], axis=1)
        frame.attrs["unreadable_rows"] = unreadable
        return frame

    def last_rows(self, n: int, model_version: str | None = None) -> pd.DataFrame:
        """The newest n rows (of one model version), oldest first."""
        newest = sa.select(predictions.c.id).order_by(predictions.c.id.desc()).limit(n)
        if model_version is not None:
            newest = newest.where(predictions.c.model_version == model_version)
        return self._frame(sa.select().where(predictions.c.id.in_(newest.scalar_subquery())))

    def rows_between(
        self, start: float, end: float, model_version: str | None = None
    ) -> pd.DataFrame:
        query = sa.select().where(predictions.c.created_at.between(start, end))
        if model_version is not None:
            query = query.where(predictions.c.model_version == model_version)
        return self._frame(query)

    def labelled_rows(
        self, since: float = 0.0, after_id: int = 0, until_id: int | None = None
    ) -> pd.DataFrame:
        """Rows with ground truth, logged at or after `since`, after log id `after_id` and
        (when given) up to `until_id`."""
        return self._frame(sa.select().where(*_labelled(since, after_id, until_id)))

    def labelled_rows_of(self, model_version: str, limit: int, first: bool = False) -> pd.DataFrame:
        """The newest (or, with `first`, the first) `limit` labelled rows one version
        served, oldest first."""
        joined = predictions.join(feedback, predictions.c.request_id == feedback.c.request_id)
        ids = (
            sa.select(predictions.c.id)
            .select_from(joined)
            .where(*_labelled(0.0, 0), predictions.c.model_version == model_version)
            .order_by(predictions.c.id if first else predictions.c.id.desc())
            .limit(limit)
        )
        return self._frame(sa.select().where(predictions.c.id.in_(ids.scalar_subquery())))

    def count_labelled(self, after_id: int = 0, until_id: int | None = None) -> int:
        """How many rows after log id `after_id` (and, when given, up to `until_id`) have
        ground truth, without reading them."""
        joined = predictions.join(feedback, predictions.c.request_id == feedback.c.request_id)
        conditions = _labelled(0.0, after_id, until_id)
        query = sa.select(sa.func.count()).select_from(joined).where(*conditions)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()


def _labelled(since: float, after_id: int, until_id: int | None = None) -> tuple:
    """The conditions of a labelled row logged at or after `since`, after log id `after_id`
    and (when given) up to `until_id`."""
    conditions = (
        feedback.c.ground_truth.is_not(None),
        predictions.c.created_at >= since,
        predictions.c.id > after_id,
    )
    return conditions if until_id is None else (*conditions, predictions.c.id <= until_id)


def _parse_logged(row) -> tuple[dict[str, Any], tuple] | None:
    """One logged row's features and its log columns; None when its JSON cannot be read."""
    try:
        features = json.loads(row["features"])
        prediction = json.loads(row["prediction"])
        truth = row["ground_truth"]
        truth = None if truth is None else json.loads(truth)
    except (TypeError, ValueError):
        return None
    if not isinstance(features, dict):
        return None
    meta = (row["id"], row["request_id"], row["created_at"], row["model_version"])
    return features, (*meta, prediction, row["probabilities"], truth)


def _uniform_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """One type per column, so a window always writes to Parquet.

    Rows logged before values were normalised may mix numbers and strings in one column
    (an id sent as 17 and as ""): such a column is read as strings.
    """
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        kinds = set(values.dropna().map(type).unique())
        if len(kinds) <= 1 and not kinds & {dict, list}:
            continue
        if kinds <= {int, float}:
            frame[column] = pd.to_numeric(values, errors="coerce")
        else:
            frame[column] = values.map(lambda v: None if _missing(v) else str(v))
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN != NaN
