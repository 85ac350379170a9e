"""The MLflow pyfunc face of a `ModelBundle`.

Logged this way instead of with the sklearn flavour because skops refuses XGBoost and
HistGradientBoosting internals; the bundle is a joblib file that we wrote ourselves.
MLflow logs this file as "model from code" and runs it at load time.
"""

from __future__ import annotations

import joblib
import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model

BUNDLE_ARTIFACT = "bundle"


class ZenloopModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.bundle = joblib.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.bundle.predict_frame(pd.DataFrame(model_input))


set_model(ZenloopModel())
