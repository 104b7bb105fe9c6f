"""Validate stage: Great Expectations checks on every dataset before any GPU time is spent.

Each dataset file is flattened into a DataFrame of derived columns (components.dataset_frames:
field shapes, role sequences, prompt/response text, whether the boxed answer extracts, ...) so
that every check is a real GX expectation. One suite per dataset kind runs through a
Checkpoint whose `UpdateDataDocsAction` writes the HTML Data Docs; `summary.json` beside them
lists each expectation's result. Checks: JSON parse and schema, role order, non-empty text and
length bounds, duplicate prompts, chosen != rejected, parseable answers, and contamination of
the training sets (sft, prefs, rl) by eval prompts. Each failure is a sentence naming check,
file, field and an example line (components.validation_report).

    python -m components.validate data/                  # every <kind>.jsonl/.parquet in it
    python -m components.validate data/sft.jsonl          # one file; kind from its name
    python -m components.validate my.jsonl --kind eval --report-dir reports/validation

Exit code: 0 when every check passes, 1 on a validation failure, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from components.artifacts import write_json
from components.config import ParamsError, StageResult, StrictModel, load_section
from components.dataset_frames import BOXED_COLUMNS, ROLE_COLUMNS, SCHEMA, SUFFIXES, TEXT_COLUMNS, read_rows, to_frame
from components.validation_report import _check_summary, describe

Kind = Literal["pretrain", "sft", "prefs", "rl", "eval", "val", "probe"]
KINDS: tuple[str, ...] = ("pretrain", "sft", "prefs", "rl", "eval", "val", "probe")
TRAIN_KINDS = ("sft", "prefs", "rl")
UNSEEN_BY_EVAL = (*TRAIN_KINDS, "val")  # where an eval prompt must never appear: training, and the split tuning reads
# SCHEMA shape -> what components.dataset_frames.shape may report for a valid field.
ALLOWED_SHAPES = {"str": ["str"], "messages": ["messages"], "str?": ["str", "missing", "null"], "str|messages": ["str", "messages"]}
VERIFIABLE_KINDS = ("rl", "eval", "val")  # whose `answer` a verifier compares: it must read as a number


class ValidationConfig(StrictModel):
    report_dir: str = Field("reports/validation", description="folder for the HTML Data Docs and summary.json")
    min_chars: int = Field(1, ge=0, description="shortest allowed text (after stripping whitespace)")
    max_chars: int = Field(4000, ge=1, description="longest allowed text: pretrain text, prompt, response, solution")
    max_duplicate_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="share of rows whose prompt may repeat another prompt of the same file"
    )
    unique_prompt_kinds: list[Kind] = Field(
        default_factory=lambda: ["sft", "prefs", "rl", "eval", "val", "probe"],
        description="kinds whose prompts must be unique (pretrain has no prompts)",
    )
    answer_regex: str = Field(r"^-?\d+(?:\.\d+)?(?:/\d+)?$", description="what a reference `answer` must look like")
    example_chars: int = Field(240, ge=40, description="example rows in failure messages are cut to this length")

    @model_validator(mode="after")
    def _check(self) -> ValidationConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is larger than max_chars ({self.max_chars})")
        return self


Config = ValidationConfig  # the stage contract's name for it


# ---------------------------------------------------------------- the GX suites


def expectations(kind: str, cfg: Config, eval_keys: list[str]) -> list:
    """The suite for one dataset kind; `meta` names the check and the source field for messages."""
    import great_expectations as gx

    E = gx.expectations

    def meta(check: str, field: str) -> dict:
        return {"meta": {"check": check, "field": field}}

    suite = [
        E.ExpectTableRowCountToBeBetween(min_value=1, **meta("rows", "(file)")),
        E.ExpectColumnValuesToBeNull(column="parse_error", **meta("parse", "(line)")),
    ]
    suite += [
        E.ExpectColumnValuesToBeInSet(column=f"{f}_type", value_set=ALLOWED_SHAPES[s], **meta("schema", f)) for f, s in SCHEMA[kind].items()
    ]
    suite += [
        E.ExpectColumnValuesToMatchRegex(column=col, regex=regex, **meta("roles", f))
        for col, (f, regex) in ROLE_COLUMNS.get(kind, {}).items()
    ]
    suite += [
        E.ExpectColumnValueLengthsToBeBetween(column=col, min_value=cfg.min_chars, max_value=cfg.max_chars, **meta("text length", f))
        for col, f in TEXT_COLUMNS[kind].items()
    ]
    suite += [
        E.ExpectColumnValuesToBeInSet(column=col, value_set=[True], **meta("boxed answer", f))
        for col, f in BOXED_COLUMNS.get(kind, {}).items()
    ]
    if "answer" in SCHEMA[kind]:  # a verifier compares a number; a probe's answer may be a word the reply must name ("Paris")
        regex = cfg.answer_regex if kind in VERIFIABLE_KINDS else r"\S"
        suite.append(E.ExpectColumnValuesToMatchRegex(column="answer", regex=regex, **meta("answer format", "answer")))
    prompt_field = "messages" if kind == "sft" else "prompt"
    if kind in cfg.unique_prompt_kinds:
        suite.append(
            E.ExpectColumnValuesToBeUnique(
                column="prompt_key", mostly=1.0 - cfg.max_duplicate_fraction, **meta("duplicate prompts", prompt_field)
            )
        )
    if kind == "prefs":
        suite.append(
            E.ExpectSelectColumnValuesToBeUniqueWithinRecord(
                column_list=["chosen_text", "rejected_text"], **meta("chosen differs from rejected", "chosen/rejected")
            )
        )
    if kind in UNSEEN_BY_EVAL and eval_keys:
        suite.append(E.ExpectColumnValuesToNotBeInSet(column="prompt_key", value_set=eval_keys, **meta("eval contamination", prompt_field)))
    return suite


def run_checkpoints(cfg: Config, frames: dict, eval_keys: list[str]) -> dict:
    """Run one Checkpoint per kind (a Checkpoint takes one batch_parameters, i.e. one DataFrame),
    all under one run id so the Data Docs index groups them; returns kind -> validation result."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # tqdm bars would flood CLI and CI logs
    context.update_data_docs_site(
        "local_site",
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(cfg.report_dir).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = context.data_sources.add_pandas("datasets")
    run_id = RunIdentifier(run_name="validate", run_time=datetime.now(UTC))
    results = {}
    for kind, frame in frames.items():
        batch = source.add_dataframe_asset(kind).add_batch_definition_whole_dataframe("all rows")
        suite = context.suites.add(gx.ExpectationSuite(name=kind, expectations=expectations(kind, cfg, eval_keys)))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=kind, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"validate {kind}",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data docs", site_names=["local_site"])],
                # `line` as the index column makes every failure point at a line of the file.
                result_format={
                    "result_format": "SUMMARY",
                    "unexpected_index_column_names": ["line"],
                    "partial_unexpected_count": 3,
                },
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        results[kind] = next(iter(outcome.run_results.values()))
    return results


def run(cfg: Config, inputs: dict[str, str], out_dir: str | None = None) -> StageResult:
    """Validate each dataset in `inputs` (kind -> file path); never raises on bad data.

    The report goes to `out_dir` when given (the flow's run-scoped folder), else `cfg.report_dir`.
    """
    if out_dir is not None:
        cfg = cfg.model_copy(update={"report_dir": str(out_dir)})
    start = time.perf_counter()
    unknown = sorted(set(inputs) - set(KINDS))
    if unknown:
        raise ParamsError(f"unknown dataset kind(s) {unknown}; known: {', '.join(KINDS)}")
    failures, rows = [], {}
    for kind, path in inputs.items():
        try:
            rows[kind] = read_rows(Path(path))
        except (OSError, ValueError) as exc:  # missing, unsupported or corrupt (ArrowInvalid) is a data failure
            failures.append(f"{Path(path).name}: [read] cannot read the file: {exc}")
    frames = {kind: to_frame(kind, kind_rows) for kind, kind_rows in rows.items()}
    eval_keys = sorted(set(frames["eval"]["prompt_key"].dropna())) if "eval" in frames else []
    results = run_checkpoints(cfg, frames, eval_keys) if frames else {}
    datasets, n_checks = {}, len(inputs) - len(rows)
    for kind, validation in results.items():
        path = Path(inputs[kind])
        records = {line: record for line, record, _ in rows[kind]}
        unit = "row" if path.suffix == ".parquet" else "line"
        failed = [describe(path.name, r, records, cfg, unit) for r in validation.results if not r.success]
        failures += failed
        n_checks += len(validation.results)
        datasets[kind] = {
            "path": str(path),
            "rows": len(rows[kind]),
            "passed": not failed,
            "checks": [_check_summary(r) for r in validation.results],
        }
    report_dir = Path(cfg.report_dir).resolve()
    metrics = {"passed": float(not failures), "n_checks": float(n_checks), "n_failed": float(len(failures))}
    metrics.update({f"rows_{kind}": float(len(kind_rows)) for kind, kind_rows in rows.items()})
    summary = write_json(report_dir / "summary.json", {**metrics, "failures": failures, "datasets": datasets})
    return StageResult(
        stage="validate",
        outputs={"report": str(report_dir / "index.html"), "summary": str(summary)},
        metrics=metrics,
        info={"failures": failures},
        wall_seconds=time.perf_counter() - start,
    )


# ---------------------------------------------------------------- CLI


def resolve_inputs(path: Path, kind: str | None) -> dict[str, str]:
    """kind -> file for a file or a data folder; raises ValueError on a usage error."""
    if path.is_file():
        kind = kind or path.stem
        if kind not in KINDS:
            raise ValueError(f"cannot tell the dataset kind of {path.name!r} from its name; pass --kind ({'|'.join(KINDS)})")
        return {kind: str(path)}
    if not path.is_dir():
        raise ValueError(f"no such file or folder: {path}")
    found = {}
    for name in [kind] if kind else KINDS:
        existing = [path / f"{name}{suffix}" for suffix in SUFFIXES if (path / f"{name}{suffix}").is_file()]
        if existing:
            found[name] = str(existing[0])  # .jsonl wins over .parquet, as listed in SUFFIXES
    if not found:
        wanted = ", ".join(f"{k}.jsonl" for k in ([kind] if kind else KINDS))
        raise ValueError(f"{path}: no dataset files found (looked for {wanted} or .parquet)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="validate", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a dataset file, or the data folder with <kind>.jsonl/.parquet files")
    parser.add_argument("--kind", choices=KINDS, help="dataset kind of PATH (default: from the file name)")
    parser.add_argument("--report-dir", help="where the Data Docs go (overrides the config)")
    parser.add_argument("--params", help="params.yaml with a `validation` section (default: built-in defaults)")
    parser.add_argument("--profile", default="local")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the problem; report it as a usage error
        return 0 if exc.code == 0 else 2
    try:
        cfg = load_section(args.params, "validation", Config, args.profile) if args.params else Config()
        if args.report_dir:
            cfg.report_dir = args.report_dir
        inputs = resolve_inputs(Path(args.path), args.kind)
    except ValueError as exc:  # ParamsError is a ValueError too
        print(f"validate: error: {exc}", file=sys.stderr)
        return 2
    result = run(cfg, inputs)
    failures = result.info["failures"]
    for failure in failures:
        print(f"FAIL {failure}")
    verdict = "FAIL" if failures else "PASS"
    print(
        f"{verdict}: {len(inputs)} dataset(s), {result.metrics['n_checks']:.0f} checks, {len(failures)} failed "
        f"in {result.wall_seconds:.1f}s; report: {result.outputs['report']}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
