"""The learning-rate range test: its ramp, its stop rule, fastai's three suggestions, the state
it restores, and where it blows up on a quadratic whose stability limit is known."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from optedu.optim.adam import AdamW
from optedu.optim.sgd import SGD
from optedu.training import lr_range_test as rt

matplotlib.use("Agg")


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                               torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))


def _data(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(64, generator=g)


def _loss(model, x, y):
    return lambda: ((model(x).squeeze(1) - y) ** 2).mean()


def test_the_ramp_multiplies_each_group_rate_exactly():
    model = _model()
    x, y = _data()
    opt = SGD([{"params": model[0].parameters(), "lr": 0.5},
               {"params": [*model[1].parameters(), *model[4].parameters()], "lr": 2.0}],
              lr=1.0, momentum=0.9)
    seen = []

    def loss():
        seen.append([g["lr"] for g in opt.param_groups])
        return ((model(x).squeeze(1) - y) ** 2).mean() * 0   # never diverges

    result = rt.lr_range_test(model, opt, loss, start_lr=1e-4, end_lr=1.0, num_iter=9,
                              stop_factor=1e9)
    expected = [1e-4 * (1.0 / 1e-4) ** (i / 8) for i in range(9)]
    assert result.lrs == expected == rt.ramp(1e-4, 1.0, 9)
    assert seen == [[0.5 * r, 2.0 * r] for r in expected]
    assert result.lrs[0] == 1e-4 and math.isclose(result.lrs[-1], 1.0, rel_tol=1e-15)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 2.0]   # restored


def _same(a, b):
    """Nested state dicts equal bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    return a == b


def _train(model, opts, x, y, steps):
    for _ in range(steps):
        for o in opts:
            o.zero_grad()
        _loss(model, x, y)().backward()
        for o in opts:
            o.step()


def test_the_model_and_optimizers_are_restored_bit_for_bit():
    x, y = _data()
    runs = []
    for probe in (False, True):
        model = _model()
        opts = [AdamW(model[0].parameters(), lr=1e-2), SGD(model[4].parameters(), lr=0.1,
                                                              momentum=0.9)]
        _train(model, opts, x, y, 3)           # warm state: moments, momentum, BN statistics
        model.eval()
        before = (model.state_dict(), [o.state_dict() for o in opts], torch.get_rng_state())
        before = tuple(map(_clone, before))
        if probe:
            result = rt.lr_range_test(model, opts, _loss(model, x, y), num_iter=50)
            assert len(result.lrs) > 5
            assert not model.training
            assert _same(model.state_dict(), before[0])
            assert _same([o.state_dict() for o in opts], before[1])
            assert torch.equal(torch.get_rng_state(), before[2])
        model.train()
        _train(model, opts, x, y, 5)           # dropout draws from the restored generator
        runs.append(_clone(model.state_dict()))
    assert _same(runs[0], runs[1])


def test_each_submodules_train_or_eval_mode_is_restored():
    """A model in training mode with a frozen (eval-mode) batch norm keeps both modes."""
    x, y = _data()
    model = _model()
    model.train()
    model[1].eval()                            # frozen statistics, a common fine-tuning setup
    modes = [m.training for m in model.modules()]
    rt.lr_range_test(model, SGD(model.parameters(), lr=1.0), _loss(model, x, y), num_iter=20)
    assert [m.training for m in model.modules()] == modes


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return obj


def _scripted(losses):
    """A range test whose loss at step i is ``losses[i]``, whatever the rate."""
    p = torch.nn.Parameter(torch.zeros(1))
    model = torch.nn.Module()
    model.p = p
    it = iter(losses)
    return rt.lr_range_test(model, SGD([p], lr=1.0), lambda: p.sum() * 0 + next(it),
                            start_lr=1e-3, end_lr=1.0, num_iter=len(losses))


def test_the_stop_rule_fires_once_the_smoothed_loss_passes_four_times_its_minimum():
    losses = [1.0] * 10 + [0.5] * 10 + [50.0] * 10
    result = _scripted(losses)
    smoothed = rt.smooth(losses)
    first = next(i for i, v in enumerate(smoothed) if v > 4 * min(smoothed[:i + 1]))
    assert result.diverged and len(result.lrs) == first + 1
    assert result.smoothed == smoothed[:first + 1]
    assert smoothed[first - 1] <= 4 * min(smoothed[:first])     # not one step earlier
    calm = _scripted([1.0] * 10 + [0.5] * 10 + [1.9] * 10)       # below 4 × 0.5 raw
    assert not calm.diverged and len(calm.lrs) == 30
    spike = _scripted([1.0] * 10 + [6.0] + [1.0] * 10)           # one batch, smoothed away
    assert not spike.diverged and len(spike.lrs) == 21
    nan = _scripted([1.0] * 5 + [math.nan] * 5)
    assert nan.diverged and len(nan.lrs) == 6


