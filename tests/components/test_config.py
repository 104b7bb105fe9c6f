"""Config errors fail fast and name the file and key."""

import pytest

from components.config import ParamsError, load_section
from components.sft import Config as SFTConfig
from flows.params import load_params
from tests.conftest import write


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
