"""The served model and its atomic replacement.

A request reads `holder.current` once and uses that object to the end, so a swap never
affects a request in flight; assigning one attribute is atomic in Python.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import re
import threading
import time
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from api.schemas import RowModels, build_row_models
from api.settings import ModelSourceConfig, ServingConfig
from zenloop.compiled import CompiledModel
from zenloop.deployment import VALIDATED_TAG
from zenloop.schema import FeatureSchema
from zenloop.tracking import ZENML_VERSION_TAG, load_bundle

logger = logging.getLogger(__name__)

ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
VERSION_PATTERN = re.compile(r"^[0-9]{1,9}$")
# MLflow's answers for "no such model" and "no such alias": the registry itself is fine
MISSING_ERROR_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


class RegistryUnavailable(RuntimeError):
    """The registry could not be asked (unlike: it was asked and has no such alias)."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    alias: str | None
    run_id: str | None
    zenml_model_version: str | None
    source: str
    schema: FeatureSchema
    metrics: dict[str, dict[str, float]]
    compiled: CompiledModel
    rows: RowModels
    loaded_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Selection:
    """What the service serves: an alias (re-resolved on reload), a pinned version, or a path.

    With both, `version` is what is loaded now and `alias` is what is followed.
    """

    alias: str | None = None
    version: str | None = None
    local_path: str | None = None

    @classmethod
    def from_config(cls, source: ModelSourceConfig) -> Selection:
        if source.local_path:
            return cls(local_path=source.local_path)
        if source.version:
            return cls(version=source.version)
        return cls(alias=source.alias)


def load_served_model(config: ServingConfig, selection: Selection) -> ServedModel:
    name = config.model.name
    extra = (config.extra_fields, config.max_batch_rows)
    if selection.local_path:
        bundle = load_bundle(selection.local_path)
        return _served(name, "local", None, None, None, selection.local_path, bundle, extra)
    client = MlflowClient()
    version = selection.version
    if version is None:  # follow the alias, under the same rule as hot reloads
        version = resolve_alias(name, selection.alias, config.require_validation)
        if version is None:
            rule = " validated by the deployment pipeline" if config.require_validation else ""
            raise LookupError(f"no version{rule} behind alias '{selection.alias}' of {name}")
    registered = client.get_model_version(name, version)
    uri = f"models:/{name}/{registered.version}"
    bundle = load_bundle(uri)
    zenml_version = (registered.tags or {}).get(ZENML_VERSION_TAG)
    return _served(
        name,
        str(registered.version),
        selection.alias,
        registered.run_id,
        zenml_version,
        uri,
        bundle,
        extra,
    )


def _served(name, version, alias, run_id, zenml_version, source, bundle, extra) -> ServedModel:
    return ServedModel(
        name=name,
        version=version,
        alias=alias,
        run_id=run_id,
        zenml_model_version=zenml_version,
        source=source,
        schema=bundle.schema,
        metrics=bundle.metrics,
        compiled=CompiledModel(bundle),
        rows=build_row_models(bundle.schema, *extra),
    )


def resolve_alias(name: str, alias: str, require_validation: bool) -> str | None:
    """The version behind the alias, if it may go live; None when there is nothing to follow.

    With `require_validation`, a version the deployment pipeline has not validated is not
    followed: a failed deployment check must leave the live model untouched. Raises
    `RegistryUnavailable` when the registry cannot be reached, so an outage is not
    mistaken for "nothing to follow".
    """
    try:
        version = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in MISSING_ERROR_CODES:  # no such alias or model yet
            return None
        raise RegistryUnavailable(f"model registry unreachable: {exc}") from exc
    except Exception as exc:  # e.g. the tracking database itself cannot be opened
        raise RegistryUnavailable(f"model registry unreachable: {exc}") from exc
    if require_validation and VALIDATED_TAG not in (version.tags or {}):
        return None
    return str(version.version)


class ModelHolder:
    """Holds the served model; swaps are serialized, reads are lock-free."""

    def __init__(self, config: ServingConfig):
        self.config = config
        self.selection = Selection.from_config(config.model)
        self.current: ServedModel | None = None
        self._swap_lock = threading.RLock()

    def load(self, selection: Selection | None = None) -> ServedModel:
        """Load and swap in a model; on failure the served model stays as it was."""
        with self._swap_lock:
            selection = selection or self.selection
            model = load_served_model(self.config, selection)
            before = self.current.version if self.current else "nothing"
            self.selection = selection
            self.current = model
            _settle_heap()
        logger.info("serving %s v%s (was %s)", model.name, model.version, before)
        return model

    def refresh(self) -> bool:
        """Follow the alias: load when it points somewhere new. True when a swap happened.

        Under the swap lock, so an admin pin made meanwhile is not undone, and the exact
        version that was checked is the one loaded.
        """
        with self._swap_lock:
            alias = self.selection.alias
            if alias is None:
                return False
            name, validated = self.config.model.name, self.config.require_validation
            target = resolve_alias(name, alias, validated)
            if target is None or (self.current is not None and self.current.version == target):
                return False
            self.load(Selection(alias=alias, version=target))
            return True


def _settle_heap() -> None:
    """Collect the replaced model, then freeze what is live again.

    Frozen objects are left out of GC scans (the model's objects are long-lived, and
    scanning them costs latency), but they are never collected either: unfreezing first
    lets the previous model's cycles go, so memory stays flat across swaps.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _return_free_memory()


def _return_free_memory() -> None:
    """Give freed heap pages back to the OS (glibc keeps them, per thread arena).

    A swap loads the new model in a worker thread while requests keep allocating: without
    this, each swap leaves the replaced model's pages in that thread's arena, and resident
    memory climbs by a model's size at every other swap.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()
