"""The MLflow model registry: registering model versions, finding and downloading them, tags.

A version is registered once per set of model files (`model_digest`), with lineage and metric
tags and its model card (components.model_card) as description; evaluations add `eval.*` tags.
How a folder is logged so that `mlflow models serve` answers it is components.serving's part;
moving the `champion` / `challenger` aliases is components.promotion's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from components import model_card
from components.serving import CHAT_TASK, LOGGERS, SERVING_TASK_TAG
from components.tracking import _finite, _metric_name, _mlflow

PER_PROBLEM_TAG = "eval.per_problem.{metric}"  # '0'/'1' per eval problem (components.gate.encode_correctness)
EVAL_SET_TAG = "eval.set_digest"  # which problems those are: a paired gate needs the same ones
PREVIOUS_CHAMPION_TAG = "champion.previous"


class RegistryError(RuntimeError):
    """A registry request names something that does not exist, or cannot be done; the message says which."""


class RegistryLookupError(LookupError):
    """A registered model, version or alias does not exist; the message says what does."""


def find_version_by_digest(name: str, model_digest: str):
    """The registered version of `name` built from exactly these model files, if any."""
    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception:  # registered model does not exist yet
        return None
    matches = [v for v in versions if v.tags.get("model_digest") == model_digest]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def register_model(model_dir: str, name: str, tags: Mapping[str, str], metrics: Mapping[str, float], task: str = CHAT_TASK):
    """Log the HF model folder to the active run, servable as `task`, and register it with lineage tags.

    `task` is components.serving's CHAT_TASK for a policy, REWARD_TASK for a reward model. The
    model is logged from its folder (the weights are never loaded here) with its model card as
    `model_card.md`; the card is also the version's description.

    Idempotent: a model whose files were registered before returns that version, so a re-run
    served from cache registers nothing new. The version is created with all its tags in one
    request, so a tracking server lost midway leaves either no version or a complete one (never
    one without the `model_digest` a re-run looks it up by). The description follows in a second
    request (`mlflow.register_model` takes none); a version found without it gets it then.
    Returns (version, created).
    """
    mlflow = _mlflow()
    existing = find_version_by_digest(name, tags["model_digest"])
    if existing is not None:
        if not existing.description:  # the server was lost between creation and the description
            update_model_card(name, existing.version)
        return existing.version, False
    metric_tags = {f"metric.{_metric_name(k)}": v for k, v in metrics.items()}
    all_tags = {k: str(v) for k, v in {**tags, SERVING_TASK_TAG: task, **metric_tags}.items()}
    info = LOGGERS[task](model_dir, model_card.build(name, all_tags))
    version = mlflow.register_model(info.model_uri, name, tags=all_tags)
    update_model_card(name, str(version.version), all_tags)
    return str(version.version), True


def update_model_card(name: str, version: str, tags: Mapping[str, str] | None = None) -> str:
    """(Re)write the version's description as its model card, from its tags (read when not given)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    card = model_card.build(name, tags if tags is not None else client.get_model_version(name, str(version)).tags, str(version))
    client.update_model_version(name, str(version), description=card)
    return card


def get_version(name: str, version: str):
    """The model version, or a RegistryError that names what exists."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        pass
    try:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    except MlflowException:
        versions = []
    if not versions:
        raise RegistryError(f"no registered model named {name!r} (or it has no versions)") from None
    raise RegistryError(f"model {name!r} has no version {version} (existing versions: {', '.join(map(str, versions))})") from None


def resolve_model_version(name: str, version: str | None = None, alias: str | None = None):
    """The registry's ModelVersion for `name` at `version` or `alias` (exactly one), or a clear error."""
    from mlflow.exceptions import MlflowException

    if (version is None) == (alias is None):
        raise ValueError(f"model {name!r}: give exactly one of version or alias")
    client = _mlflow().MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        known = ", ".join(sorted(m.name for m in client.search_registered_models())) or "none"
        raise RegistryLookupError(f"no registered model named {name!r} at {_mlflow().get_registry_uri()} (registered: {known})") from None
    try:
        return client.get_model_version(name, version) if version is not None else client.get_model_version_by_alias(name, alias)
    except MlflowException:
        if version is not None:
            versions = ", ".join(sorted((str(v.version) for v in client.search_model_versions(f"name = '{name}'")), key=int)) or "none"
            raise RegistryLookupError(f"model {name!r} has no version {version!r} (versions: {versions})") from None
        aliases = ", ".join(sorted(registered.aliases)) or "none"
        raise RegistryLookupError(f"model {name!r} has no alias {alias!r} (aliases: {aliases})") from None


def download_model_version(name: str, version: str, dst: str | Path) -> Path:
    """Download a registered version and return a folder transformers can load model + tokenizer from.

    `mlflow.transformers` stores the weights under `model/` and the tokenizer under
    `components/tokenizer/` (per the MLmodel file); they are merged into `model/`. (A version
    logged from its folder, as register_model does now, has the whole folder, tokenizer and
    chat template included, in `model/` already; one logged from loaded objects, as before, has
    the tokenizer only in `components/`.) A log-likelihood reward model's pyfunc has its folder as
    the artifact `model`. A version logged as a plain HF folder is returned as is.
    """
    import shutil

    import yaml

    root = Path(_mlflow().artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dst)))
    mlmodel = root / "MLmodel"
    flavors = yaml.safe_load(mlmodel.read_text()).get("flavors", {}) if mlmodel.is_file() else {}
    flavor = flavors.get("transformers")
    if not flavor:  # a log-likelihood reward model's pyfunc (components/serving.py) carries its folder as an artifact
        folder = flavors.get("python_function", {}).get("artifacts", {}).get("model", {}).get("path")
        return root / folder if folder else root
    model_dir = root / flavor.get("model_binary", "model")
    for component in flavor.get("components", []):
        for file in (root / "components" / component).iterdir():
            if file.is_file() and not (model_dir / file.name).exists():
                shutil.copy2(file, model_dir / file.name)
    return model_dir


def tag_model_version(name: str, version: str, metrics: Mapping[str, float], extra: Mapping[str, str]) -> None:
    """`eval.<metric>` tags (and `extra`) on a model version: the registry shows how it evaluated."""
    from mlflow import MlflowClient

    client = MlflowClient()
    tags = {f"eval.{_metric_name(k)}": f"{v:.6g}" for k, v in metrics.items() if _finite(v)} | dict(extra)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
