"""optedu.training.monitor: windowed statistics by hand, explosion and vanishing flags, bad arguments."""

import math

import pytest
import torch

from optedu.training.monitor import GradNormMonitor, window_stats


def feed(monitor, norms):
    return [monitor.record_norm(n) for n in norms]


def test_spike_is_flagged_exactly_at_the_spike():
    monitor = GradNormMonitor(window=5, factor=10.0, min_history=3)
    records = feed(monitor, [1.0] * 8 + [100.0] + [1.0] * 5)
    assert monitor.explosions == [9]
    assert records[8].exploding and not records[8].vanishing
    assert monitor.vanishings == []                     # median ignores the spike afterwards


def test_spike_does_not_mask_itself_with_a_small_window():
    # a window mean that included the current step could never flag with W <= 10:
    # 100 > 10 * (4 + 100) / 5 is false. Judging against the previous steps flags it.
    monitor = GradNormMonitor(window=5, factor=10.0, min_history=5)
    feed(monitor, [1.0] * 5 + [100.0])
    assert monitor.explosions == [6]


def test_just_below_and_above_factor_times_median():
    monitor = GradNormMonitor(window=4, factor=10.0, min_history=4)
    feed(monitor, [1.0, 2.0, 3.0, 4.0])                 # median 2.5
    assert monitor.judge(25.0) == (False, False)
    assert monitor.judge(25.000001) == (True, False)
    assert monitor.judge(0.25) == (False, False)
    assert monitor.judge(0.2499999) == (False, True)


def test_no_judgement_before_min_history():
    monitor = GradNormMonitor(window=10, factor=2.0, min_history=3)
    records = feed(monitor, [1.0, 50.0, 1.0, 1.0, 50.0])
    assert [r.exploding for r in records] == [False, False, False, False, True]
    # step 4: history (1, 50, 1) median 1 -> 1 is fine; step 5: 50 > 2 * median(1, 50, 1, 1) = 2


def test_vanishing_relative_and_absolute_floor():
    monitor = GradNormMonitor(window=5, factor=10.0, min_history=3, floor=1e-8)
    records = feed(monitor, [1e-9, 1.0, 1.0, 1.0, 0.05, 0.2])
    assert [r.step for r in records if r.vanishing] == [1, 5]   # floor at step 1, median/10 at 5
    assert not records[5].vanishing                              # 0.2 > median(1e-9,1,1,1,0.05)/10


def test_window_stats_by_hand():
    monitor = GradNormMonitor(window=4, factor=3.0, min_history=1)
    feed(monitor, [10.0, 1.0, 2.0, 4.0, 8.0])           # window keeps the last four
    s = monitor.stats()
    assert s.count == 4
    assert s.mean == 15.0 / 4
    assert s.median == 3.0                              # (2 + 4) / 2
    assert s.std == pytest.approx(math.sqrt(((1 - 3.75) ** 2 + (2 - 3.75) ** 2 + (4 - 3.75) ** 2
                                             + (8 - 3.75) ** 2) / 4), rel=1e-15)
    assert window_stats([3.0]) == type(s)(count=1, mean=3.0, std=0.0, median=3.0)


def test_k_sigma_rule():
    values = [1.0, 2.0, 1.0, 2.0]                       # mean 1.5, std 0.5, median 1.5
    monitor = GradNormMonitor(window=4, factor=10.0, k=3.0, min_history=4)
    feed(monitor, values)
    assert monitor.stats().std == 0.5                   # the population std (ddof 0), not 0.577
    assert monitor.judge(2.9)[0] is False
    assert monitor.judge(3.1)[0] is True                # > 1.5 + 3 * 0.5, far below 10 * 1.5


def test_nonfinite_is_exploding_and_stays_out_of_the_window():
    monitor = GradNormMonitor(window=3, factor=10.0, min_history=1)
    feed(monitor, [1.0, math.nan, math.inf, 1.0])
    assert monitor.explosions == [2, 3]
    assert monitor.stats() == window_stats([1.0, 1.0])


def test_record_module_optimizer_and_groups():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    unused = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    a.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    b.grad = torch.tensor([0.0, 12.0, 0.0], dtype=torch.float64)
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b, unused]}], lr=0.1)
    monitor = GradNormMonitor(window=3)
    record = monitor.record(opt)
    assert record.groups == (5.0, 12.0)
    assert record.total == 13.0
    assert monitor.record([a, b]).groups == (13.0,)
    module = torch.nn.Linear(2, 1)
    module.weight.grad = torch.ones(1, 2)
    module.bias.grad = torch.ones(1)
    assert monitor.record(module).total == pytest.approx(math.sqrt(3.0), rel=1e-7)
    assert monitor.record(a).total == 5.0
    assert monitor.totals[:2] == [13.0, 13.0]
    assert [r.step for r in monitor.history] == [1, 2, 3, 4]


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=0), "Invalid window value: 0 (expected an integer >= 1)"),
    (dict(window=2.5), "Invalid window value: 2.5 (expected an integer >= 1)"),
    (dict(factor=1.0), "Invalid factor value: 1.0 (expected a number > 1)"),
    (dict(factor=math.nan), "Invalid factor value: nan (expected a number > 1)"),
    (dict(k=0.0), "Invalid k value: 0.0 (expected a number > 0)"),
    (dict(window=5, min_history=6), "Invalid min_history value: 6 (expected an integer in [1, 5])"),
    (dict(min_history=0), "Invalid min_history value: 0 (expected an integer in [1, 100])"),
    (dict(floor=-1.0), "Invalid floor value: -1.0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as raised:
        GradNormMonitor(**kwargs)
    assert str(raised.value) == message


def test_window_stats_empty():
    with pytest.raises(ValueError):
        window_stats([])
