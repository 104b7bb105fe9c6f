"""How a model folder becomes an MLflow model that `mlflow models serve` answers.

A policy is logged with MLflow's chat task (`llm/v1/chat`): /invocations takes an OpenAI-style
chat request and answers a chat completion. The tokenizer's chat template, saved in the folder,
renders the messages; the folder's generation_config.json (components.modeling writes
max_new_tokens there) sets the generation defaults, which a request's `max_tokens` overrides.
A reward model is logged so that its served `score` is the raw reward: a head scorer as a
`text-classification` pipeline, a log-likelihood scorer as the pyfunc of components/reward_pyfunc.py.

Both are logged from their saved folders: MLflow copies the files and the orchestrating process
never loads the weights (a real model's would not fit beside the flow). components.registry
decides when a folder is logged; this module only says how.

    mlflow models serve -m "models:/<name>@champion" --env-manager local -h 127.0.0.1 -p 5001
    curl -s 127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
        -d '{"messages": [{"role": "user", "content": "What is 2 + 3?"}], "max_tokens": 64}'
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from components.scoring import saved_scorer
from components.tracking import _mlflow

CHAT_TASK = "llm/v1/chat"
REWARD_TASK = "text-classification"
SERVING_TASK_TAG = "serving_task"  # which of the two a version was logged as: its card says how to call it
CHAT_EXAMPLE = {"messages": [{"role": "user", "content": "What is 2 + 3?"}]}
REWARD_EXAMPLE = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n5<|im_end|>"  # the tiny models' ChatML
# A folder whose generation config sets no max_new_tokens (a model imported as shipped) would
# stop at transformers' max_length of 20 tokens, prompt included: answers would come back empty.
FALLBACK_MAX_NEW_TOKENS = 64


def log_chat_model(model_dir: str, card: str):
    """Log the causal-LM folder `model_dir` as a chat model (its `card` as model_card.md); returns MLflow's ModelInfo."""
    _resolve_pipeline_class("text-generation")
    return _mlflow().transformers.log_model(
        transformers_model=str(model_dir),  # a path: MLflow copies the folder, nothing is loaded here
        name="model",
        task=CHAT_TASK,  # the signature is the chat task's own (MLflow sets it; nothing is generated to infer it)
        input_example=CHAT_EXAMPLE,
        model_config=_generation_fallback(Path(model_dir)),
        model_card=_hf_card(card, "text-generation"),
        pip_requirements=_serving_requirements(),
    )


def log_reward_model(model_dir: str, card: str):
    """Log the reward model folder `model_dir` as a scorer; returns MLflow's ModelInfo.

    A log-likelihood scorer (a causal LM) goes to `_log_log_likelihood_reward_model`. A head scorer
    (a sequence classifier) is MLflow's `text-classification` flavor, not a custom pyfunc: it logs
    from the folder without loading it, serves with no code of ours, and keeps the plain HF layout that
    `download_model_version` hands to components.scoring.RewardScorer (what evaluate-model's
    `--reward-model models:/...` loads). `function_to_apply: none` makes the served score the raw
    reward head output, the number the stages rank by (the pipeline's default for one label is a
    sigmoid). The input is the exchange already rendered with the chat template (the model card says so).
    """
    if saved_scorer(model_dir) == "log_likelihood":
        return _log_log_likelihood_reward_model(model_dir)
    _resolve_pipeline_class(REWARD_TASK)
    return _mlflow().transformers.log_model(
        transformers_model=str(model_dir),
        name="reward_model",
        task=REWARD_TASK,
        model_config={"function_to_apply": "none"},
        model_card=_hf_card(card, REWARD_TASK),
        pip_requirements=_serving_requirements(),
    )


def _log_log_likelihood_reward_model(model_dir: str):
    """A log-likelihood scorer (a causal LM, components/scoring.py) as the pyfunc of components/reward_pyfunc.py.

    Same request and `score` as the head's flavor; the folder is copied as the artifact `model`
    (nothing is loaded here) and components/ as code, so the served score is RewardScorer's own.
    The model card is the version's description (registry.update_model_card), as for every version.
    The signature is given, not inferred: inferring it from an example would load the weights."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    import components

    return _mlflow().pyfunc.log_model(
        name="reward_model",
        python_model=str(Path(__file__).with_name("reward_pyfunc.py")),
        artifacts={"model": str(model_dir)},
        code_paths=[str(Path(components.__file__).parent)],
        signature=ModelSignature(inputs=Schema([ColSpec("string")]), outputs=Schema([ColSpec("double", "score")])),
        pip_requirements=_serving_requirements(),
    )


LOGGERS = {CHAT_TASK: log_chat_model, REWARD_TASK: log_reward_model}  # serving task -> how a folder is logged as it


def _generation_fallback(model_dir: Path) -> dict:
    """Serving defaults for what the folder's generation config leaves unset (today only the length)."""
    config_file = model_dir / "generation_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    return {} if config.get("max_new_tokens") else {"max_new_tokens": FALLBACK_MAX_NEW_TOKENS}


def _hf_card(text: str, pipeline_tag: str):
    """A Hugging Face ModelCard: MLflow writes its text as model_card.md (and looks nothing up on the Hub)."""
    from huggingface_hub import ModelCard

    return ModelCard(f"---\nlibrary_name: transformers\npipeline_tag: {pipeline_tag}\n---\n{text}")


def _serving_requirements() -> list[str]:
    # Pinned explicitly: MLflow's inference of them imports torchvision, which we don't ship.
    from importlib.metadata import version

    return [f"{package}=={version(package).split('+')[0]}" for package in ("torch", "transformers", "tokenizers", "accelerate")]


def _resolve_pipeline_class(task: str) -> None:
    """Let mlflow 3.17 log `task` from a folder under transformers 5.

    MLflow reads the pipeline class's `__name__` from transformers' task registry, where
    transformers 5 keeps a dotted-path string it imports lazily; that fails with "'str' object has
    no attribute '__name__'". Putting the class there is what transformers itself accepts (its
    `_resolve_impl` passes classes through, as for custom pipelines), and a no-op once either side
    changes.
    """
    from transformers import pipelines

    defaults = pipelines.check_task(task)[1]  # the registry's own entry
    if isinstance(defaults["impl"], str):
        module, name = defaults["impl"].rsplit(".", 1)
        defaults["impl"] = getattr(importlib.import_module(module), name)
