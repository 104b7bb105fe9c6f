"""The suite's own policy: in CI (CI=true) a skipped test fails the run, except a `gpu` test's skip."""

import os
import subprocess
import sys

from tests.conftest import REPO


def _probe(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/ci_probe/skipping.py"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )


def test_in_ci_a_skip_fails_the_run_and_is_named():
    done = _probe({"CI": "true", "PROBE_SKIP": "plain"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "test_skips_without_a_reason_to: " in done.stderr and "nothing listens on the port" in done.stderr
    assert "test_needs_cuda" not in done.stderr, "a gpu test may skip"


def test_in_ci_only_gpu_skips_pass_and_outside_ci_skips_are_allowed():
    assert _probe({"CI": "true", "PROBE_SKIP": ""}).returncode == 0
    assert _probe({"CI": "", "PROBE_SKIP": "plain"}).returncode == 0
