"""optedu.SparseAdam beside torch.optim.SparseAdam, on embeddings with sparse gradients.

SparseAdam does not fit the dense table of ``tests/optimizers.py`` (it refuses dense gradients,
and its ``step`` is a Python int), so it has its own file. The model: two
``nn.Embedding(sparse=True)`` tables whose looked-up rows feed a non-linear loss; each batch
draws token ids from a long-tailed distribution, so rows repeat within a batch (the gradient is
uncoalesced), some rows are never drawn, and one step draws no id at all for the second table
(an empty sparse gradient). Parameters and state must be bit-identical to torch's.
"""

from __future__ import annotations

import copy
import inspect
import itertools

import pytest
import torch

import optedu
from optimizers import crossed

VOCABS = ((20, 4), (7, 3))  # (rows, width) of the two embedding tables
NEVER = {0: range(16, 20), 1: range(6, 7)}  # rows no batch ever draws
EMPTY_STEP = 5  # the step at which the second table gets an empty batch


def _model(seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.nn.ModuleList:
    torch.manual_seed(seed)
    return torch.nn.ModuleList(
        torch.nn.Embedding(rows, width, sparse=True, dtype=dtype) for rows, width in VOCABS)


def _batch(t: int) -> list[torch.Tensor]:
    """Token ids for step ``t``: Zipf-like, with repeats, never touching the NEVER rows."""
    g = torch.Generator().manual_seed(1000 + t)
    ids = []
    for k, (rows, _) in enumerate(VOCABS):
        seen = rows - len(NEVER[k])
        weights = 1.0 / torch.arange(1, seen + 1, dtype=torch.float64)
        draw = torch.multinomial(weights, 12, replacement=True, generator=g)
        ids.append(draw[:0] if (k == 1 and t == EMPTY_STEP) else draw)
    return ids


def _loss(model: torch.nn.ModuleList, t: int) -> torch.Tensor:
    a, b = (emb(i) for emb, i in zip(model, _batch(t)))
    # a non-linear loss, so a row drawn twice gets a gradient that is not twice one draw's
    return torch.tanh(a).pow(2).sum() + (b.sum(-1) - 1.0).pow(2).sum() + a.sum() ** 2 / 50


def _train(model, optimizer, steps, start=1, after_step=None):
    for t in range(start, start + steps):
        optimizer.zero_grad()
        _loss(model, t).backward()
        optimizer.step()
        if after_step is not None:
            after_step(optimizer, t)


def _groups(model, second):
    if second is None:
        return list(model.parameters())
    return [{"params": model[0].parameters()}, {"params": model[1].parameters(), **second}]


def _assert_identical(m1, o1, m2, o2):
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
        assert o1.state[p].keys() == o2.state[q].keys()
        for key, value in o1.state[p].items():
            other = o2.state[q][key]
            if torch.is_tensor(value):
                assert torch.equal(value, other), key
            else:
                assert type(value) is type(other) and value == other, key


GRID = [dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        for lr, betas, eps, maximize in itertools.product(
            [1e-2], [(0.9, 0.999), (0.5, 0.8)], [1e-8, 1e-3], [False, True])]


@pytest.mark.parametrize("kwargs, dtype, second", crossed(
    {f"case{i}": kwargs for i, kwargs in enumerate(GRID)},
    {"f64": torch.float64, "f32": torch.float32},
    {"one-group": None, "two-groups": {"lr": 0.05, "betas": (0.8, 0.99)}}))
def test_bit_identical_to_torch(kwargs, dtype, second):
    runs = []
    for cls in (optedu.SparseAdam, torch.optim.SparseAdam):
        model = _model(dtype=dtype)
        optimizer = cls(_groups(model, second), **kwargs)
        _train(model, optimizer, 30)
        runs.append((model, optimizer))
    _assert_identical(*runs[0], *runs[1])


def test_defaults_and_learning_rate_changed_mid_run():
    def halve(optimizer, t):
        if t % 10 == 0:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
    runs = []
    for cls in (optedu.SparseAdam, torch.optim.SparseAdam):
        model = _model()
        optimizer = cls(model.parameters())
        _train(model, optimizer, 30, after_step=halve)
        runs.append((model, optimizer))
    _assert_identical(*runs[0], *runs[1])


def test_only_rows_in_the_gradient_move():
    """The lazy update: rows never drawn keep their value and zero moments; on the step with an
    empty gradient the second table does not move, but its step count advances, as in torch."""
    model = _model()
    start = copy.deepcopy(model)
    optimizer = optedu.SparseAdam(model.parameters(), lr=0.01)
    _train(model, optimizer, EMPTY_STEP - 1)
    before = model[1].weight.detach().clone()
    _train(model, optimizer, 1, start=EMPTY_STEP)
    assert torch.equal(model[1].weight, before)
    assert optimizer.state[model[1].weight]["step"] == EMPTY_STEP
    _train(model, optimizer, 10, start=EMPTY_STEP + 1)
    for k, rows in NEVER.items():
        rows = list(rows)
        weight, state = model[k].weight, optimizer.state[model[k].weight]
        assert torch.equal(weight[rows], start[k].weight[rows])
        assert not state["exp_avg"][rows].any() and not state["exp_avg_sq"][rows].any()
        assert not torch.equal(weight, start[k].weight)  # the drawn rows did move


def test_repeated_rows_are_summed_before_the_update():
    """A row drawn twice with gradients 1 and 2 is one row with gradient 3: worked by hand."""
    param = torch.zeros(3, 1, dtype=torch.float64, requires_grad=True)
    values = torch.tensor([[1.0], [-4.0], [2.0]], dtype=torch.float64)
    param.grad = torch.sparse_coo_tensor([[2, 0, 2]], values, (3, 1), check_invariants=True)
    optedu.SparseAdam([param], lr=0.1, eps=1e-300).step()  # ε > 0, too small to show
    # row 2: g = 3, m = 0.3, v = 0.009; step 0.1·√0.001/0.1 · 0.3/√0.009 = 0.1 (Adam's first
    # step is lr·sign(g)); row 0 likewise moves by +0.1; row 1 has no gradient and stays
    expected = torch.tensor([[0.1], [0.0], [-0.1]], dtype=torch.float64)
    assert torch.allclose(param.detach(), expected, rtol=1e-15, atol=1e-17)


@pytest.mark.parametrize("source, target", [("torch", "optedu"), ("optedu", "torch")])
def test_checkpoint_moves_between_torch_and_optedu(source, target):
    libs = {"torch": torch.optim.SparseAdam, "optedu": optedu.SparseAdam}
    second = {"lr": 0.02}
    model = _model()
    optimizer = libs[source](_groups(model, second), lr=0.01, maximize=True)
    _train(model, optimizer, 8)
    resumed = copy.deepcopy(model)
    resumed_opt = libs[target](_groups(resumed, second), lr=0.01, maximize=True)
    resumed_opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    _train(model, optimizer, 8, start=9)
    _train(resumed, resumed_opt, 8, start=9)
    _assert_identical(model, optimizer, resumed, resumed_opt)


def test_torch_scheduler_drives_it():
    runs = []
    for cls in (optedu.SparseAdam, torch.optim.SparseAdam):
        model = _model()
        optimizer = cls(model.parameters(), lr=0.05)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=12)
        _train(model, optimizer, 12, after_step=lambda o, t: scheduler.step())
        runs.append((model, optimizer))
    _assert_identical(*runs[0], *runs[1])
    assert [g["betas"] for g in runs[0][1].param_groups] == [
        g["betas"] for g in runs[1][1].param_groups]


