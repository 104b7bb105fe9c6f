"""Tests of the benchmarks in bench/: each loads its script by path, as `python bench/NAME.py` runs it."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def load_script(name: str):
    """bench/NAME.py as a module (bench/ is scripts, not an installed package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
