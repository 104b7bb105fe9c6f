"""Run only by tests/test_ci_policy.py (not collected by the suite: no test_ prefix)."""

import os

import pytest


def test_skips_without_a_reason_to():
    if os.environ.get("PROBE_SKIP") == "plain":
        pytest.skip("nothing listens on the port")


@pytest.mark.gpu
def test_needs_cuda():
    pytest.skip("no CUDA here")
