"""The `posttrain` command: dispatches to every registered stage, rejects unknown commands."""


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
