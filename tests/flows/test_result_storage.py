"""Prefect result storage: only a store every pod can reach."""

import pytest


@pytest.mark.parametrize(
    ("basepath", "message"),
    [("file:///tmp/results", "must be a shared store URL"), ("posttrain/results", "protocol ''"), ("s4://b/results", "protocol 's4'")],
)
def test_result_storage_refuses_a_store_other_pods_cannot_reach(basepath, message, capsys):
    from flows.result_storage import main

    assert main([basepath]) == 2
    assert message in capsys.readouterr().err
