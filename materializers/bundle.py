"""The trained model bundle as a ZenML model artifact."""

import os
from typing import ClassVar

import joblib
from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from materializers.reports import ArtifactFiles
from zenloop.bundle import ModelBundle

BUNDLE_FILE = "bundle.joblib"


class ModelBundleMaterializer(ArtifactFiles, BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar = (ModelBundle,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar = ArtifactType.MODEL

    def load(self, data_type: type) -> ModelBundle:
        with self.artifact_store.open(os.path.join(self.uri, BUNDLE_FILE), "rb") as f:
            return joblib.load(f)

    def save(self, data: ModelBundle) -> None:
        with self.artifact_store.open(os.path.join(self.uri, BUNDLE_FILE), "wb") as f:
            joblib.dump(data, f)

    def save_visualizations(self, data: ModelBundle) -> dict[str, VisualizationType]:
        metrics = "\n".join(
            f"| {split} | " + ", ".join(f"{k}={v:.4f}" for k, v in values.items()) + " |"
            for split, values in data.metrics.items()
        )
        text = (
            f"# Model `{data.candidate}`\n\n| split | metrics |\n|---|---|\n{metrics}\n\n"
            + data.schema.to_markdown()
        )
        return self._markdown(text)
