"""Small builders shared by tests."""

import numpy as np
import pandas as pd

from zenloop.config import CandidateConfig, DataConfig, FeatureConfig, GateConfig, ProfileConfig
from zenloop.data.loading import source_label, target_column
from zenloop.schema import FeatureSchema, infer_schema

FAST_XGB = CandidateConfig(name="xgb", family="xgboost", params={"n_estimators": 80})


def schema_for(frame: pd.DataFrame, data: DataConfig, features=None) -> FeatureSchema:
    return infer_schema(
        frame,
        target_column(data),
        data.task,
        ProfileConfig(),
        features or FeatureConfig(),
        source_label(data),
    )


def lenient_gates() -> GateConfig:
    return GateConfig(min_r2=0.0, min_f1=0.0, min_roc_auc=0.0, max_gap_pct=None)


def other_schema_frame(n: int, task: str, seed: int = 0) -> pd.DataFrame:
    """A frame that shares nothing with the embedded orders: a property-rental dataset."""
    rng = np.random.default_rng(seed)
    rooms = rng.integers(1, 6, n)
    area = rng.normal(70, 20, n).clip(20) * rooms**0.5
    district = rng.choice([f"district_{i}" for i in range(8)], n)
    landlord = np.array([f"L{int(i):05d}" for i in rng.integers(0, 900, n)])
    listed = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    words = np.array(["sunny", "quiet", "renovated", "balcony", "garden", "central", "cozy"])
    blurb = [" ".join(rng.choice(words, 4)) for _ in range(n)]
    district_effect = np.array([int(d[-1]) for d in district]) * 40
    rent = 8 * area + 150 * rooms + district_effect + rng.normal(0, 60, n)
    frame = pd.DataFrame(
        {
            "listing_ref": [f"REF-{i:07d}" for i in range(n)],
            "listed_on": listed.strftime("%Y-%m-%d"),
            "district": district,
            "landlord": landlord,
            "description": blurb,
            "area_m2": area.round(1),
            "rooms": rooms,
        }
    )
    if task == "regression":
        frame["monthly_rent"] = rent.round(0)
    else:
        frame["tier"] = pd.cut(rent, [-np.inf, 700, 1000, np.inf], labels=["low", "mid", "high"])
        frame["tier"] = frame["tier"].astype(str)
    return frame


def churn_frame(n: int = 1_500, seed: int = 0) -> pd.DataFrame:
    """A small customer table with Yes/No labels, about one churner in five."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    monthly = rng.normal(65, 25, n).clip(15)
    contract = rng.choice(["monthly", "one_year", "two_year"], n, p=[0.55, 0.25, 0.2])
    paperless = rng.choice(["Yes", "No"], n)
    risk = 1.2 - 0.05 * tenure + 0.02 * (monthly - 65) + 1.5 * (contract == "monthly")
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-(risk - 1.5))), "Yes", "No")
    return pd.DataFrame(
        {
            "tenure": tenure,
            "monthly_charges": monthly.round(2),
            "contract": contract,
            "paperless_billing": paperless,
            "churn": churn,
        }
    )
