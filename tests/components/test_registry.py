"""The MLflow model registry: lookups name what exists."""

from __future__ import annotations

import pytest


def test_unknown_model_version_or_alias_is_named_with_what_exists(tmp_path):
    from components import tracking
    from components.registry import RegistryLookupError, resolve_model_version  # `registry` is a fixture here
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.setup(uri, "lookup", str(tmp_path / "artifacts"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    client.create_model_version("m", source=str(tmp_path), run_id=None)
    client.set_registered_model_alias("m", "champion", "1")
    with pytest.raises(RegistryLookupError, match=r"no registered model named 'nope' .* \(registered: m\)"):
        resolve_model_version("nope", alias="champion")
    with pytest.raises(RegistryLookupError, match=r"model 'm' has no version '7' \(versions: 1\)"):
        resolve_model_version("m", version="7")
    with pytest.raises(RegistryLookupError, match=r"model 'm' has no alias 'best' \(aliases: champion\)"):
        resolve_model_version("m", alias="best")
    assert str(resolve_model_version("m", alias="champion").version) == "1"
