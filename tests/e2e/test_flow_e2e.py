"""End to end: the `post-training` flow against a real Prefect server and a real MLflow server.

One scratch project (git + DVC) runs the whole flow on tiny settings; then the same run again
(served from cache, registers nothing); then bad data (stopped at validation, registers
nothing, moves no alias).
"""

import json
from pathlib import Path

import pytest
import yaml

from components.config import deep_merge
from tests.conftest import make_project, tiny_overrides

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LINEAGE_TAGS = ("data_md5", "params_hash", "git_commit", "prefect_flow_run_id", "validation_status", "parent_model", "model_digest")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def params(project, mlflow_server):
    from flows.params import PipelineParams

    overrides = deep_merge(
        tiny_overrides(),
        {
            "data": {"out_dir": str(project / "data")},
            "tracking": {"tracking_uri": mlflow_server, "artifact_location": None, "registered_model": "e2e-model"},
            "paths": {"artifacts_dir": str(project / "artifacts"), "reports_dir": str(project / "reports")},
        },
    )
    return PipelineParams.model_validate(overrides)


@pytest.fixture(scope="module")
def first_run(project, params, prefect_server):
    from flows.post_training import post_training

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        return post_training(params)


def client(url):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def test_first_run_registers_the_model_with_every_lineage_tag(first_run, project, mlflow_server):
    version = client(mlflow_server).get_model_version("e2e-model", first_run["model"]["version"])
    missing = [tag for tag in LINEAGE_TAGS if not version.tags.get(tag)]
    assert not missing, f"lineage tags missing: {missing}"
    assert version.tags["validation_status"] == "passed"
    assert version.tags["data_md5"] == yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]
    assert version.tags["data_md5"].endswith(".dir")
    assert version.tags["gate.decision"] == "promoted"
    # what lets the next gate compare problem by problem: greedy correctness on each eval problem
    assert len(version.tags["eval.per_problem.pass_at_1"]) == 24 and version.tags["eval.set_digest"]


def test_every_stage_model_is_registered_with_its_parent(first_run, mlflow_server):
    mlflow = client(mlflow_server)
    registered = first_run["registered"]
    assert set(registered) == {"base", "sft", "reward_model", "grpo", "sft_round2", "alignment", "verifier", "distill"}
    chain = [("sft", "base"), ("reward_model", "sft"), ("grpo", "sft"), ("alignment", "sft_round2"), ("verifier", "alignment")]
    chain += [("distill", "alignment")]
    for child, parent in chain:
        version = mlflow.get_model_version(registered[child]["name"], registered[child]["version"])
        parent_ref = f"models:/{registered[parent]['name']}/{registered[parent]['version']}"
        assert version.tags["parent_model"] == parent_ref, child
        assert version.tags["stage"] == child
    assert registered["alignment"]["name"] == "e2e-model"  # the final policy carries the main name
    assert registered["reward_model"]["name"] == "e2e-model-reward-model" and registered["verifier"]["name"] == "e2e-model-verifier"
    reward_model = mlflow.get_model_version("e2e-model-reward-model", registered["reward_model"]["version"])
    assert "metric.held_out_pairwise_accuracy" in reward_model.tags and reward_model.description.startswith("# e2e-model-reward-model")


def test_first_model_becomes_champion_and_challenger(first_run, mlflow_server):
    mlflow = client(mlflow_server)
    assert mlflow.get_model_version_by_alias("e2e-model", "champion").version == first_run["model"]["version"]
    assert mlflow.get_model_version_by_alias("e2e-model", "challenger").version == first_run["model"]["version"]
    assert first_run["alias"]["promoted"] and "first model" in first_run["alias"]["reason"]


RECIPE = ("base", "sft", "reward_model", "grpo", "rejection_sampling", "sft_control", "sft_round2", "alignment", "verifier", "distill")
EVALUATED = ("base", "sft", "grpo", "sft_control", "sft_round2", "alignment", "distill", "student_sft")


