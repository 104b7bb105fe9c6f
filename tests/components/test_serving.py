"""A registry entry that serves: policies as MLflow chat models, reward models as scorers, logged from their folders.

Against a real `mlflow server` (its artifacts proxied, as in the cluster); the last test serves the
champion with `mlflow models serve` and asks it a question over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from components import registry, serving, tracking
from tests.conftest import free_port, stop, wait_http

pytestmark = pytest.mark.slow  # tiny models are trained, servers started

LINEAGE = {"data_md5": "d" * 32, "params_hash": "p" * 16, "git_commit": "c0ffee", "parent_model": "models:/tiny-base/1"}


@pytest.fixture
def server(mlflow_server, request):
    """MLflow pointed at the session's server, and a registered-model name of this test's own."""
    experiment = tracking.setup(mlflow_server, "serving")
    return mlflow_server, experiment, f"serve-{request.node.name.replace('_', '-')}"[:60]


def register(experiment: str, model_dir: str, name: str, task: str = serving.CHAT_TASK, metrics=None) -> tuple[str, bool]:
    import mlflow
    from components.artifacts import digest_path

    tags = LINEAGE | {"stage": "sft", "model_digest": digest_path(model_dir)}
    with mlflow.start_run(experiment_id=experiment):
        return registry.register_model(model_dir, name, tags, metrics or {"pass@1": 0.25}, task=task)


@pytest.fixture
def no_weights_loaded(monkeypatch):
    """Loading weights fails until `.undo()`: what registration must never need."""
    from transformers import PreTrainedModel
    from transformers.models.auto.auto_factory import _BaseAutoModelClass

    def refuse(*args, **kwargs):
        raise AssertionError("registration loaded model weights")

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(refuse))
    monkeypatch.setattr(_BaseAutoModelClass, "from_pretrained", classmethod(refuse))
    return monkeypatch


def test_a_policy_is_registered_from_its_folder_as_a_chat_model_with_its_card(server, tiny_sft_model, tmp_path, no_weights_loaded):
    from mlflow import MlflowClient

    _, experiment, name = server
    version, created = register(experiment, tiny_sft_model, name)
    assert created

    client = MlflowClient()
    registered = client.get_model_version(name, version)
    assert registered.tags[serving.SERVING_TASK_TAG] == serving.CHAT_TASK and registered.tags["metric.pass_at_1"] == "0.25"
    assert registered.description.startswith(f"# {name}\n") and f'"models:/{name}/{version}"' in registered.description
    assert "| git commit | c0ffee |" in registered.description and "| pass_at_1 | 0.25 |" in registered.description

    import mlflow

    root = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path / "raw")))
    mlmodel = yaml.safe_load((root / "MLmodel").read_text())
    flavor = mlmodel["flavors"]["transformers"]
    assert flavor["inference_task"] == serving.CHAT_TASK and flavor["task"] == "text-generation"
    assert "messages" in mlmodel["signature"]["inputs"] and "choices" in mlmodel["signature"]["outputs"]
    assert json.loads((root / "input_example.json").read_text()) == serving.CHAT_EXAMPLE
    card = (root / "model_card.md").read_text()
    assert card.lstrip().startswith(f"# {name}") and '"models:/' + name + '/VERSION"' in card
    # The folder's own chat template and generation config travel with the weights.
    assert (root / "model" / "chat_template.jinja").read_text() == (Path(tiny_sft_model) / "chat_template.jinja").read_text()
    assert json.loads((root / "model" / "generation_config.json").read_text())["max_new_tokens"] == 64
    assert set(serving._serving_requirements()) <= set((root / "requirements.txt").read_text().split())  # no inference

    again = register(experiment, tiny_sft_model, name)
    assert again == (version, False)  # the same files: found by model_digest, nothing logged


@pytest.fixture(params=["head", "log_likelihood"])
def reward_model_folder(request) -> tuple[str, str]:
    """(scorer, folder) of a tiny reward model of each kind (components/scoring.py), built before weights are refused."""
    fixture = {"head": "tiny_reward_model", "log_likelihood": "tiny_log_likelihood_reward_model"}[request.param]
    return request.param, request.getfixturevalue(fixture)


def test_a_reward_model_is_registered_as_a_scorer_that_gives_the_raw_reward(server, reward_model_folder, tmp_path, no_weights_loaded):
    """MLflow's text-classification flavor serves a head scorer, our pyfunc a log-likelihood one: both give the stages' score."""
    from mlflow import MlflowClient

    _, experiment, name = server
    scorer, model_dir = reward_model_folder
    metrics = {"held_out_pairwise_accuracy": 0.75, "held_out_mean_margin": 0.01}
    version, _ = register(experiment, model_dir, name, task=serving.REWARD_TASK, metrics=metrics)
    registered = MlflowClient().get_model_version(name, version)
    assert registered.tags[serving.SERVING_TASK_TAG] == serving.REWARD_TASK
    assert registered.tags["metric.held_out_pairwise_accuracy"] == "0.75" and "raw reward" in registered.description
    no_weights_loaded.undo()
    import mlflow
    from components.scoring import RewardScorer

    # The consumer's side (weights load now): the scorer the stages use, on the downloaded folder...
    downloaded = RewardScorer(str(registry.download_model_version(name, version, tmp_path / "rm")))
    assert downloaded.model.config.reward_scorer == scorer
    prompts, answers = ["What is 2 + 3?", "What is 2 + 3?"], ["The answer is \\boxed{5}.", "7"]
    expected = downloaded.score(prompts, answers)
    # ...and the logged pyfunc (what `mlflow models serve` runs) on the same exchanges, rendered as the card says.
    scores = mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(downloaded.texts(prompts, answers))["score"]
    assert [float(s) for s in scores] == pytest.approx(expected, abs=1e-5)
    assert expected[0] != pytest.approx(expected[1])  # two different rewards: not a constant


def test_download_returns_a_loadable_folder_for_versions_logged_the_old_way(server, tiny_sft_model, tmp_path):
    """Before: the weights were loaded and logged as objects, the tokenizer landing only in components/."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import mlflow

    _, experiment, name = server
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.transformers.log_model(
            transformers_model={
                "model": AutoModelForCausalLM.from_pretrained(tiny_sft_model),
                "tokenizer": AutoTokenizer.from_pretrained(tiny_sft_model),
            },
            name="model",
            task="text-generation",
            pip_requirements=serving._serving_requirements(),
        )
    version = mlflow.register_model(info.model_uri, name, tags={"model_digest": "old"}).version
    _assert_loads(registry.download_model_version(name, str(version), tmp_path / "old"))


