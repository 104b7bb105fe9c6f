"""Tests of the benchmarks in bench/: each loads its script by path, as `python bench/NAME.py` runs it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from tests.conftest import REPO


def load_script(name: str):
    """bench/NAME.py as a module (bench/ is scripts, not an installed package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """`python bench/NAME.py ARGS` from the repository root, as a user runs it; it must succeed."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / f"{name}.py"), *args],
        cwd=REPO,
        env={**os.environ, "TQDM_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done
