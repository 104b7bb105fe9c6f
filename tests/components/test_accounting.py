"""The cost accounting: a stage's meter, the counts its code adds, prices by device."""

import time

import pytest

from components import accounting


def test_the_meter_measures_time_and_collects_what_the_stage_adds():
    with accounting.metered() as usage:
        accounting.add(tokens_generated=120, samples_generated=4)
        accounting.add(tokens_generated=30, samples_kept=1)
        accounting.record(zero_advantage_share=0.25)
        end = time.process_time() + 0.05
        while time.process_time() < end:  # some CPU work for the meter to see
            pass
    assert (usage.tokens_generated, usage.samples_generated, usage.samples_kept) == (150, 4, 1)
    assert usage.zero_advantage_share == 0.25 and usage.device == "cpu" and usage.device_count == 1
    assert usage.cpu_seconds >= 0.04 and usage.wall_seconds >= usage.cpu_seconds * 0.5
    assert usage.as_dict()["device_seconds"] == usage.wall_seconds


def test_counts_outside_a_stage_go_nowhere_and_unknown_counts_are_refused():
    accounting.add(tokens_generated=5)  # no meter open (a notebook calling generate): nothing to count into
    with accounting.metered() as usage, pytest.raises(KeyError, match="unknown usage count 'tokens'.*tokens_trained"):
        accounting.add(tokens=5)
    assert usage.tokens_generated == 0


def test_meters_nest_without_mixing_their_counts():
    with accounting.metered() as outer:
        accounting.add(tokens_trained=10)
        with accounting.metered() as inner:
            accounting.add(tokens_trained=1)
        accounting.add(tokens_trained=10)
    assert (outer.tokens_trained, inner.tokens_trained) == (20, 1)


def test_a_price_is_found_by_device_name_then_kind():
    prices = {"cpu": 0.2, "cuda": 2.0, "NVIDIA H100 80GB HBM3": 3.0}
    assert accounting.price({"device": "cpu", "device_seconds": 1800}, prices) == 0.1
    assert accounting.price({"device": "NVIDIA H100 80GB HBM3", "device_seconds": 3600}, prices) == 3.0
    assert accounting.price({"device": "NVIDIA L4", "device_seconds": 3600}, prices) == 2.0
    assert accounting.price({"device": "NVIDIA L4", "device_seconds": 3600}, {"cpu": 0.2}) == 0.0


@pytest.mark.skipif(accounting.peak_rss_gib() is None, reason="VmHWM is Linux's")
def test_each_stage_reports_its_own_memory_peak_not_the_runs_so_far():
    import numpy as np

    with accounting.metered() as big:
        buffer = np.ones(50_000_000)  # 400 MB, every page touched
        del buffer
    with accounting.metered() as small:
        np.ones(1000)
    assert big.peak_rss_gib - small.peak_rss_gib > 0.3, (big.peak_rss_gib, small.peak_rss_gib)
    assert accounting.total([big.as_dict(), small.as_dict()])["peak_rss_gib"] == big.peak_rss_gib
