"""Materializers for zenloop's own types, each with a dashboard visualization.

Importing this package registers them with ZenML.
"""

from materializers.bundle import ModelBundleMaterializer
from materializers.history import DriftHistoryMaterializer
from materializers.reports import (
    CandidateBoardMaterializer,
    DriftCheckMaterializer,
    MarkdownReportMaterializer,
)

__all__ = [
    "CandidateBoardMaterializer",
    "DriftCheckMaterializer",
    "DriftHistoryMaterializer",
    "MarkdownReportMaterializer",
    "ModelBundleMaterializer",
]
