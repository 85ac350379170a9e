"""The reference sample that later drift checks compare live traffic against."""

from __future__ import annotations

import pandas as pd

from zenloop.bundle import PREDICTION_COLUMN, ModelBundle


def reference_sample(
    train: pd.DataFrame, bundle: ModelBundle, size: int, seed: int
) -> pd.DataFrame:
    """A seeded sample of training features with the model's predictions beside them."""
    sample = train.sample(min(size, len(train)), random_state=seed).reset_index(drop=True)
    features = sample[bundle.schema.feature_names]
    predicted = bundle.predict_frame(features)[PREDICTION_COLUMN]
    return features.assign(**{PREDICTION_COLUMN: predicted.to_numpy()})
