"""Faults as a user meets them, on real processes: SIGKILL mid-training, a full disk, two runs at once.

Each training stage runs as `posttrain <stage>` in its own process, is SIGKILLed as soon as it
has a complete checkpoint (mid-stage: most steps are still ahead), and is started again with
the same command. It must resume from that checkpoint and end where an uninterrupted run ends.
Every test adds its row to the README's fault table (docs/faults.md, tests/fault_table.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from components import stages, tracking
from components.config import deep_merge
from components.trainer_args import last_checkpoint
from tests import fault_table
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STEPS, EVERY = 40, 5  # long enough that a kill at the first checkpoint lands mid-stage


def posttrain(args: list[str], **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "components.cli", *args], cwd=ROOT, env=env, text=True, **popen)


def finish(process: subprocess.Popen, timeout: float = 600) -> dict:
    """Wait for a `posttrain <stage>` run to succeed; its StageResult (the JSON it prints last)."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit {process.returncode}:\n{err[-3000:]}"
    return json.loads(out[out.rindex("\n{") + 1 :] if not out.startswith("{") else out)


def kill_at_first_checkpoint(process: subprocess.Popen, checkpoints: Path, timeout: float = 600) -> int:
    """SIGKILL `process` as soon as a complete checkpoint exists; the step it holds."""
    deadline = time.monotonic() + timeout
    while (found := last_checkpoint(checkpoints)) is None:
        assert process.poll() is None, f"the stage ended (exit {process.returncode}) before it wrote a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the stage finished before the kill (exit {process.returncode}): raise STEPS"
    return int(Path(found).name.removeprefix("checkpoint-"))


def max_weight_difference(a: str, b: str) -> float:
    from components.modeling import load_model

    first, second = load_model(a).state_dict(), load_model(b).state_dict()
    return max(float((first[name].float() - second[name].float()).abs().max()) for name in first)


@pytest.fixture
def params(tmp_path):
    def write(**sections) -> Path:
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(deep_merge(tiny_overrides(), sections)))
        return path

    return write


# stage -> its params section override, its inputs (fixture names), where its checkpoints are, tolerance
TRAINING = {
    "sft": ({"sft": {"max_steps": STEPS, "save_steps": EVERY}}, {"model": "base", "sft": "sft"}, "checkpoints", 1e-5),
    "reward_model": (
        {"reward_model": {"max_steps": STEPS, "save_steps": EVERY}},
        {"model": "sft_model", "prefs": "prefs"},
        "checkpoints",
        1e-5,
    ),
    "grpo": ({"grpo": {"max_steps": 12, "save_steps": 3}}, {"model": "sft_model", "rl": "rl"}, "checkpoints", 1e-5),
    "alignment": (
        {"alignment": {"dpo": {"max_steps": STEPS, "save_steps": EVERY}}},
        {"model": "sft_model", "prefs": "prefs"},
        "checkpoints",
        1e-5,
    ),
    "distill": (
        {"distill": {"student_sft": {"max_steps": STEPS, "save_steps": EVERY}}},
        {"teacher": "sft_model", "base": "base", "sft": "sft", "pretrain": "pretrain"},  # the corpus heals the cut student
        "distilled/checkpoints",
        1e-5,
    ),
}


