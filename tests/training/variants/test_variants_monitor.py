"""The long lesson's monitor rules (optedu.training.variants.monitor), against optedu's GradNormMonitor."""

import math

from optedu.training.monitor import GradNormMonitor
from optedu.training.variants.monitor import (explosions_including_latest, smallest_flagged_spike,
                                     vanishings_by_window_mean)


def test_flags_a_spike_when_the_window_is_long():
    norms = [1.0] * 30 + [1000.0]
    # mean of the last 20 including the spike: (19 + 1000) / 20 = 50.95; 1000 > 509.5
    assert explosions_including_latest(norms, window=20) == [31]


def test_never_fires_when_the_window_is_at_most_the_factor():
    for window in (2, 5, 10):
        for spike in (1e3, 1e6, 1e12):
            assert explosions_including_latest([1.0] * 30 + [spike], window=window) == []
        assert smallest_flagged_spike(window) == math.inf
    monitor = GradNormMonitor(window=10)
    for n in [1.0] * 30 + [1000.0]:
        monitor.record_norm(n)
    assert monitor.explosions == [31]                 # the previous-steps median sees it


def test_threshold_formula_matches_the_rule():
    for window in (11, 20, 100):
        s = smallest_flagged_spike(window)
        assert explosions_including_latest([1.0] * 200 + [s * (1 + 1e-9)], window) == [201]
        assert explosions_including_latest([1.0] * 200 + [s * (1 - 1e-9)], window) == []


def test_an_earlier_spike_masks_a_later_one():
    norms = [1.0] * 50 + [1000.0] + [1.0] * 20 + [100.0]
    # at step 72 the mean holds the first spike: (1000 + 100 + 70) / 72 = 16.25; 100 < 162.5
    assert explosions_including_latest(norms, window=100) == [51]
    monitor = GradNormMonitor(window=20)
    for n in norms:
        monitor.record_norm(n)
    assert monitor.explosions == [51, 72]


def test_vanishing_needs_a_full_window_and_an_absolute_floor():
    norms = [1e-7] * 12
    assert vanishings_by_window_mean(norms, window=10) == [11, 12]
    assert vanishings_by_window_mean([1e-5] * 12, window=10) == []
