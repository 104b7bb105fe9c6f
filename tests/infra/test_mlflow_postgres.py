"""MLflow on PostgreSQL and S3, for real: the pipeline's tracking and registry operations against
an `mlflow server` whose backend store is PostgreSQL and whose artifacts go to an S3-compatible
store (moto's server), configured as the cluster runs it (infra/k8s/mlflow.yaml: its
--allowed-hosts, artifacts proxied to S3, so clients hold no S3 credentials).

A fresh database per run (`posttrain_test_<random>`, dropped at the end) and a real server
process on 127.0.0.1 (stopped at the end, even on failure); then components.tracking,
components.registry and components.promotion do what the flow does: `setup`, a `pipeline_run`
with a stage's nested run from `log_stage`, and the champion gate (`apply_gate`) and a rollback
on model versions. Skipped when nothing accepts connections on 127.0.0.1:5432.

    .venv/bin/python -m pytest tests/infra/test_mlflow_postgres.py -q
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from components import promotion, registry, tracking
from components.config import StageResult
from components.gate import GateConfig, encode_correctness
from components.sft import SFTConfig
from tests import fault_table
from tests.conftest import REPO, start_mlflow_server, stop

pytestmark = pytest.mark.slow

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
SERVICE_HOST = "mlflow.posttrain.svc.cluster.local:5000"


def postgres_accepts_connections() -> bool:
    try:
        with socket.create_connection((POSTGRES["host"], POSTGRES["port"]), timeout=2):
            return True
    except OSError:
        return False


def manifest_allowed_hosts() -> str:
    mlflow = next(d for d in yaml.safe_load_all((REPO / "infra" / "k8s" / "mlflow.yaml").read_text()) if d and d["kind"] == "Deployment")
    args = mlflow["spec"]["template"]["spec"]["containers"][0]["args"]
    return args[args.index("--allowed-hosts") + 1]


@pytest.fixture(scope="module")
def database():
    """A fresh PostgreSQL database; dropped (with any leftover connection) afterwards."""
    if not postgres_accepts_connections():
        pytest.skip("PostgreSQL does not accept connections on 127.0.0.1:5432")
    # SQLAlchemy 2.1 (what MLflow uses) maps postgresql:// to psycopg 3: the driver the server needs.
    psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL driver is missing: pip install 'psycopg[binary]==3.3.9'")
    from psycopg import sql

    name = f"posttrain_test_{uuid.uuid4().hex[:12]}"
    # autocommit: CREATE/DROP DATABASE cannot run in a transaction.
    admin = psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES)
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield {"name": name, "uri": f"postgresql://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"}
        finally:
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()


@pytest.fixture(scope="module")
def server(database, s3_server, tmp_path_factory):
    """`mlflow server` on that database and that bucket, with the Kubernetes manifest's allowed hosts."""
    import mlflow

    workdir = tmp_path_factory.mktemp("mlflow-postgres")
    artifacts = f"s3://{s3_server['bucket']}/mlflow-{database['name']}"
    with pytest.MonkeyPatch.context() as patch:
        # The server reads --allowed-hosts from this variable too; only the child process needs it.
        patch.setenv("MLFLOW_SERVER_ALLOWED_HOSTS", manifest_allowed_hosts())
        url, process = start_mlflow_server(workdir, backend_uri=database["uri"], artifacts=artifacts)
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        yield {"url": url, "s3": s3_server, "prefix": artifacts.removeprefix(f"s3://{s3_server['bucket']}/")}
    finally:
        stop(process)
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def query(database: dict, statement: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(dbname=database["name"], **POSTGRES) as connection:
        return connection.execute(statement).fetchall()


def http_status(url: str, host: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_backend_store_is_postgres(server, database):
    tables = {row[0] for row in query(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"experiments", "runs", "registered_models", "model_versions", "registered_model_aliases"} <= tables


def test_service_host_is_allowed_and_others_are_not(server):
    search = f"{server['url']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert http_status(search, SERVICE_HOST) == 200
    assert http_status(search, "attacker.example.com") == 403


def test_pipeline_and_stage_runs_are_recorded(server, database):
    experiment_id = tracking.setup(server["url"], "post-training-postgres")
    assert tracking.setup(server["url"], "post-training-postgres") == experiment_id, "setup must reuse the experiment"
    result = StageResult(
        stage="sft",
        outputs={"model": "/checkpoints/artifacts/sft/abc/model"},
        metrics={"final_loss": 0.5, "global_step": 3.0},
        curves={"train_loss": [1.0, 0.7, 0.5]},
        info={"resumed_from": None},
        wall_seconds=1.5,
    )
    lineage = {"params_hash": "p" * 64, "git_commit": "unknown", "prefect_flow_run_id": "none", "profile": "cluster"}
    with tracking.pipeline_run("post-training test", lineage, experiment_id) as parent_id:
        stage_id = tracking.log_stage(result, SFTConfig(), cached=False, name="sft")

    from mlflow import MlflowClient

    client = MlflowClient(server["url"])
    parent, stage = client.get_run(parent_id), client.get_run(stage_id)
    assert parent.data.tags["profile"] == "cluster" and parent.info.status == "FINISHED"
    assert stage.data.tags["mlflow.parentRunId"] == parent_id and stage.data.tags["stage"] == "sft"
    assert stage.data.metrics["final_loss"] == 0.5 and stage.data.params["max_steps"] == str(SFTConfig().max_steps)
    assert [m.value for m in client.get_metric_history(stage_id, "train_loss")] == [1.0, 0.7, 0.5]
    # Artifacts go through the server (proxied) to its artifacts destination: the bucket.
    assert {a.path for a in client.list_artifacts(stage_id)} >= {"stage_result.json", "sft_curves.png"}
    s3, bucket = server["s3"]["client"], server["s3"]["bucket"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=server["prefix"]).get("Contents", [])
    (stored,) = [o["Key"] for o in listed if o["Key"].endswith("/stage_result.json")]
    assert json.loads(s3.get_object(Bucket=bucket, Key=stored)["Body"].read())["outputs"] == result.outputs
    assert query(database, f"SELECT count(*) FROM runs WHERE run_uuid IN ('{parent_id}', '{stage_id}')") == [(2,)]


def test_champion_moves_only_past_the_gate(server):
    from mlflow import MlflowClient

    experiment_id = tracking.setup(server["url"], "post-training-postgres")
    client = MlflowClient(server["url"])
    name = f"r1-test-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)

    def register(solved: int) -> str:
        # What registry.register_model records, without training a model to log: 100 eval problems.
        with tracking.pipeline_run("register", {}, experiment_id) as run_id:
            version = str(client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version)
        tags = {"metric.pass_at_1": solved / 100, "model_digest": f"digest-{version}", registry.EVAL_SET_TAG: "eval-a"}
        tags["eval.per_problem.pass_at_1"] = encode_correctness([i < solved for i in range(100)])
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, str(value))
        return version

    gate = GateConfig(min_improvement=0.05)
    first = register(40)
    decision = promotion.apply_gate(name, first, gate)
    assert decision.promoted and decision.champion_before is None and "first model" in decision.reason

    worse = register(30)
    decision = promotion.apply_gate(name, worse, gate)
    assert not decision.promoted and decision.champion_after == first

    within_margin = register(42)
    decision = promotion.apply_gate(name, within_margin, gate)
    assert not decision.promoted and decision.champion_after == first

    better = register(55)
    decision = promotion.apply_gate(name, better, gate)
    assert decision.promoted and decision.champion_before == first and decision.champion_after == better

    assert str(client.get_model_version_by_alias(name, promotion.CHAMPION).version) == better
    assert str(client.get_model_version_by_alias(name, promotion.CHALLENGER).version) == better
    tags = {v: client.get_model_version(name, v).tags for v in (first, worse, within_margin, better)}
    assert [tags[v]["gate.decision"] for v in (first, worse, within_margin, better)] == ["promoted", "rejected", "rejected", "promoted"]
    assert "does not beat the champion" in tags[worse]["gate.reason"] and tags[worse]["gate.method"] == "paired-bootstrap"

    promotion.rollback_champion(name, "postgres rollback")
    assert str(client.get_model_version_by_alias(name, promotion.CHAMPION).version) == first
    assert registry.find_version_by_digest(name, f"digest-{within_margin}").version == within_margin


def test_three_pipelines_at_once_finish_register_each_model_once_and_crown_the_better(server, tmp_path, tiny_data, prefect_server):
    """Three `post-training` processes at once, each in its own checkout, on this one MLflow.

    Two have the same params and data (7s: pass@1 20/24), one other data (8s: 4/24); see
    tests.conftest.constant_answer_data. The registry lock (flows.registry_lock) makes the
    two identical runs register their identical model once, and the gates decide one after
    the other, so whichever order they end in, the champion is a model trained on the 7s."""
    from prefect.settings import PREFECT_API_URL

    from mlflow import MlflowClient
    from tests.conftest import constant_answer_data, make_project, sft_only_overrides

    name = f"concurrent-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(REPO)}
    processes = {}
    for label, answer in (("sevens", "7"), ("sevens-again", "7"), ("eights", "8")):
        project = make_project(tmp_path / label)
        files = constant_answer_data(tiny_data, project / "user-data", answer)
        params = sft_only_overrides(project, server["url"], name, files)
        params["tracking"]["experiment"] = "post-training-concurrent"
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        command = [sys.executable, "-m", "flows.post_training", "--params", "params.yaml"]
        processes[label] = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors = {label: process.communicate(timeout=1200)[1] for label, process in processes.items()}
    # A failed run's last traceback, whole and unquoted (MLflow's INFO logs bury it, and an
    # assertion's repr would cut it before the error it ends with).
    failed = {k: e[e.rfind("Traceback") :][-6000:] for k, e in errors.items() if processes[k].returncode}
    if failed:
        pytest.fail("\n\n".join(f"{label} exited {processes[label].returncode}:\n{tb}" for label, tb in failed.items()), pytrace=False)

    client = MlflowClient(server["url"])
    versions = client.search_model_versions(f"name = '{name}'")
    digests = [v.tags["model_digest"] for v in versions]
    assert len(digests) == len(set(digests)), "the same model files were registered twice"
    summaries = {label: json.loads((tmp_path / label / "reports" / "summary.json").read_text()) for label in processes}
    mine = {label: s["model"]["version"] for label, s in summaries.items()}
    assert mine["sevens"] == mine["sevens-again"] != mine["eights"], mine
    assert len(versions) == 2
    champion = client.get_model_version_by_alias(name, promotion.CHAMPION)
    assert str(champion.version) == mine["sevens"], {v.version: v.tags.get("gate.reason") for v in versions}
    assert float(champion.tags["metric.pass_at_1"]) == pytest.approx(20 / 24)
    fault_table.record(
        "three pipelines at once on one MLflow (PostgreSQL), two with the same params",
        f"all finished; {len(versions)} versions: the identical runs' one model once, the other model once; "
        "the gates decided one at a time and the champion is the better model (pass@1 20/24 against 4/24)",
        "nothing; no model registered twice",
    )
