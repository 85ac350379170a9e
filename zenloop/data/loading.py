"""Load a training frame from the generator or a user's file, and refuse bad data early.

Every problem is one `DataValidationError` naming the file, the column and what is
wrong, raised before anything is trained or registered.
"""

from __future__ import annotations

from collections.abc import Collection

import hashlib
import logging
from pathlib import PurePosixPath
from urllib.parse import urlparse

import fsspec
import pandas as pd

from zenloop.config import DataConfig
from zenloop.errors import UserError
from zenloop.data.generator import CLASSIFICATION_TARGET, REGRESSION_TARGET, generate_orders

logger = logging.getLogger(__name__)

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}
HASH_CHUNK_BYTES = 1 << 20


class DataValidationError(UserError, ValueError):
    """The data cannot be trained on; the message says which file, column and problem."""


def source_label(config: DataConfig) -> str:
    if config.source == "file":
        return str(config.path)
    if config.source == "artifact":
        return f"artifact {config.artifact_id}"
    scenario = f", scenario={config.scenario}@{config.scenario_strength}" if config.scenario else ""
    return f"generator(n_rows={config.n_rows}, seed={config.seed}{scenario})"


def target_column(config: DataConfig) -> str:
    if config.target:
        return config.target
    return REGRESSION_TARGET if config.task == "regression" else CLASSIFICATION_TARGET


def data_fingerprint(config: DataConfig) -> str:
    """What the data is, not where it is: the key a cached load is looked up by.

    A file's content hash (a changed file under the same path is new data), an artifact's
    id, or the generator's arguments together with the rest of the data config.
    """
    digest = hashlib.sha256(config.model_dump_json().encode())
    if config.source == "file":
        path = str(config.path)
        try:
            fs, location = fsspec.core.url_to_fs(path)
            with fs.open(location, "rb") as handle:
                while chunk := handle.read(HASH_CHUNK_BYTES):
                    digest.update(chunk)
        except Exception as exc:  # reported here; loading would fail the same way
            raise DataValidationError(
                f"{path}: cannot be read ({type(exc).__name__}: {exc})"
            ) from exc
    return digest.hexdigest()


def read_frame(config: DataConfig) -> pd.DataFrame:
    """Read raw rows; unreadable and empty files are errors naming the file."""
    if config.source == "generator":
        frame = generate_orders(
            config.n_rows, config.seed, config.scenario, config.scenario_strength
        )
        other_target = {REGRESSION_TARGET, CLASSIFICATION_TARGET} - {target_column(config)}
        return frame.drop(columns=list(other_target))
    if config.source == "artifact":
        raise DataValidationError(
            f"{source_label(config)}: artifacts are read by the pipeline's load step"
        )
    return read_file(str(config.path))


def read_file(path: str) -> pd.DataFrame:
    """A CSV or Parquet file from a local path or any fsspec URI (s3://, gs://, https://)."""
    suffix = PurePosixPath(urlparse(path).path).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise DataValidationError(
            f"{path}: unsupported file type {suffix!r}; use one of {sorted(READERS)}"
        )
    try:
        fs, location = fsspec.core.url_to_fs(path)
        exists = fs.exists(location)
        size = fs.size(location) if exists else 0
    except ImportError as exc:  # e.g. s3:// without s3fs installed
        raise DataValidationError(f"{path}: cannot be opened here ({exc})") from exc
    except Exception as exc:  # unreachable host, refused credentials, bad URI
        raise DataValidationError(
            f"{path}: cannot be reached ({type(exc).__name__}: {exc})"
        ) from exc
    if not exists:
        raise DataValidationError(f"{path}: file not found")
    if size == 0:
        raise DataValidationError(f"{path}: file is empty")
    try:
        with fs.open(location, "rb") as handle:
            frame = reader(handle)
    except Exception as exc:  # any parser failure is the file's fault, reported as such
        raise DataValidationError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    logger.info("Read %d rows x %d columns from %s", len(frame), frame.shape[1], path)
    return frame


def validate_frame(
    frame: pd.DataFrame, config: DataConfig, ignored: Collection[str] = ()
) -> None:
    """Check the frame can be trained on for the configured task; columns to be `ignored`
    (the profile's role) may be as sparse as they are."""
    source = source_label(config)
    target = target_column(config)
    if frame.empty or frame.shape[1] == 0:
        raise DataValidationError(f"{source}: no rows")
    if target not in frame.columns:
        raise DataValidationError(
            f"{source}: target column {target!r} is missing; columns are {list(frame.columns)}"
        )
    labels = frame[target]
    if labels.isna().any():
        raise DataValidationError(
            f"{source}: target column {target!r} has {int(labels.isna().sum())} missing values"
        )
    if labels.nunique() < 2:
        raise DataValidationError(
            f"{source}: target column {target!r} has a single value ({labels.iloc[0]!r})"
        )
    if config.task == "regression" and not pd.api.types.is_numeric_dtype(labels):
        raise DataValidationError(
            f"{source}: target column {target!r} must be numeric for regression, "
            f"got {labels.dtype} (e.g. {labels.iloc[0]!r})"
        )
    if config.task == "classification":
        smallest = labels.value_counts().min()
        if smallest < 2:
            raise DataValidationError(
                f"{source}: target column {target!r} has a class with fewer than 2 rows"
            )
    used = [c for c in frame.columns if c != target and c not in set(ignored)]
    missing = frame[used].isna().mean()
    too_sparse = missing[missing > config.max_missing_fraction]
    for column, fraction in too_sparse.items():
        raise DataValidationError(
            f"{source}: column {column!r} is {fraction:.0%} missing "
            f"(max_missing_fraction is {config.max_missing_fraction:.0%}); leave it out "
            f"(`zenloop init --drop {column}`, or the role ignore) or raise data.max_missing_fraction"
        )


def load_frame(config: DataConfig, ignored: Collection[str] = ()) -> pd.DataFrame:
    frame = read_frame(config)
    validate_frame(frame, config, ignored)
    return frame
