"""Training: data -> schema -> split -> history -> candidates (MLflow runs) -> gates -> registry.

With a time order the split is out-of-time, and a backtest on the validation rows chooses
how much history to learn from. The best passing candidate becomes champion when it beats
the naive baselines and the current champion on the test rows.
"""

from zenml import Model, pipeline

from pipelines.docker_settings import docker_settings
from steps.data import fingerprint_data, load_dataset, profile_dataset, split_dataset
from steps.promotion import promote_candidate
from steps.reference import build_reference
from steps.training import choose_training_history, train_candidates
from zenloop.config import DEFAULT_MODEL_NAME, TrainingConfig


@pipeline(
    settings={"docker": docker_settings()},  # used where steps run in containers
    model=Model(
        name=DEFAULT_MODEL_NAME,
        description="zenloop's tabular model: one version per training run",
        tags=["zenloop"],
    ),
    enable_cache=True,  # steps that must look again (data, promotion) opt out
)
def training_pipeline(config: TrainingConfig | None = None) -> None:
    config = config or TrainingConfig()
    ignored = sorted(n for n, role in config.profile.column_roles.items() if role == "ignore")
    dataset = load_dataset(config.data, fingerprint_data(config.data), ignored)
    schema = profile_dataset(dataset, config.data, config.profile, config.features, config.metric)
    train, validation, test, split = split_dataset(dataset, schema, config.split)
    history, probe = choose_training_history(
        train,
        validation,
        schema,
        split,
        config.features,
        config.candidates,
        config.history,
        config.split.seed,
    )
    board, bundle = train_candidates(
        train,
        validation,
        test,
        schema,
        split,
        history,
        config.features,
        config.candidates,
        config.gates,
        config.split.seed,
        probe,
    )
    recent = None
    if config.promotion.recent_data is not None:
        recent_data = config.promotion.recent_data
        recent = load_dataset(
            recent_data,
            fingerprint_data(recent_data, id="fingerprint_recent_data"),
            id="load_recent_data",
        )
    promote_candidate(
        board,
        bundle,
        train,
        validation,
        test,
        recent,
        config.promotion,
        config.profile,
        config.history,
    )
    build_reference(train, bundle, config.reference)
