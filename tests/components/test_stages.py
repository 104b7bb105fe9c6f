"""The stage registry: one row per stage, read by the CLI, the flow, the dispatcher, cache keys and docs."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml

from components import artifacts, stages
from components.cli import main as posttrain

REPO = Path(__file__).resolve().parents[2]
TOY = stages.Stage(
    "toy",
    "tests.toy_stage",
    "repeat the lines of a file (a stage added by one module and this row)",
    consumes={"words": stages.Input("file", help="a text file")},
    produces=("text",),
)


@pytest.fixture
def toy_stage(monkeypatch):
    monkeypatch.setitem(stages.STAGES, "toy", TOY)
    return TOY


def _imported_components(path: Path) -> set[str]:
    """Every `components.*` module a file imports, at the top or lazily inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "components":
            found |= {f"components.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("components."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("components.")}
    return found


def test_no_stage_imports_another_stage_and_no_helper_imports_a_stage():
    stage_modules = {stage.module for stage in stages.STAGES.values()}
    offenders = []
    for path in sorted((REPO / "components").glob("*.py")):
        module = f"components.{path.stem}"
        wrong = (_imported_components(path) & stage_modules) - {module}
        offenders += [f"{module} imports {other}" for other in sorted(wrong)]
    assert not offenders, "stages meet only through artifacts:\n" + "\n".join(offenders)


def test_the_import_walk_would_see_a_stage_importing_another(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from components.sft import run\n    import components.grpo\n")
    assert {"components.sft", "components.grpo"} <= _imported_components(sneaky)


def test_every_row_points_at_a_module_with_its_config_and_entry_function():
    for stage in stages.STAGES.values():
        assert callable(stage.entry_function()), stage.name
        assert hasattr(stage.config_class(), "model_validate"), stage.name
        assert stage.produces, f"{stage.name} produces nothing"
        if stage.gpu:
            assert stage.resources is not None, f"{stage.name} needs a GPU but asks for no resources"


def test_the_flow_and_the_dispatcher_take_their_stage_lists_from_the_registry():
    from flows.params import ExecutionConfig, PipelineParams
    from flows.stage_runner import StageRequest

    assert ExecutionConfig().dispatched_stages == stages.gpu_stages()
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        StageRequest(module="nope", config={}, inputs={}, out_dir="x", key="0" * 64)
    sections = set(PipelineParams.model_fields)
    for stage in stages.STAGES.values():
        assert stage.name in sections or stage.name == "validate", f"no params section for {stage.name}"


def test_a_stage_refuses_inputs_it_does_not_consume_before_any_work():
    with pytest.raises(stages.StageInputError, match=r"stage sft: unknown input\(s\) \['prefs'\]; missing input\(s\) \['sft'\]"):
        stages.get("sft").check_inputs({"model": "m", "prefs": "p.jsonl"})


def test_docs_architecture_is_generated_from_the_registry():
    current = (REPO / "docs" / "architecture.md").read_text()
    assert current == stages.architecture_markdown(), "docs/architecture.md is stale: python -m components.stages --write"
    for stage in stages.STAGES.values():
        assert f"| `{stage.name}` | `{stage.module}` |" in current


def test_a_toy_stage_runs_through_the_cli_from_its_row(toy_stage, tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("alpha\nbeta\n")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"toy": {"repeat": 3}}))
    out = tmp_path / "out"
    assert posttrain(["toy", "--params", str(params), "--words", str(words), "--out", str(out)]) == 0
    assert (out / "words.txt").read_text() == "alpha\n" * 3 + "beta\n" * 3
    assert '"lines": 6.0' in capsys.readouterr().out


def test_stage_commands_report_bad_params_and_inputs_in_one_line_with_exit_2(toy_stage, tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("alpha\n")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"toy": {"repeat": 0}}))
    assert posttrain(["toy", "--params", str(params), "--words", str(words), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "params.yaml [toy]: invalid configuration" in err and "- repeat: Input should be greater than or equal to 1" in err
    assert "Traceback" not in err
    params.write_text(yaml.safe_dump({"toy": {"repaet": 2}}))
    assert posttrain(["toy", "--params", str(params), "--words", str(words), "--out", str(tmp_path / "o")]) == 2
    assert "- repaet: unknown key" in capsys.readouterr().err
    params.write_text(yaml.safe_dump({"toy": {}}))
    assert posttrain(["toy", "--params", str(params), "--words", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists(), "nothing written"


def _stage_code_versions() -> dict[str, str]:
    return {name: artifacts.code_version(stage.module) for name, stage in stages.STAGES.items()}


def test_cache_keys_of_untouched_stages_stay_stable_across_an_unrelated_edit(tmp_path, monkeypatch):
    copy = tmp_path / "components"
    shutil.copytree(REPO / "components", copy)
    monkeypatch.setattr(artifacts, "COMPONENTS_DIR", copy)
    before = _stage_code_versions()
    assert before == {name: artifacts.code_version(stage.module) for name, stage in stages.STAGES.items()}, "deterministic"

    with (copy / "reward_model.py").open("a") as handle:
        handle.write("\n# an edit to the reward model stage\n")
    after = _stage_code_versions()
    assert {name for name in before if before[name] != after[name]} == {"reward_model"}

    with (copy / "scoring.py").open("a") as handle:
        handle.write("\n# an edit to the scorer every reward-model consumer loads\n")
    changed = {name for name, version in _stage_code_versions().items() if version != after[name]}
    assert changed == {"reward_model", "grpo", "rejection_sampling", "evaluate", "distill"}


@pytest.mark.slow
def test_a_toy_stage_runs_through_the_flow_cached_from_its_row(toy_stage, tmp_path):
    from prefect import flow

    from flows.params import ExecutionConfig
    from flows.stage_runner import stage

    words = tmp_path / "words.txt"
    words.write_text("alpha\nbeta\n")
    config = stages.get("toy").config_class()(repeat=2)

    @flow
    def toy_flow():
        return [stage("toy", config, {"words": str(words)}, ExecutionConfig(), str(tmp_path / "artifacts"), force=False) for _ in range(2)]

    (first, first_cached), (second, second_cached) = toy_flow()
    assert first.metrics["lines"] == 4.0 and Path(first.outputs["text"]).read_text() == "alpha\nalpha\nbeta\nbeta\n"
    assert not first_cached and second_cached, "the second run is served from the cache by the stage's key"
    assert Path(first.outputs["text"]).parent.parent == tmp_path / "artifacts" / "toy"


def test_a_params_file_that_is_not_utf8_is_named_with_exit_2(toy_stage, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_bytes(b"toy:\n  repeat: 2 # caf\xe9\n")
    words = tmp_path / "words.txt"
    words.write_text("alpha\n")
    assert posttrain(["toy", "--params", str(params), "--words", str(words), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{params}: not UTF-8 text (byte 0xe9" in err and "Traceback" not in err