@pytest.mark.parametrize("stage", list(TRAINING))
def test_a_stage_killed_mid_training_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_run_ends(
    stage, tmp_path, params, tiny_data, tiny_base_model, tiny_sft_model
):
    sections, inputs, checkpoints, tolerance = TRAINING[stage]
    artifacts = {"base": tiny_base_model, "sft_model": tiny_sft_model, **tiny_data}
    args = [stages.get(stage).command, "--params", str(params(**sections))]
    args += [f"--{name.replace('_', '-')}={artifacts[source]}" for name, source in inputs.items()]

    straight = finish(posttrain([*args, "--out", str(tmp_path / "straight")], stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    out = tmp_path / "killed"
    victim = posttrain([*args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    step = kill_at_first_checkpoint(victim, out / checkpoints)

    rerun = posttrain([*args, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    resumed = finish(rerun)
    if stage != "distill":  # distill's two students report their own resumes in their logs
        assert resumed["info"]["resumed_from"].endswith(f"checkpoint-{step}")
    assert not (out / checkpoints).exists(), "a finished stage drops its checkpoints"
    difference = max_weight_difference(straight["outputs"]["model"], resumed["outputs"]["model"])
    assert difference <= tolerance, f"{stage}: weights differ by {difference:g} from an uninterrupted run"
    fault_table.record(
        f"SIGKILL during `{stage}` training",
        f"killed at its first checkpoint (step {step}); the same command resumed from checkpoint-{step}; "
        f"final weights within {difference:.1g} of an uninterrupted run (tolerance {tolerance:g})",
        "nothing; steps after the checkpoint were redone (fewer than save_steps)",
    )


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_a_full_disk_while_checkpointing_is_one_clear_error_and_the_last_checkpoint_still_loads(
    tmp_path, params, tiny_data, tiny_base_model
):
    args = ["sft", "--params", str(params(sft={"max_steps": STEPS, "save_steps": EVERY})), f"--model={tiny_base_model}"]
    args += [f"--sft={tiny_data['sft']}"]
    # How big one checkpoint is, measured on this model: the disk gets room for one, not two.
    probe = tmp_path / "probe"
    step = kill_at_first_checkpoint(posttrain([*args, "--out", str(probe)]), probe / "checkpoints")
    limit = int(folder_bytes(probe / "checkpoints" / f"checkpoint-{step}") * 1.5)

    disk, logs = tmp_path / "small-disk", tmp_path / "logs"
    disk.mkdir(), logs.mkdir()
    check = (
        "import json, sys; from pathlib import Path; from components.trainer_args import last_checkpoint; "
        "from components.modeling import load_model; ckpts = Path(sys.argv[1]); found = last_checkpoint(ckpts); "
        "load_model(found); print(json.dumps({'loads': found, 'all': sorted(p.name for p in ckpts.iterdir())}))"
    )
    command = " ".join(f"'{a}'" for a in [sys.executable, "-m", "components.cli", *args, "--out", f"{disk}/sft"])
    # A private mount namespace: a tmpfs of `limit` bytes that only this shell and its children see.
    script = (
        f"mount -t tmpfs -o size={limit} tmpfs {disk} && {{ {command} > {logs}/out 2> {logs}/err; echo $? > {logs}/rc; "
        f"'{sys.executable}' -c \"{check}\" {disk}/sft/checkpoints > {logs}/check.json; }}"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(["unshare", "--map-root-user", "--mount", "bash", "-c", script], cwd=ROOT, env=env, check=True, timeout=600)

    error = (logs / "err").read_text().strip().splitlines()
    assert (logs / "rc").read_text().strip() == "2", "\n".join(error[-20:])
    assert error[-1].startswith("error: sft: the disk is full under") and "Traceback" not in "\n".join(error), error[-5:]
    state = json.loads((logs / "check.json").read_text())
    assert state["loads"].endswith(f"checkpoint-{EVERY}") and f"checkpoint-{EVERY}" in error[-1]
    fault_table.record(
        "disk full while `sft` saves a checkpoint",
        f"tmpfs of {limit / 2**20:.0f} MiB (1.5 checkpoints); one line: `{error[-1][7:70]}...`, exit 2; "
        f"checkpoint-{EVERY} still loads and is what a re-run resumes from (the cut-short {', '.join(sorted(n for n in state['all'] if n.startswith('checkpoint-') and n != Path(state['loads']).name))} is passed over)",
        "nothing before the last checkpoint",
    )


def test_two_runs_of_the_same_stage_at_once_train_it_once_and_share_the_result(tmp_path, params, tiny_data, tiny_base_model):
    cfg = {**tiny_overrides()["sft"], "max_steps": 20}
    out, key = tmp_path / "sft" / "shared", "5" * 64  # one stage run: one output folder, one cache key
    program = (
        "import json, sys; from components import sft; from flows.stage_runner import execute_stage; "
        f"cfg = sft.Config(**json.loads(sys.argv[1])); r = execute_stage('sft', cfg, "
        f"{{'model': {tiny_base_model!r}, 'sft': {tiny_data['sft']!r}}}, {str(out)!r}, {key!r}); print(r.outputs['model'])"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen([sys.executable, "-c", program, json.dumps(cfg)], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sum("completed by another run: reusing its result" in o for o in outputs) == 1, outputs
    assert outputs[0].splitlines()[-1] == outputs[1].splitlines()[-1] == str(out / "model")
    fault_table.record(
        "two pipelines run the same stage at once",
        "one trained (a lock beside the stage's output folder), the other waited, then reused its result",
        "nothing; no checkpoint was shared mid-training",
    )


def test_the_pipeline_killed_mid_stage_resumes_leaves_no_run_running_and_registers_nothing_twice(tmp_path, prefect_server):
    from prefect.settings import PREFECT_API_URL

    from mlflow import MlflowClient
    from tests.conftest import make_project

    project = make_project(tmp_path / "project")
    tracking_uri = f"sqlite:///{project}/mlflow.db"
    overrides = {
        "data": {"out_dir": str(project / "data")},
        "sft": {"max_steps": STEPS, "save_steps": EVERY},
        "tracking": {"tracking_uri": tracking_uri, "artifact_location": str(project / "mlruns"), "registered_model": "faults"},
        "paths": {"artifacts_dir": str(project / "artifacts"), "reports_dir": str(project / "reports")},
    }
    (project / "params.yaml").write_text(yaml.safe_dump(deep_merge(tiny_overrides(), overrides)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "flows.post_training", "--params", "params.yaml"]

    victim = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (found := [c for c in (project / "artifacts" / "sft").glob("*/checkpoints") if last_checkpoint(c)]):
        assert victim.poll() is None and time.monotonic() < deadline, "the flow ended (or stalled) before SFT checkpointed"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    step = int(Path(last_checkpoint(found[0])).name.removeprefix("checkpoint-"))

    rerun = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    sft_result = json.loads((found[0].parent / "result.json").read_text())  # the SFT stage's own record
    assert sft_result["info"]["resumed_from"].endswith(f"checkpoint-{step}")

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("post-training").experiment_id])
    statuses = sorted({run.info.status for run in runs})
    assert "RUNNING" not in statuses, [(r.info.run_name, r.info.status) for r in runs if r.info.status == "RUNNING"]
    killed = [r for r in runs if r.info.status == "KILLED"]
    (parent,) = [r for r in killed if tracking.OWNER_PID in r.data.tags]
    assert parent.data.tags[tracking.OWNER_PID] == str(victim.pid)
    # SFT's own run was open (it streams there while it trains): ended with its pipeline's
    assert [(r.info.run_name, r.data.tags["mlflow.parentRunId"]) for r in killed if r is not parent] == [("sft", parent.info.run_id)]
    for model in client.search_registered_models():
        digests = [v.tags["model_digest"] for v in client.search_model_versions(f"name = '{model.name}'")]
        assert len(digests) == len(set(digests)), f"{model.name}: a model registered twice"
    fault_table.record(
        "SIGKILL of the whole `post-training` flow during SFT",
        f"the re-run resumed SFT from checkpoint-{step}, reused the finished stages, ended the dead run's MLflow run (and SFT's) as KILLED",
        "nothing; no run left RUNNING, no model version registered twice",
    )


def test_mlflow_stopping_mid_run_is_named_and_a_re_run_after_it_is_back_finishes(tmp_path, prefect_server):
    from prefect.settings import PREFECT_API_URL

    from mlflow import MlflowClient
    from tests.conftest import make_project, start_mlflow_server, stop

    project = make_project(tmp_path / "project")
    backend = f"sqlite:///{project}/mlflow-server.db"
    url, server = start_mlflow_server(project, backend_uri=backend, artifacts=str(project / "mlflow-artifacts"))

    def write_params(tracking_uri: str) -> None:
        overrides = {
            "data": {"out_dir": str(project / "data")},
            "sft": {"max_steps": STEPS, "save_steps": EVERY},
            "tracking": {"tracking_uri": tracking_uri, "artifact_location": None, "registered_model": "outage", "max_retries": 2},
            "paths": {"artifacts_dir": str(project / "artifacts"), "reports_dir": str(project / "reports")},
        }
        (project / "params.yaml").write_text(yaml.safe_dump(deep_merge(tiny_overrides(), overrides)))

    write_params(url)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "flows.post_training", "--params", "params.yaml"]
    first = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while not [c for c in (project / "artifacts" / "sft").glob("*/checkpoints") if last_checkpoint(c)]:
            if first.poll() is not None:
                pytest.fail(f"the flow ended (exit {first.returncode}) before SFT checkpointed:\n{first.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "SFT did not checkpoint in time"
            time.sleep(0.05)
        stop(server)  # the tracking server goes away while SFT trains
        _, err = first.communicate(timeout=600)
    finally:
        stop(server)
    last = err.strip().splitlines()[-1]
    assert first.returncode == 2 and last.startswith(f"error: MLflow at {url} stopped answering mid-run (2 retries"), err[-2000:]
    finished_sft = list((project / "artifacts" / "sft").glob("*/result.json"))
    assert finished_sft, "SFT finished before the flow next spoke to MLflow: its result is kept"
    written = finished_sft[0].stat().st_mtime_ns

    url, server = start_mlflow_server(project, backend_uri=backend, artifacts=str(project / "mlflow-artifacts"))
    try:
        write_params(url)
        rerun = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1200)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        runs = client.search_runs([client.get_experiment_by_name("post-training").experiment_id])
        assert "RUNNING" not in {r.info.status for r in runs}
        versions = [v for m in client.search_registered_models() for v in client.search_model_versions(f"name = '{m.name}'")]
        assert versions and all(v.tags.get("model_digest") for v in versions), "a version registered without its lineage"
        assert finished_sft[0].stat().st_mtime_ns == written, "SFT was trained again instead of reused"
    finally:
        stop(server)
    fault_table.record(
        "the MLflow server stops while SFT trains",
        f"SFT finished; the next MLflow call failed after 2 retries: one line naming {url.rsplit(':', 1)[0]}:<port>, exit 2; "
        "server back, the same command re-ran from the cache (SFT not retrained) and finished",
        "nothing; no run left RUNNING, no version without its lineage tags",
    )


@pytest.mark.parametrize("moment", ["before", "after"])
def test_the_mlflow_server_lost_while_a_version_is_registered_leaves_none_without_its_lineage(
    tmp_path, monkeypatch, tiny_sft_model, moment
):
    """The server stops just before, or just after, the request that creates the version.

    Either way no version may exist without its tags (a re-run looks a model up by
    `model_digest`: without it, it would register the same files again), and once the server
    is back the same registration ends with exactly one complete version."""
    import mlflow
    from components import registry
    from components.artifacts import digest_path
    from mlflow import MlflowClient
    from tests.conftest import start_mlflow_server, stop

    for variable in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(variable, os.environ.get(variable, ""))  # restored after the test
    tracking.bound_retries(1, 0, 5)
    backend, artifacts = f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts")
    url, server = start_mlflow_server(tmp_path, backend_uri=backend, artifacts=artifacts)
    lineage = {"model_digest": digest_path(tiny_sft_model), "data_md5": "d" * 32, "stage": "sft", "parent_model": "none"}
    create = MlflowClient._create_model_version  # what mlflow.register_model calls to send the request

    def lose_the_server(self, *args, **kwargs):
        if moment == "before":
            stop(server)
        version = create(self, *args, **kwargs)
        stop(server)
        return version

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        experiment = tracking.setup(url, "registration-outage")
        monkeypatch.setattr(MlflowClient, "_create_model_version", lose_the_server)
        with pytest.raises(Exception), mlflow.start_run(experiment_id=experiment):  # noqa: B017, PT011 (whatever MLflow raises)
            registry.register_model(tiny_sft_model, "outage", lineage, {"pass@1": 0.5})
        monkeypatch.setattr(MlflowClient, "_create_model_version", create)
        url, server = start_mlflow_server(tmp_path, backend_uri=backend, artifacts=artifacts)
        tracking.connect(url)
        with mlflow.start_run(experiment_id=experiment):
            version, created = registry.register_model(tiny_sft_model, "outage", lineage, {"pass@1": 0.5})
        versions = MlflowClient().search_model_versions("name = 'outage'")
    finally:
        stop(server)
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    assert [v.version for v in versions] == [version] and created == (moment == "before"), [(v.version, v.tags) for v in versions]
    assert versions[0].tags["model_digest"] == lineage["model_digest"] and versions[0].tags["metric.pass_at_1"] == "0.5"
    assert versions[0].description.startswith("# outage\n")  # the model card, written by whichever registration got that far
    fault_table.record(
        f"the MLflow server stops just {moment} a model version is created",
        "the registration failed with the connection error; server back, the same registration "
        + ("created the version" if moment == "before" else "found the version by its digest and created none"),
        "nothing; one version, with every lineage tag (they are sent in the request that creates it)",
    )
