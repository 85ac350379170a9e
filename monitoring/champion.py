"""What the monitor knows about the model it watches."""

from pydantic import BaseModel

from zenloop.schema import FeatureSchema


class ChampionInfo(BaseModel):
    name: str
    version: str
    zenml_model_version: str
    feature_schema: FeatureSchema
    test_metrics: dict[str, float]

    def to_markdown(self) -> str:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in self.test_metrics.items())
        return f"## Champion `{self.name}` v{self.version}\n\ntest metrics: {metrics}\n"
