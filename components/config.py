"""Loading `params.yaml` into the stages' pydantic configs, and the result every stage returns.

`params.yaml` holds one section per stage. Its top-level keys are the local profile; a
`profiles:` mapping holds overrides (e.g. `cluster`) that are deep-merged on top. Errors name
the file and the dotted key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

PROFILES_KEY = "profiles"

C = TypeVar("C", bound=BaseModel)


class ParamsError(ValueError):
    """`params.yaml` (or a stage's config) is wrong; the message names the file and key."""


class StrictModel(BaseModel):
    """Base of every config: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StageResult(BaseModel):
    """What a stage hands back: where its outputs are and what it measured."""

    stage: str
    outputs: dict[str, str] = Field(default_factory=dict, description="name -> path of each output")
    metrics: dict[str, float] = Field(default_factory=dict)
    curves: dict[str, list[float]] = Field(default_factory=dict, description="per-step histories")
    info: dict[str, Any] = Field(default_factory=dict, description="non-numeric facts worth logging")
    wall_seconds: float = 0.0


def spoken_list(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`: how an error message names several keys at once."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def check_deepspeed_file(path: str | None) -> str | None:
    """A DeepSpeed config must exist, be JSON and pass DeepSpeed's own parser when the params
    load (on a laptop, at deploy, at flow start), not when a GPU Job reaches the trainer.

    HF's "auto" values are only known once the trainer has its arguments and model, so here they
    stand in as 1 (True for `enabled`, False for fp16's): what is checked is the file's keys,
    types and structure. Without DeepSpeed installed (the local profile) the parser is skipped.
    """
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"DeepSpeed config {path} does not exist (relative paths start at {Path.cwd()}; the image has infra/deepspeed/)")
    problem = _deepspeed_file_problem(str(file.resolve()), file.stat().st_mtime_ns)
    if problem:
        raise ValueError(f"DeepSpeed config {path} {problem}")
    return path


@functools.lru_cache(maxsize=16)
def _deepspeed_file_problem(path: str, _mtime_ns: int) -> str | None:
    try:
        config = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        return f"is not valid JSON: {error}"
    if not isinstance(config, dict):
        return f"must be a JSON object, not {type(config).__name__}"
    try:
        from deepspeed.runtime.config import DeepSpeedConfig
    except ImportError:
        return None
    try:
        DeepSpeedConfig(_stand_in_auto_values(config))
    except Exception as error:  # DeepSpeed raises pydantic errors, assertions and ValueErrors alike
        return f"does not parse with DeepSpeed: {type(error).__name__}: {error}"
    return None


def _stand_in_auto_values(node: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        return {key: _stand_in_auto_values(value, (*path, key)) for key, value in node.items()}
    if node != "auto":
        return node
    if path and path[-1] == "enabled":
        return path[0] != "fp16"  # HF turns on one precision at most
    return 1


DeepSpeedFile = Annotated[str | None, AfterValidator(check_deepspeed_file)]


def deep_merge(base: dict, override: dict) -> dict:
    """Return `base` with `override` merged in; nested mappings merge, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_params(path: str | Path, profile: str = "local") -> dict:
    """Read `params.yaml` and apply `profile`'s overrides. `local` is the top level itself."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of stage sections at the top level")
    profiles = raw.pop(PROFILES_KEY, {}) or {}
    if profile == "local":
        return raw
    if profile not in profiles:
        known = ", ".join(["local", *profiles]) or "local"
        raise ParamsError(f"{path}: unknown profile {profile!r} (known: {known})")
    return deep_merge(raw, profiles[profile] or {})


def validate_config(model: type[C], data: Any, source: str) -> C:
    """Build `model` from `data`; on failure raise ParamsError naming `source` and each bad key."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ParamsError(describe_validation_error(exc, source)) from None


def describe_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "section_key":  # raised by a section's own validator about one of its keys
            lines.append(f"  - {'.'.join([*map(str, err['loc']), err['ctx']['key']])}: {err['ctx']['message']}")
        elif err["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key (check the spelling; see params.yaml for the known keys)")
        elif err["type"] == "value_error":  # our validators' messages name the key and the value themselves
            lines.append(f"  - {key}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  - {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_section(path: str | Path, section: str, model: type[C], profile: str = "local") -> C:
    """Load one stage's section of `params.yaml` as its config model (what a stage CLI does)."""
    params = read_params(path, profile)
    return validate_config(model, params.get(section), f"{path} [{section}]")
