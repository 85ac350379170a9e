"""The reference sample for drift checks, stored as an artifact of the model version."""

from typing import Annotated

import pandas as pd
from zenml import step

import materializers  # noqa: F401
from zenloop.bundle import ModelBundle
from zenloop.config import ReferenceConfig
from zenloop.reference import reference_sample


@step
def build_reference(
    train: pd.DataFrame, bundle: ModelBundle, reference: ReferenceConfig
) -> Annotated[pd.DataFrame, "reference_data"]:
    return reference_sample(train, bundle, reference.sample_size, reference.seed)
