"""The drift history: JSON data plus its PNG plot, shown as an image in the dashboard."""

import json
import os
from dataclasses import asdict
from typing import ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from materializers.reports import DATA_FILE, ArtifactFiles
from zenloop.history_plots import DriftHistory, HistoryCheck

PLOT_FILE = "drift_history.png"


class DriftHistoryMaterializer(ArtifactFiles, BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar = (DriftHistory,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar = ArtifactType.DATA_ANALYSIS

    def load(self, data_type: type) -> DriftHistory:
        content = json.loads(self._read(DATA_FILE))
        return DriftHistory(
            model_name=content["model_name"],
            checks=[HistoryCheck(**c) for c in content["checks"]],
            went_live=[tuple(item) for item in content["went_live"]],
            png=self._read(PLOT_FILE, binary=True),
        )

    def save(self, data: DriftHistory) -> None:
        content = {k: v for k, v in asdict(data).items() if k != "png"}
        self._write(DATA_FILE, json.dumps(content, indent=2))
        self._write(PLOT_FILE, data.png)

    def save_visualizations(self, data: DriftHistory) -> dict[str, VisualizationType]:
        visualizations = {os.path.join(self.uri, PLOT_FILE): VisualizationType.IMAGE}
        return visualizations | self._markdown(data.to_markdown())
