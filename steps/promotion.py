"""Register the best passing candidate and promote it if it beats the champion."""

from typing import Annotated
from uuid import UUID

import mlflow
import pandas as pd
import zenml
from mlflow.tracking import MlflowClient
from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.enums import ModelStages
from zenml.model_registries.base_model_registry import ModelRegistryModelMetadata

import materializers  # noqa: F401
from steps.registry import configure_mlflow
from zenloop.baselines import fit_baselines
from zenloop.bundle import ModelBundle
from zenloop.config import HistoryConfig, ProfileConfig, PromotionConfig
from zenloop.promotion import RECENT_SET, TEST_SET, PromotionDecision, decide
from zenloop.report import CandidateBoard
from zenloop.tracking import (
    CHAMPION,
    ZENML_VERSION_TAG,
    alias_version,
    apply_aliases,
    judgement_tags,
    load_alias_bundle,
    log_judgement,
)


def _register(name: str, model_uri: str, run_id: str, description: str) -> str:
    """Register the logged model in the stack's MLflow registry, tagged with its ZenML run.

    Through MLflow's own `register_model`: it names the logged model the source comes
    from, which a tracking server requires (ZenML's registry wrapper does not).
    """
    configure_mlflow()
    context = get_step_context()
    metadata = ModelRegistryModelMetadata(
        zenml_version=zenml.__version__,
        zenml_run_name=context.pipeline_run.name,
        zenml_pipeline_name=context.pipeline.name,
        zenml_pipeline_run_uuid=str(context.pipeline_run.id),
        zenml_step_name=context.step_run.name,
        mlflow_run_id=run_id,
    )
    tags = {k: str(v) for k, v in metadata.model_dump(exclude_none=True).items()}
    registered = mlflow.register_model(model_uri, name, tags=tags)
    MlflowClient().update_model_version(name, registered.version, description=description)
    return str(registered.version)


def _set_stages(name: str, promoted: bool, previous: str | None) -> None:
    """ZenML stages mirror the aliases: champion=production, challenger=staging."""
    model = get_step_context().model
    client = MlflowClient()
    if not promoted:
        model.set_stage(ModelStages.STAGING, force=True)
        return
    model.set_stage(ModelStages.PRODUCTION, force=True)
    if previous is None:
        return
    tags = client.get_model_version(name, previous).tags
    if ZENML_VERSION_TAG in tags:
        Client().update_model_version(
            model_name_or_id=name,
            version_name_or_id=UUID(tags[ZENML_VERSION_TAG]),
            stage=ModelStages.STAGING,
            force=True,
        )


@step(experiment_tracker=True, enable_cache=False)  # it judges against today's champion
def promote_candidate(
    board: CandidateBoard,
    candidate: ModelBundle,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    recent: pd.DataFrame | None,
    promotion: PromotionConfig,
    profile: ProfileConfig,
    history: HistoryConfig,
) -> Annotated[PromotionDecision, "promotion_decision"]:
    """Register the best passing candidate; promote it only when it beats the naive
    baselines and the champion on the same rows that neither learned from."""
    model = get_step_context().model
    client = MlflowClient()
    previous = alias_version(client, model.name, CHAMPION)
    champion = load_alias_bundle(model.name, CHAMPION)
    evaluation_sets = {TEST_SET: test} | ({RECENT_SET: recent} if recent is not None else {})
    before_test = pd.concat([train, validation], ignore_index=True)
    baselines = fit_baselines(
        before_test, candidate.schema, history.window(len(before_test)), board.out_of_time
    )
    decision = decide(
        model.name,
        board,
        candidate,
        champion,
        previous,
        evaluation_sets,
        promotion.min_improvement,
        baselines,
        promotion.must_beat_baselines,
        profile,
    )
    log_judgement(decision)
    best = board.best_passing()
    if best is not None:
        version = _register(model.name, best.model_uri, best.mlflow_run_id, decision.reason)
        client.set_model_version_tag(model.name, version, ZENML_VERSION_TAG, str(model.id))
        for key, value in judgement_tags(decision).items():
            client.set_model_version_tag(model.name, version, key, value)
        apply_aliases(client, model.name, version, decision.promoted, previous)
        _set_stages(model.name, decision.promoted, previous)
        decision.registered_version = version
        decision.champion_after = version if decision.promoted else previous
    log_metadata({"promotion": decision.model_dump(mode="json")}, infer_model=True)
    log_metadata({"promotion": decision.model_dump(mode="json")})
    return decision
