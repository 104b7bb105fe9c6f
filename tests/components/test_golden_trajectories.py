"""Golden loss trajectories: SFT and DPO on the tiny model, step by step, as TRL logs them.

A silent change in what carries loss (assistant-only masking, the end-of-turn token) or in
which answer of a pair is chosen moves these numbers at once, while every "it trained" test
still passes. Fast: a few steps on the session's tiny model (seeded, deterministic on CPU).
After an intended change, regenerate and review the diff: UPDATE_GOLDEN=1 pytest tests/components/test_golden_trajectories.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from components import alignment, sft
from tests.conftest import tiny_overrides

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
RTOL = 2e-3  # thread counts reorder float sums; a masking or pairing change moves losses by far more


def check(name: str, trajectory: dict[str, list[float]]) -> None:
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(trajectory, indent=2) + "\n")
    golden = json.loads(path.read_text())
    assert set(golden) == set(trajectory), f"{name}: curves {sorted(trajectory)} vs golden {sorted(golden)}"
    for curve, values in golden.items():
        assert trajectory[curve] == pytest.approx(values, rel=RTOL, abs=1e-6), f"{name}.{curve} left its golden trajectory"


def test_sft_loss_trajectory_is_golden(tmp_path, tiny_base_model, tiny_data):
    cfg = sft.Config(**{**tiny_overrides()["sft"], "max_steps": 6, "logging_steps": 1, "save_steps": 100})
    result = sft.run(cfg, {"model": tiny_base_model, "sft": tiny_data["sft"]}, str(tmp_path))
    check("sft", {"train_loss": result.curves["train_loss"]})


def test_dpo_loss_and_margin_trajectory_is_golden(tmp_path, tiny_sft_model, tiny_data):
    dpo = {**tiny_overrides()["alignment"]["dpo"], "max_steps": 4, "logging_steps": 1, "learning_rate": 1e-3}
    cfg = alignment.Config(pairs="dataset", dpo=dpo)
    result = alignment.run(cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path))
    check("dpo", {name: result.curves[name] for name in ("loss", "rewards_margins", "rewards_chosen", "rewards_rejected")})
