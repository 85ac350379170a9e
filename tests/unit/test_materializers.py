"""Every type of ours is stored by our materializer (with a dashboard view), not a fallback."""

import pytest
from zenml.materializers.materializer_registry import materializer_registry

import materializers
from monitoring.champion import ChampionInfo
from monitoring.drift_report import DriftCheck
from monitoring.policy import Decision
from monitoring.retraining import RetrainPlan
from zenloop.bundle import ModelBundle
from zenloop.deployment import DeploymentCheck, DeploymentRecord
from zenloop.promotion import PromotionDecision
from zenloop.report import CandidateBoard
from zenloop.schema import FeatureSchema

OURS = {
    FeatureSchema: materializers.MarkdownReportMaterializer,
    PromotionDecision: materializers.MarkdownReportMaterializer,
    DeploymentCheck: materializers.MarkdownReportMaterializer,
    DeploymentRecord: materializers.MarkdownReportMaterializer,
    ChampionInfo: materializers.MarkdownReportMaterializer,
    Decision: materializers.MarkdownReportMaterializer,
    RetrainPlan: materializers.MarkdownReportMaterializer,
    CandidateBoard: materializers.CandidateBoardMaterializer,
    ModelBundle: materializers.ModelBundleMaterializer,
    DriftCheck: materializers.DriftCheckMaterializer,
}


@pytest.mark.parametrize("kind", list(OURS), ids=lambda k: k.__name__)
def test_our_types_use_our_materializers(kind):
    assert materializer_registry[kind] is OURS[kind]
    if OURS[kind] is materializers.MarkdownReportMaterializer:
        assert callable(getattr(kind, "to_markdown", None)), "the dashboard view needs to_markdown"