def test_download_returns_a_loadable_folder_for_versions_logged_from_their_folder(server, tiny_sft_model, tmp_path):
    _, experiment, name = server
    version, _ = register(experiment, tiny_sft_model, name)
    model_dir = _assert_loads(registry.download_model_version(name, version, tmp_path / "new"))
    assert model_dir.name == "model" and (model_dir / "generation_config.json").is_file()


def _assert_loads(model_dir: Path) -> Path:
    from components.modeling import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))  # refuses a tokenizer without its chat template
    model = load_model(str(model_dir))
    assert model.config.vocab_size == len(tokenizer)
    return model_dir


def test_the_champion_serves_chat_completions_over_http(server, tiny_sft_model, tmp_path):
    """`mlflow models serve` of `models:/<name>@champion`, as an operator would start it, answers a chat request."""
    from mlflow import MlflowClient

    url, experiment, name = server
    version, _ = register(experiment, tiny_sft_model, name)
    MlflowClient().set_registered_model_alias(name, "champion", version)

    port, log = free_port(), tmp_path / "serve.log"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}@champion"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    # MLflow execs `uvicorn` by name: the interpreter's bin folder goes on PATH, as an activated venv would put it.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = os.environ | {"MLFLOW_TRACKING_URI": url, "OMP_NUM_THREADS": "1", "PATH": path}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", 180, process, log)
        request = {"messages": [{"role": "user", "content": "What is 2 + 3?"}], "max_tokens": 16}
        answer = _post(f"http://127.0.0.1:{port}/invocations", request)
    finally:
        stop(process)
    assert process.poll() is not None
    completion = answer[0] if isinstance(answer, list) else answer
    assert completion["object"] == "chat.completion", answer
    message = completion["choices"][0]["message"]
    assert message["role"] == "assistant" and isinstance(message["content"], str)
    assert 0 < completion["usage"]["completion_tokens"] <= 16


def _post(url: str, payload: dict):
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())
