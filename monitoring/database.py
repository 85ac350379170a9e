"""The prediction log's database (the monitor's records live there too): one engine per
URL in a process, and a schema brought to the newest revision when a process first opens
it (Alembic, migrations in monitoring/migrations).

A database written by an earlier release is upgraded in place and loses nothing; two
processes opening one at once take turns (a file lock for SQLite, an advisory lock on
PostgreSQL).
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from zenloop.paths import data_dir

logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per revision is noise here

PREDICTION_LOG_DB = "predictions.db"
DATA_DIR_PLACEHOLDER = "{data_dir}"
SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "head"
MIGRATION_LOCK_KEY = 7_346_551_201  # PostgreSQL advisory lock: "zenloop migrates"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def default_log_url() -> str:
    return f"sqlite:///{data_dir() / PREDICTION_LOG_DB}"


def resolve_log_url(url: str | None) -> str:
    """The log's URL with `{data_dir}` filled in (configs name files in the data folder
    that way, wherever it is); the default log when none is given."""
    return (url or default_log_url()).replace(DATA_DIR_PLACEHOLDER, str(data_dir()))


def sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def engine_for(url: str | None) -> Engine:
    """This process's engine on the log's database (SQLite in WAL mode in the data folder
    by default), its schema at the newest revision."""
    resolved = resolve_log_url(url)
    with _engines_lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = sa.create_engine(resolved)
            if engine.dialect.name == "sqlite":
                if engine.url.database and engine.url.database != ":memory:":
                    Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
                sa.event.listen(engine, "connect", sqlite_pragmas)
            upgrade(engine)
            _engines[resolved] = engine
        return engine


def revision(engine: Engine) -> str | None:
    """The schema's revision (None: no zenloop schema yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, to: str = HEAD) -> None:
    """Bring the schema to revision `to` (the newest by default); nothing to do is quick."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, to)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with Path(f"{engine.url.database}.migrate.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    elif engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            try:
                yield
            finally:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
    else:
        yield
