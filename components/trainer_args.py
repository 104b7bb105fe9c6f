"""Trainer configs that pass straight through to TRL: a YAML key is the TRL field of that name.

A trainer stage's section of `params.yaml` is TRL's own config dataclass (`trl.SFTConfig`,
`trl.GRPOConfig`, ...): the knobs the pipeline cares about are declared on the stage's pydantic
config under TRL's names, with bounds and descriptions for the Prefect UI form, and every other
field of the TRL dataclass may be set too (validated against the dataclass's field type). A key
that is not a TRL field, and not one of the few the stage adds itself, is refused with the
stage and the key named. So `grpo.beta` in params.yaml reaches `GRPOConfig(beta=...)` in one hop.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import importlib
import shutil
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from components.config import DeepSpeedFile, StrictModel

# What a stage sets itself: never from YAML (the flow logs to MLflow; outputs live where the stage says).
STAGE_OWNED = frozenset({"output_dir", "report_to", "logging_dir", "push_to_hub", "hub_model_id", "hub_token"})


@functools.cache
def trl_fields(trl_class: str) -> dict[str, Any]:
    """Field name -> type hint of a TRL (or transformers) config dataclass, e.g. `trl.GRPOConfig`."""
    module, _, name = trl_class.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an unresolvable annotation: names are still checked, types left to TRL
        hints = {}
    return {field.name: hints.get(field.name, Any) for field in dataclasses.fields(cls) if field.init}


@functools.cache
def _adapter(trl_class: str, field: str) -> TypeAdapter | None:
    try:
        return TypeAdapter(trl_fields(trl_class)[field])
    except Exception:  # a type pydantic cannot build a validator for: TRL checks it when the stage runs
        return None


class LoraSettings(StrictModel):
    """LoRA through peft: only low-rank adapters train; the stage saves the merged model (and the adapter beside it)."""

    r: int = Field(16, ge=1, le=1024, description="adapter rank")
    lora_alpha: int = Field(32, ge=1, description="scaling numerator (alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = Field("all-linear", description="module names, or all-linear")

    def config(self, task_type: str, modules_to_save: list[str] | None = None):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.target_modules,
            task_type=task_type,
            modules_to_save=modules_to_save,
        )


class TrainerConfig(StrictModel):
    """Base of a trainer stage's config: declared fields + any other field of `TRL_CLASS`.

    Subclasses declare the fields they care about under TRL's names (typed, bounded, described)
    and list in `OWN_FIELDS` the ones TRL lacks, which never reach the TRL config.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    TRL_CLASS: ClassVar[str] = "trl.SFTConfig"
    OWN_FIELDS: ClassVar[frozenset[str]] = frozenset()
    # GRPO and on-policy distillation count the prompt and completion tokens in the trainer state
    # themselves; every other trainer is asked to (`include_num_input_tokens_seen`): the cost accounting.
    COUNTS_OWN_TOKENS: ClassVar[bool] = False

    seed: int = 0
    use_cpu: bool = Field(True, description="False on GPU nodes")
    bf16: bool | Literal["auto"] = Field(False, description="bf16 autocast; auto: where bf16 is measured faster than fp32 here")
    gradient_checkpointing: bool = False
    deepspeed: DeepSpeedFile = Field(None, description="DeepSpeed config path (cluster profile); must parse with DeepSpeed")
    peft: LoraSettings | None = Field(None, description="LoRA adapters instead of full fine-tuning (the saved model is merged)")
    save_steps: int = Field(50, ge=1, description="checkpoint every N steps (what resume restarts from)")
    resume: bool = Field(True, description="continue from the last complete checkpoint in the stage's output folder")

    @property
    def own_fields(self) -> frozenset[str]:
        return self.OWN_FIELDS | {"peft", "resume"}

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        # The Prefect form (and the server that checks a run's parameters) refuses a misspelt key
        # too, not only this validator at the run's start: the names TRL's dataclass and the stage accept.
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["propertyNames"] = {"enum": sorted((set(trl_fields(cls.TRL_CLASS)) - STAGE_OWNED) | set(cls.model_fields))}
        return schema

    def peft_config(self, task_type: str = "CAUSAL_LM", modules_to_save: list[str] | None = None):
        """The trainer's `peft_config`, or None for full fine-tuning."""
        return self.peft.config(task_type, modules_to_save) if self.peft else None

    @model_validator(mode="after")
    def _extras_are_trl_fields(self) -> TrainerConfig:
        fields = trl_fields(self.TRL_CLASS)
        for key, value in (self.model_extra or {}).items():
            if key not in fields:
                raise _key_error(key, f"unknown key (neither a field of {self.TRL_CLASS} nor one of this stage's own; check the spelling)")
            if key in STAGE_OWNED:
                raise _key_error(key, "set by the stage itself, not in params.yaml")
            adapter = _adapter(self.TRL_CLASS, key)
            if adapter is not None:
                try:
                    self.model_extra[key] = adapter.validate_python(value)
                except ValidationError as error:
                    raise _key_error(key, f"{error.errors()[0]['msg']} (got {value!r}; {self.TRL_CLASS} field)") from None
        for key in type(self).model_fields:
            if key not in fields and key not in self.own_fields:
                raise TypeError(f"{type(self).__name__}.{key} is neither a field of {self.TRL_CLASS} nor listed in OWN_FIELDS")
        return self

    def trl_kwargs(self) -> dict[str, Any]:
        """Every TRL field this config sets, declared or extra, by TRL's name."""
        values = self.model_dump(exclude=set(self.own_fields))
        if values.get("bf16") == "auto":
            values["bf16"] = resolve_bf16(self.use_cpu)
        for old, new in DEPRECATED_TRL_NAMES.items():  # passed under transformers' current name: no FutureWarning a stage
            if old in values:
                values.setdefault(new, values.pop(old))
        return {key: value for key, value in values.items() if key not in STAGE_OWNED}


