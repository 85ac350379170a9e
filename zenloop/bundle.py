"""A trained model as one object: the fitted pipeline, its schema and its labels.

It is what MLflow stores (as a pyfunc model), what the ZenML model artifact holds and
what serving loads, so all three predict the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from zenloop.schema import FeatureSchema

PREDICTION_COLUMN = "prediction"
PROBA_PREFIX = "proba_"


@dataclass
class ModelBundle:
    pipeline: Pipeline
    schema: FeatureSchema
    candidate: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def is_classifier(self) -> bool:
        return self.schema.task == "classification"

    def encode_labels(self, labels: pd.Series) -> np.ndarray:
        """Class labels -> 0..k-1 in the schema's class order."""
        index = {str(c): i for i, c in enumerate(self.schema.classes or [])}
        return labels.astype(str).map(index).to_numpy()

    def predict_raw(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Encoded predictions and, for classifiers, class probabilities."""
        if not self.is_classifier:
            return self.pipeline.predict(frame).astype(float), None
        proba = self.pipeline.predict_proba(frame)
        return proba.argmax(axis=1), proba

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions with class labels restored and one probability column per class."""
        encoded, proba = self.predict_raw(frame)
        if proba is None:
            return pd.DataFrame({PREDICTION_COLUMN: encoded})
        classes = list(self.schema.classes or [])
        out = {PREDICTION_COLUMN: [classes[i] for i in encoded]}
        out.update({f"{PROBA_PREFIX}{c}": proba[:, i] for i, c in enumerate(classes)})
        return pd.DataFrame(out)
