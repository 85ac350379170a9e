"""Reports: pydantic results stored as JSON, and the candidate board with its plots."""

import json
import os
from dataclasses import asdict
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from monitoring.champion import ChampionInfo
from monitoring.drift_report import DriftCheck, DriftReport
from monitoring.policy import Decision
from monitoring.retraining import RetrainPlan
from monitoring.review import PromotionReview
from zenloop.deployment import DeploymentCheck, DeploymentRecord
from zenloop.history import HistoryChoice
from zenloop.promotion import PromotionDecision
from zenloop.report import CandidateBoard
from zenloop.schema import FeatureSchema
from zenloop.time_order import SplitInfo
from zenloop.training import CandidateResult

DATA_FILE = "data.json"
VISUALIZATION_FILE = "report.md"
COMPARISON_PLOT = "comparison.png"


class ArtifactFiles:
    """File helpers for materializers; mixed in before `BaseMaterializer`."""

    uri: str
    artifact_store: Any

    def _write(self, name: str, content: str | bytes) -> str:
        path = os.path.join(self.uri, name)
        with self.artifact_store.open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        return path

    def _read(self, name: str, binary: bool = False) -> Any:
        with self.artifact_store.open(os.path.join(self.uri, name), "rb" if binary else "r") as f:
            return f.read()

    def _markdown(self, text: str) -> dict[str, VisualizationType]:
        return {self._write(VISUALIZATION_FILE, text): VisualizationType.MARKDOWN}


class MarkdownReportMaterializer(ArtifactFiles, BaseMaterializer):
    """Pydantic reports with a `to_markdown` view."""

    ASSOCIATED_TYPES: ClassVar = (
        FeatureSchema,
        PromotionDecision,
        DeploymentCheck,
        DeploymentRecord,
        ChampionInfo,
        Decision,
        RetrainPlan,
        SplitInfo,
        HistoryChoice,
        PromotionReview,
    )
    ASSOCIATED_ARTIFACT_TYPE: ClassVar = ArtifactType.DATA_ANALYSIS

    def load(self, data_type: type) -> Any:
        return data_type.model_validate_json(self._read(DATA_FILE))

    def save(self, data: Any) -> None:
        self._write(DATA_FILE, data.model_dump_json(indent=2))

    def save_visualizations(self, data: Any) -> dict[str, VisualizationType]:
        return self._markdown(data.to_markdown())


class CandidateBoardMaterializer(ArtifactFiles, BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar = (CandidateBoard,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar = ArtifactType.DATA_ANALYSIS

    @staticmethod
    def _plot_name(candidate: str, plot: str) -> str:
        return f"{candidate}__{plot}.png"

    def load(self, data_type: type) -> CandidateBoard:
        content = json.loads(self._read(DATA_FILE))
        results = []
        for item in content["results"]:
            plots = {p: self._read(self._plot_name(item["name"], p), True) for p in item["plots"]}
            results.append(CandidateResult(**{**item, "plots": plots}))
        return CandidateBoard(
            task=content["task"],
            results=results,
            comparison_plot=self._read(COMPARISON_PLOT, True),
            metric_name=content.get("metric"),
            history=HistoryChoice.model_validate(content.get("history") or {}),
            split=content.get("split", ""),
            out_of_time=content.get("out_of_time", False),
        )

    def save(self, data: CandidateBoard) -> None:
        results = []
        for result in data.results:
            for plot, png in result.plots.items():
                self._write(self._plot_name(result.name, plot), png)
            results.append({**asdict(result), "plots": list(result.plots)})
        content = {
            "task": data.task,
            "metric": data.metric_name,
            "history": data.history.model_dump(mode="json"),
            "split": data.split,
            "out_of_time": data.out_of_time,
            "results": results,
        }
        self._write(DATA_FILE, json.dumps(content, indent=2))
        self._write(COMPARISON_PLOT, data.comparison_plot)

    def save_visualizations(self, data: CandidateBoard) -> dict[str, VisualizationType]:
        visualizations = self._markdown(data.to_markdown())
        visualizations[os.path.join(self.uri, COMPARISON_PLOT)] = VisualizationType.IMAGE
        for result in data.ranked():
            for plot in result.plots:
                path = os.path.join(self.uri, self._plot_name(result.name, plot))
                visualizations[path] = VisualizationType.IMAGE
        return visualizations


class DriftCheckMaterializer(ArtifactFiles, BaseMaterializer):
    """The typed drift report as JSON, with three views in the dashboard's order.

    The static page comes first because it is the one the dashboard's script-blocking
    iframe can show; Evidently's interactive report comes last, kept for download.
    """

    ASSOCIATED_TYPES: ClassVar = (DriftCheck,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar = ArtifactType.DATA_ANALYSIS
    HTML_FILE: ClassVar = "evidently.html"
    STATIC_HTML_FILE: ClassVar = "drift.html"

    def load(self, data_type: type) -> DriftCheck:
        report = DriftReport.model_validate_json(self._read(DATA_FILE))
        # artifacts stored before the static page existed have no file for it
        static = os.path.join(self.uri, self.STATIC_HTML_FILE)
        static_html = (
            self._read(self.STATIC_HTML_FILE) if self.artifact_store.exists(static) else ""
        )
        return DriftCheck(report=report, html=self._read(self.HTML_FILE), static_html=static_html)

    def save(self, data: DriftCheck) -> None:
        self._write(DATA_FILE, data.report.model_dump_json(indent=2))
        self._write(self.HTML_FILE, data.html)
        self._write(self.STATIC_HTML_FILE, data.static_html)

    def save_visualizations(self, data: DriftCheck) -> dict[str, VisualizationType]:
        visualizations: dict[str, VisualizationType] = {}
        if data.static_html:
            path = os.path.join(self.uri, self.STATIC_HTML_FILE)
            visualizations[path] = VisualizationType.HTML
        visualizations |= self._markdown(data.report.to_markdown())
        if data.html:
            visualizations[os.path.join(self.uri, self.HTML_FILE)] = VisualizationType.HTML
        return visualizations
