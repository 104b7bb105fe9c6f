"""The pipeline's parameters: one pydantic model made of each stage's own config.

This is what `params.yaml` validates against, what the CLI loads, and what the Prefect UI
renders as the typed form of the `post-training` deployment. The field defaults are the local
profile; `params.yaml` spells them out (a test keeps the two equal) and adds profiles.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from components.base import BaseConfig
from components.config import StrictModel, read_params, validate_config
from components.data import DataConfig
from components.evaluate import EvaluateConfig
from components.gate import GateConfig
from components.sft import SFTConfig
from components.validate import ValidationConfig


class TrackingConfig(StrictModel):
    tracking_uri: str = Field("sqlite:///mlflow/mlflow.db", description="MLflow tracking (and registry) URI")
    artifact_location: str | None = Field("mlflow/artifacts", description="where a new experiment stores artifacts")
    experiment: str = Field("post-training", min_length=1)
    registered_model: str = Field("r1-tiny-math", min_length=1, description="MLflow registered model name")


class PathsConfig(StrictModel):
    artifacts_dir: str = Field("artifacts", description="stage outputs, one folder per cache key")
    reports_dir: str = Field("reports", description="summary.json and validation reports")


class PipelineParams(StrictModel):
    """Every knob of the post-training pipeline."""

    profile: str = Field("local", description="the params.yaml profile these values came from")
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    base: BaseConfig = Field(default_factory=BaseConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    promotion: GateConfig = Field(default_factory=GateConfig, description="the gate the champion alias moves past")
    paths: PathsConfig = Field(default_factory=PathsConfig)

    @model_validator(mode="after")
    def _base_has_a_corpus(self) -> PipelineParams:
        if self.base.source != "scratch":
            return self
        no_corpus = "pretrain" not in self.data.files if self.data.source == "files" else self.data.n_pretrain == 0
        if no_corpus:
            raise ValueError(
                "base.source is 'scratch', which pretrains on data/pretrain.jsonl, but the data stage writes none: "
                "set data.files.pretrain (or data.n_pretrain > 0), or use base.source: pretrained"
            )
        return self


def load_params(path: str | Path = "params.yaml", profile: str = "local") -> PipelineParams:
    """`params.yaml` (with `profile` applied) as PipelineParams; errors name the file and key."""
    values = read_params(path, profile)
    values["profile"] = profile
    return validate_config(PipelineParams, values, str(path))
