"""bench/padding.py on the tiny model: every setting trains the same batches to the same update, with less padding."""

from __future__ import annotations

import pytest

from components import base
from tests.bench import load_script
from tests.conftest import tiny_overrides


def test_length_sorted_passes_train_the_same_update_on_fewer_padded_positions(tiny_data):
    cfg = base.Config(**tiny_overrides()["base"])
    settings = load_script("padding").measure(cfg, tiny_data, steps=5, passes=[1, 3])
    one, three = settings["1"], settings["3"]
    assert three["last_loss"] == pytest.approx(one["last_loss"], rel=1e-3), "the passes add up to the one-pass update"
    assert 0 < one["real_token_share"] < three["real_token_share"] <= 1
    assert one["step_time_vs_first"] == 1.0 and three["median_step_seconds"] > 0