def test_state_dict_layout_matches_torch():
    dicts = []
    for cls in (optedu.SparseAdam, torch.optim.SparseAdam):
        model = _model()
        optimizer = cls(model.parameters())
        _train(model, optimizer, 2)
        dicts.append(optimizer.state_dict())
    ours, theirs = dicts
    assert ours["state"].keys() == theirs["state"].keys()
    for index, state in ours["state"].items():
        assert {k: type(v) for k, v in state.items()} == {
            k: type(v) for k, v in theirs["state"][index].items()}
    assert ours["param_groups"] == theirs["param_groups"]


def test_signature_is_torchs():
    ours = inspect.signature(optedu.SparseAdam.__init__).parameters.values()
    theirs = inspect.signature(torch.optim.SparseAdam.__init__).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == [
        (p.name, p.kind, p.default) for p in theirs]


def test_dense_gradient_is_refused_with_torchs_error():
    messages = []
    for cls in (optedu.SparseAdam, torch.optim.SparseAdam):
        param = torch.zeros(3, requires_grad=True)
        param.grad = torch.ones(3)
        with pytest.raises(RuntimeError) as raised:
            cls([param]).step()
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert "does not support dense gradients" in messages[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0.0), "Invalid learning rate: 0.0"),
    (dict(lr=-1e-3), "Invalid learning rate: -0.001"),
    (dict(eps=0.0), "Invalid epsilon value: 0.0"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
], ids=["lr-zero", "lr-negative", "eps-zero", "beta1", "beta2"])
def test_bad_hyperparameter_messages_are_torchs(kwargs, message):
    for cls in (optedu.SparseAdam, torch.optim.SparseAdam):
        with pytest.raises(ValueError) as raised:
            cls([torch.zeros(2, requires_grad=True)], **kwargs)
        assert str(raised.value) == message, cls


def test_sparse_and_complex_parameters_are_refused_as_in_torch():
    for param in (torch.zeros(3).to_sparse(), torch.zeros(3, dtype=torch.complex64)):
        messages = []
        for cls in (optedu.SparseAdam, torch.optim.SparseAdam):
            with pytest.raises(ValueError) as raised:
                cls([torch.zeros(2), param])
            messages.append(str(raised.value))
        assert messages[0] == messages[1]