def resolve_bf16(use_cpu: bool) -> bool:
    """`bf16: auto` decided on this machine, and said: the smoke of a real model trains in bf16 only where it pays."""
    from components.modeling import bf16_is_fast

    fast, why = bf16_is_fast(on_cpu=use_cpu)
    print(f"bf16: auto -> {fast}: {why}", flush=True)
    return fast


# params.yaml keeps the names TRL's docs use; transformers 5 renamed them and warns at every config built with the old
# ones (TRL's own defaults set them, so a config that names neither warns too).
DEPRECATED_TRL_NAMES = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}

# Every trainer saves checkpoints, a few at a time: what `resume` restarts a killed stage from.
CHECKPOINTING = {"save_strategy": "steps", "save_total_limit": 2}


def _key_error(key: str, message: str) -> PydanticCustomError:
    """An error that components.config.describe_validation_error reports at `<section>.<key>`."""
    return PydanticCustomError("section_key", "{message}", {"key": key, "message": message})


def trl_config(cfg: TrainerConfig, output_dir: str | Path, defaults: dict[str, Any] | None = None, **stage_set: Any):
    """The TRL config dataclass of `cfg`: the stage's `defaults`, then params.yaml, then what the stage sets.

    `defaults` are the stage's choices a user may override (e.g. `packing`); `stage_set` are
    derived from the stage's own fields (e.g. `reward_weights` from `rewards`) and always win.
    Every trainer checkpoints (`CHECKPOINTING`, under `output_dir`) so that a killed run resumes.
    `report_to="none"`: the trainer's own MLflow integration would open runs of its own; the
    stage streams to the run the flow opened for it instead (components.live).
    """
    module, _, name = cfg.TRL_CLASS.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    counting = {} if cfg.COUNTS_OWN_TOKENS else {"include_num_input_tokens_seen": "non_padding"}
    kwargs = CHECKPOINTING | counting | (defaults or {}) | cfg.trl_kwargs() | stage_set
    return cls(**kwargs, output_dir=str(output_dir), report_to="none")


def save_trained(trainer, model_dir: Path, tokenizer, generation_defaults: bool = True) -> dict[str, str]:
    """Save what a trainer trained as a standalone HF folder; a LoRA run's adapter lands beside it.

    Full fine-tuning saves through the trainer (which gathers ZeRO-3 shards, on the main process
    only). A peft model is merged into its base first, so every later stage, the registry and
    vLLM get a plain model. Returns the outputs: `model`, and `adapter` for LoRA."""
    from components.modeling import set_generation_defaults

    model = trainer.model
    if not hasattr(model, "merge_and_unload"):
        if generation_defaults:
            set_generation_defaults(model, tokenizer)
        trainer.save_model(str(model_dir))
        # The Trainer's pickled arguments hold this machine's paths: two identical trainings in two
        # checkouts would differ by them alone, and register twice. Their values are in result.json.
        (model_dir / "training_args.bin").unlink(missing_ok=True)
        return {"model": str(model_dir)}
    adapter_dir = model_dir.parent / "adapter"
    model.save_pretrained(str(adapter_dir))
    merged = model.merge_and_unload()
    if generation_defaults:
        set_generation_defaults(merged, tokenizer)
    merged.save_pretrained(str(model_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(model_dir))
    return {"model": str(model_dir), "adapter": str(adapter_dir)}


def last_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest complete HF checkpoint under `checkpoint_dir` (what `resume` restarts from).

    Complete means its trainer_state.json exists: the Trainer writes it last, so a checkpoint
    cut short by a kill or a full disk is passed over (transformers' own get_last_checkpoint
    would pick it and the resume would fail on its missing files)."""
    steps = {}
    for folder in Path(checkpoint_dir).glob("checkpoint-*"):
        step = folder.name.removeprefix("checkpoint-")
        if step.isdigit() and (folder / "trainer_state.json").is_file():
            steps[int(step)] = folder
    return str(steps[max(steps)]) if steps else None


def disk_full(folder: Path, error: BaseException) -> bool:
    """Did `error` come from a full disk under `folder`? By errno where the writer kept it, else by
    the space left (safetensors and torch.save wrap the OS error in their own)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    existing = next((p for p in (Path(folder), *Path(folder).parents) if p.exists()), Path("/"))
    return shutil.disk_usage(existing).free < DISK_FULL_BYTES


DISK_FULL_BYTES = 1 << 20  # under 1 MiB left after a failed write: the disk is what failed


class StorageFull(OSError):
    """The disk filled while a trainer wrote a checkpoint or its model."""


def train_resumably(trainer, cfg: TrainerConfig, checkpoint_dir: Path, stage: str) -> str | None:
    """`trainer.train()`, from the last complete checkpoint when `cfg.resume`; returns that checkpoint.

    The trainer streams its logs and progress as it trains (components.live).
    A full disk becomes one clear error that names the folder and what is still intact."""
    from components.live_callback import LiveCallback

    trainer.add_callback(LiveCallback(stage))
    resume_from = last_checkpoint(checkpoint_dir) if cfg.resume else None
    if resume_from:
        print(f"[{stage}] resuming from {resume_from}")
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        if not disk_full(checkpoint_dir, error):
            raise
        intact = last_checkpoint(checkpoint_dir)
        kept = f"the last complete checkpoint, {intact}, is intact" if intact else "no checkpoint had been completed"
        raise StorageFull(f"{stage}: the disk is full under {checkpoint_dir}; {kept}: free space and re-run to resume") from error
    return resume_from
