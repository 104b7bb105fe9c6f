"""The alias gate on a real (SQLite) MLflow registry: champion moves only on a better model."""

import pytest

from components import tracking


@pytest.fixture
def registry(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.setup(uri, "gate-test", str(tmp_path / "artifacts"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")

    def add_version(pass_at_1: float) -> str:
        version = client.create_model_version("m", source=str(tmp_path), run_id=None)
        client.set_model_version_tag("m", version.version, "metric.pass_at_1", str(pass_at_1))
        return version.version

    return client, add_version


@pytest.mark.parametrize(
    ("first", "second", "margin", "second_promoted"),
    [
        (0.30, 0.40, 0.0, True),  # better
        (0.30, 0.20, 0.0, False),  # worse
        (0.30, 0.30, 0.0, False),  # equal is not better
        (0.30, 0.33, 0.05, False),  # better, but within the required margin
    ],
)
def test_gate_decisions(registry, first, second, margin, second_promoted):
    client, add_version = registry
    v1 = add_version(first)
    decision = tracking.promote_if_better("m", v1, "pass@1", first, margin)
    assert decision.promoted and "first model" in decision.reason

    v2 = add_version(second)
    decision = tracking.promote_if_better("m", v2, "pass@1", second, margin)
    assert decision.promoted is second_promoted
    champion = client.get_model_version_by_alias("m", "champion").version
    assert champion == (v2 if second_promoted else v1)
    assert client.get_model_version_by_alias("m", "challenger").version == v2
    tags = client.get_model_version("m", v2).tags
    assert tags["gate.decision"] == ("promoted" if second_promoted else "rejected")
    assert f"champion v{v1}" in tags["gate.reason"]
