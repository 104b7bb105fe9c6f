"""Bad dataset files given to each `posttrain <stage>` command: one line naming the file, exit 2, nothing written.

The flow validates every dataset with Great Expectations before training; a stage run on its
own (as a container runs it) still refuses a file it cannot train on before any work.
"""

from __future__ import annotations

import json

import pytest

from components.artifacts import MAX_LINE_BYTES

BAD_FILES = {
    "empty": (b"", "no rows"),
    "not UTF-8": (b'\xff\xfe{"a": 1}\n', ":1: not UTF-8 text (byte 0xff at column 1)"),
    "truncated JSON": (b'{"messages": [{"role": "user"\n', ":1: not valid JSON"),
    "a huge line": (b'{"x": "' + b"y" * MAX_LINE_BYTES + b'"}\n', f":1: a 8 MiB line, over the {MAX_LINE_BYTES >> 20} MiB"),
}
# command -> the dataset option it takes, its kind's field a wrong-shaped row gets wrong
COMMANDS = {"sft": ("sft", "messages"), "reward-model": ("prefs", "prompt"), "alignment": ("prefs", "prompt"), "grpo": ("rl", "prompt")}


def run(command: str, option: str, path, model: str, tmp_path, capsys) -> tuple[int, str]:
    from components.cli import main

    code = main([command, "--params", "params.yaml", "--model", model, f"--{option}", str(path), "--out", str(tmp_path / "out")])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bad", BAD_FILES)
def test_a_bad_dataset_file_is_one_line_naming_it_and_nothing_is_written(command, bad, tmp_path, capsys, tiny_base_model):
    option, _ = COMMANDS[command]
    content, expected = BAD_FILES[bad]
    path = tmp_path / f"{option}.jsonl"
    path.write_bytes(content)
    code, err = run(command, option, path, tiny_base_model, tmp_path, capsys)
    assert code == 2 and err.startswith(f"error: {path}") and expected in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists(), "nothing is written for a file that cannot be trained on"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_row_of_the_wrong_shape_is_named_by_row_and_field(command, tmp_path, capsys, tiny_base_model):
    option, field = COMMANDS[command]
    path = tmp_path / f"{option}.jsonl"
    path.write_text(json.dumps({field: "a plain string", "answer": "1", "chosen": [], "rejected": []}) + "\n")
    code, err = run(command, option, path, tiny_base_model, tmp_path, capsys)
    assert code == 2 and err == f"error: {path}: row 1: field {field!r} must be a list of {{role, content}} turns, got str", err
    assert not (tmp_path / "out").exists()