def test_summary_file_and_mlflow_runs(first_run, project, mlflow_server):
    summary = json.loads((project / "reports" / "summary.json").read_text())
    assert set(summary["stages"]) == {"data", "validate", *RECIPE, "student_sft"}
    for stage in EVALUATED:
        assert "eval.pass@1" in summary["stages"][stage]["metrics"], stage
    assert summary["model"]["stage"] == "alignment"
    assert summary["stages"]["grpo"]["metrics"]["final_reward_accuracy_gap"] is not None
    runs = client(mlflow_server).search_runs(
        [client(mlflow_server).get_experiment_by_name("post-training").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{summary['mlflow_run_id']}'",
    )
    assert {r.info.run_name for r in runs} >= {"data", "validate", *RECIPE, *(f"evaluate-{s}" for s in EVALUATED)}
    validate_run = next(r for r in runs if r.info.run_name == "validate")
    artifacts = [a.path for a in client(mlflow_server).list_artifacts(validate_run.info.run_id)]
    assert "validation_report" in artifacts


def test_the_run_measures_every_claim_of_the_recipe_into_claims_md(first_run, project, mlflow_server):
    from components.claims import build, from_summary

    summary = json.loads((project / "reports" / "summary.json").read_text())
    report = build(from_summary(summary))
    # Every claim is measured, except forgetting when this few-step base solves none of the probe (then 0 -> 0 says nothing).
    unmeasured = [c.note for c in report.claims if c.holds is None and "the base solves none of the probe" not in c.note]
    assert not unmeasured, unmeasured
    text = (project / "reports" / "claims.md").read_text()
    for claim in report.claims:
        assert claim.claim in text
    assert "sft_round2 - sft_control" in text, "round-2 SFT is compared with its control"
    assert "scored by the verifier" in text, "the final model's best-of-N is ranked by the reward model retrained from it"
    logged = [a.path for a in client(mlflow_server).list_artifacts(summary["mlflow_run_id"], "claims")]
    assert logged == ["claims/claims.json", "claims/claims.md"]


def test_each_stage_streamed_to_its_own_run_and_was_metered(first_run, project, mlflow_server):
    summary = json.loads((project / "reports" / "summary.json").read_text())
    mlflow = client(mlflow_server)
    runs = {
        r.info.run_name: r
        for r in mlflow.search_runs(
            [mlflow.get_experiment_by_name("post-training").experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{summary['mlflow_run_id']}'",
        )
    }
    sft = runs["sft"]
    steps = sorted(p.step for p in mlflow.get_metric_history(sft.info.run_id, "train/loss"))
    assert steps == [2, 4, 6, 8, 10, 12], "SFT's loss on the trainer's global step (logging_steps 2 of 12)"
    assert sft.data.metrics["usage.tokens_trained"] > 0 and sft.data.tags["usage.device"] == "cpu"
    assert {d.dataset.name for d in sft.inputs.dataset_inputs} == {"sft"}, "the dataset it read, by role"
    sampled = runs["rejection_sampling"]
    contexts = {d.dataset.name: next(t.value for t in d.tags if t.key == "mlflow.data.context") for d in sampled.inputs.dataset_inputs}
    assert contexts == {"prompts": "input", "sft": "input", "rejection_sampling.sft": "generated", "rejection_sampling.pairs": "generated"}
    assert runs["grpo"].data.metrics["usage.tokens_generated"] > 0, "GRPO's rollouts are counted"
    assert 0 <= runs["grpo"].data.metrics["usage.zero_advantage_share"] <= 1
    parent = mlflow.get_run(summary["mlflow_run_id"])
    assert parent.data.tags["data_md5"] == summary["lineage"]["data_md5"] and parent.data.tags["validation_status"] == "passed"

    for stage in RECIPE:
        assert summary["stages"][stage]["usage"] and summary["stages"][stage]["cost"] > 0, stage
    totals = summary["totals"]
    assert totals["cost"] == pytest.approx(sum(row.get("cost", 0) for row in summary["stages"].values()))
    assert totals["tokens_trained"] > 0 and totals["samples_generated"] > 0  # (the tiny model keeps few or none)


def test_the_flow_run_shows_progress_the_stage_table_and_the_gate_in_prefect(first_run, project):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    summary = json.loads((project / "reports" / "summary.json").read_text())
    flow_run_id = summary["lineage"]["prefect_flow_run_id"]
    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    by_key = {a.key: a for a in artifacts if a.key}
    for stage in ("sft", "grpo", "reward-model", "alignment"):
        progress = by_key.get(f"training-progress-{stage}")
        assert progress is not None and progress.type == "progress" and float(progress.data) == 100.0, stage
    table = json.loads(by_key["post-training-stages"].data)
    names = [row["stage"] for row in table]
    assert names[:3] == ["data", "validate", "base"] and names[-1] == "total", "in the order they ran, then the total"
    assert set(names[:-1]) == set(summary["stages"])
    gate = by_key["promotion-gate-e2e-model"]
    assert gate.type == "markdown" and f"v{summary['model']['version']}" in gate.data and "## Reasons" in gate.data


def test_dvc_pushed_the_data_to_the_local_remote(first_run, project):
    assert any((project / ".dvc-remote").rglob("*")), "dvc push wrote nothing to the remote"


def test_rerun_is_served_from_cache_and_registers_nothing_new(first_run, project, params, mlflow_server):
    from flows.post_training import post_training

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        second = post_training(params)
    cached = {stage: row["cached"] for stage, row in second["stages"].items() if stage != "data"}
    assert all(cached.values()), f"not served from cache: {cached}"
    assert second["model"] == {**first_run["model"], "newly_registered": False}
    versions = client(mlflow_server).search_model_versions("name = 'e2e-model'")
    assert len(versions) == 1
    assert second["registered"] == first_run["registered"]


def test_bad_data_stops_before_training_and_changes_no_alias(first_run, project, params, mlflow_server):
    from flows.post_training import ValidationFailed, post_training

    bad = project / "bad"
    bad.mkdir()
    good = Path(first_run["stages"]["data"]["outputs"]["sft"]).read_text().splitlines()
    (bad / "sft.jsonl").write_text(
        "\n".join(good[:20] + [json.dumps({"messages": [{"role": "assistant", "content": "no user turn"}]})]) + "\n"
    )
    for kind in ("prefs", "rl", "eval", "pretrain", "probe"):
        (bad / f"{kind}.jsonl").write_text(Path(first_run["stages"]["data"]["outputs"][kind]).read_text())
    files = {kind: str(bad / f"{kind}.jsonl") for kind in ("sft", "prefs", "rl", "eval", "pretrain", "probe")}
    broken = params.model_copy(
        update={"data": params.data.model_copy(update={"source": "files", "files": files, "out_dir": str(project / "data-bad")})}
    )
    mlflow = client(mlflow_server)
    champion_before = mlflow.get_model_version_by_alias("e2e-model", "champion").version

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        with pytest.raises(ValidationFailed, match=r"sft\.jsonl.*messages"):
            post_training(broken)

    assert len(mlflow.search_model_versions("name = 'e2e-model'")) == 1
    assert mlflow.get_model_version_by_alias("e2e-model", "champion").version == champion_before
    summary = json.loads((project / "reports" / "summary.json").read_text())
    assert summary["lineage"]["validation_status"] == "failed"
    assert "base" not in summary["stages"]
