"""Config errors fail fast and name the file and key."""

import pytest

from components.config import ParamsError, load_section
from components.sft import Config as SFTConfig
from flows.params import PipelineParams, load_params


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_params_yaml_local_profile_equals_the_code_defaults():
    # params.yaml is what DVC tracks and users edit; the defaults are what the UI form shows.
    assert load_params("params.yaml", "local").model_dump() == PipelineParams().model_dump()


def test_cluster_profile_loads():
    params = load_params("params.yaml", "cluster")
    assert params.base.source == "pretrained"
    assert params.sft.use_cpu is False


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "sft:\n  max_stepz: 3\n")
    with pytest.raises(ParamsError, match=r"params.yaml.*\n.*sft\.max_stepz: unknown key"):
        load_params(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "sft:\n  learning_rate: fast\n")
    with pytest.raises(ParamsError, match=r"sft\.learning_rate: .*got 'fast'"):
        load_params(path)


def test_out_of_range_is_named(tmp_path):
    path = write(tmp_path, "evaluate:\n  num_samples: 2\n  ks: [1, 4]\n")
    with pytest.raises(ParamsError, match=r"evaluate.*ks \[4\] must be between 1 and num_samples \(2\)"):
        load_params(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ParamsError, match="params file not found: .*nope.yaml"):
        load_params(tmp_path / "nope.yaml")


def test_unknown_profile_is_named(tmp_path):
    path = write(tmp_path, "profiles:\n  cluster: {}\n")
    with pytest.raises(ParamsError, match=r"unknown profile 'gpu' \(known: local, cluster\)"):
        load_params(path, "gpu")


def test_invalid_yaml_is_named(tmp_path):
    path = write(tmp_path, "sft: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_stage_cli_section_loading(tmp_path):
    path = write(tmp_path, "sft:\n  max_steps: 7\n")
    assert load_section(path, "sft", SFTConfig).max_steps == 7


def test_a_scratch_base_without_a_pretraining_corpus_is_refused(tmp_path):
    path = write(tmp_path, "data:\n  n_pretrain: 0\n")
    with pytest.raises(ParamsError, match="base.source is 'scratch'.*writes none"):
        load_params(path)


def test_pipeline_cli_reports_a_bad_params_file_before_doing_anything(tmp_path, capsys):
    from flows.post_training import main

    path = write(tmp_path, "base:\n  hidden_size: wide\n")
    assert main(["--params", str(path)]) == 2
    err = capsys.readouterr().err
    assert "base.hidden_size" in err and str(path) in err
    assert not (tmp_path / "data").exists()


def test_posttrain_command_dispatches_and_rejects_unknown_commands(capsys):
    from components.cli import main

    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main(["validate", "/nonexistent/file.jsonl"]) == 2


def test_every_registered_stage_has_a_posttrain_command(capsys):
    from components import stages
    from components.cli import main

    for stage in stages.STAGES.values():
        try:
            code = main([stage.command, "--help"])
        except SystemExit as exit_info:  # argparse's --help
            code = exit_info.code
        assert code == 0, stage.name
        shown = capsys.readouterr().out
        for name in stage.consumes if not hasattr(stage.load(), "main") else ():
            assert f"--{name.replace('_', '-')}" in shown, (stage.name, name)