def test_smoothing_is_fastais_debiased_average():
    assert rt.smooth([2.0, 4.0], beta=0.5) == [2.0, (0.25 * 2 + 0.5 * 4) / 0.75]
    assert rt.smooth([3.0] * 50) == pytest.approx([3.0] * 50, rel=1e-12)


def test_each_suggestion_on_a_hand_made_curve():
    lrs = [10.0 ** (k / 4 - 5) for k in range(13)]           # 1e-5 .. 1e-2
    #        flat ......  falling: steepest from k=5 to 6  ...  minimum at k=9, then up
    losses = [2.0, 2.0, 2.0, 1.9, 1.7, 1.5, 0.9, 0.7, 0.6, 0.5, 0.8, 1.5, 3.0]
    assert rt.minimum(lrs, losses) == lrs[9] / 10
    assert rt.steep(lrs, losses) == lrs[5]
    # longest decreasing run: indices 2..9 (8 points, the 2.0 at k=2 first); fastai's
    # start = end - length = 1, a third of the 8 steps is 2.67: 1 + 2 + 1 = 4
    assert rt.valley(lrs, losses) == lrs[4]
    result = rt.RangeTest(lrs=[0.0] * 3 + lrs + [0.0] * 5,
                          losses=[0.0] * 21, smoothed=[9.0] * 3 + losses + [9.0] * 5,
                          num_iter=30, diverged=True)
    assert result.curve() == (lrs, losses)       # the first tenth and the last five dropped
    assert result.suggestions() == {"minimum": lrs[9] / 10, "steep": lrs[5],
                                    "valley": lrs[4]}


def test_the_blow_up_lies_just_above_gradient_descents_stability_limit():
    """Noisy gradients of f(x) = ½ Σ λ_j (x_j - ξ_j)², largest curvature L = 10: plain
    gradient descent is stable for η < 2/L; the range test's stop lies just above."""
    L = 10.0
    lam = torch.linspace(1.0, L, 8, dtype=torch.float64)
    for seed in range(5):
        x = torch.nn.Parameter(torch.ones(8, dtype=torch.float64))
        model = torch.nn.Module()
        model.x = x
        g = torch.Generator().manual_seed(seed)

        def loss():
            xi = torch.randn(8, generator=g, dtype=torch.float64)
            return 0.5 * (lam * (x - xi) ** 2).sum()

        result = rt.lr_range_test(model, SGD([x], lr=1.0), loss, start_lr=1e-3,
                                  end_lr=10.0, num_iter=1000)
        assert result.diverged
        assert 1.0 < result.blow_up / (2 / L) < 1.25, (seed, result.blow_up)


@pytest.mark.parametrize("kwargs, message", [
    ({"start_lr": 0.0}, "Invalid start_lr value: 0.0"),
    ({"start_lr": 1.0, "end_lr": 0.5}, "Invalid end_lr value: 0.5"),
    ({"num_iter": 1}, "Invalid num_iter value: 1"),
    ({"num_iter": 10.0}, "Invalid num_iter value: 10.0"),
    ({"beta": 1.0}, "Invalid beta value: 1.0"),
    ({"beta": -0.1}, "Invalid beta value: -0.1"),
    ({"stop_factor": 1.0}, "Invalid stop_factor value: 1.0"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs, message):
    model = _model()
    with pytest.raises(ValueError, match=message):
        rt.lr_range_test(model, SGD(model.parameters(), lr=1.0), lambda: None, **kwargs)


def test_bad_rule_and_empty_optimizers():
    model = _model()
    with pytest.raises(ValueError, match="Invalid optimizers value"):
        rt.lr_range_test(model, [], lambda: None)
    with pytest.raises(ValueError, match="Invalid rule value: 'slide'"):
        rt.RangeTest([1.0] * 20, [1.0] * 20, [1.0] * 20, 20, False).suggest("slide")


def test_the_plot_marks_every_suggestion():
    x, y = _data()
    model = _model()
    result = rt.lr_range_test(model, SGD(model.parameters(), lr=1.0), _loss(model, x, y))
    ax = rt.plot_range_test(result)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "smoothed loss"
    assert [s.split(":")[0] for s in labels[1:]] == ["minimum", "steep", "valley"]
