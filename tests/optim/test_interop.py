"""optedu in torch's ecosystem: checkpoints both ways, torch schedulers, closures, grad None."""

from __future__ import annotations

import copy
import io

import pytest
import torch

import optedu
from optimizers import MATRICES_ONLY, SETTING_IDS, SETTINGS, crossed



@pytest.fixture(autouse=True)
def float64_default():
    """These tests build their models in float64; the default is restored after each, so that
    other test files in the same process keep torch's float32 default (setting it at import, as
    this file once did, changed it for every test collected with it)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _model(seed: int = 0, cls: type | None = None) -> torch.nn.Module:
    """A small MLP; without biases for an optimizer ``cls`` that takes only matrices (Muon)."""
    torch.manual_seed(seed)
    bias = cls not in MATRICES_ONLY
    return torch.nn.Sequential(torch.nn.Linear(4, 8, bias=bias), torch.nn.Tanh(),
                               torch.nn.Linear(8, 1, bias=bias))


def _data(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)


def _train(model, optimizer, steps, scheduler=None):
    x, y = _data()
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def _groups(model):
    first, second = model[0], model[2]
    return [{"params": first.parameters()}, {"params": second.parameters(), "lr": 0.02}]


@pytest.mark.parametrize("ours, theirs, kwargs, source, target", crossed(
    dict(zip(SETTING_IDS, SETTINGS)),
    {"torch-optedu": ("torch", "optedu"), "optedu-torch": ("optedu", "torch")}))
def test_checkpoint_moves_between_torch_and_optedu(ours, theirs, kwargs, source, target):
    """Train 10 steps in one library, checkpoint, resume in the other: bit-identical to never
    switching."""
    libs = {"torch": theirs, "optedu": ours}
    model = _model(cls=ours)
    opt = libs[source](_groups(model), **kwargs)
    _train(model, opt, 10)

    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)

    resumed = _model(seed=99, cls=ours)
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt = libs[target](_groups(resumed), **kwargs)
    resumed_opt.load_state_dict(checkpoint["optimizer"])

    _train(model, opt, 10)           # the run that never switched
    _train(resumed, resumed_opt, 10)  # the run that switched library mid-way
    assert _max_diff(model, resumed) == 0.0
    for p, q in zip(model.parameters(), resumed.parameters()):
        assert opt.state[p].keys() == resumed_opt.state[q].keys()
        for key, value in opt.state[p].items():
            assert torch.equal(value, resumed_opt.state[q][key]), key


@pytest.mark.parametrize("ours, theirs, kwargs", SETTINGS, ids=SETTING_IDS)
def test_state_dict_round_trip_within_optedu(ours, theirs, kwargs):
    model = _model(cls=ours)
    opt = ours(_groups(model), **kwargs)
    _train(model, opt, 5)
    twin = copy.deepcopy(model)
    twin_opt = ours(_groups(twin), **kwargs)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # state_dict() holds references
    _train(model, opt, 5)
    _train(twin, twin_opt, 5)
    assert _max_diff(model, twin) == 0.0


def test_state_dict_layout_matches_torch():
    """Same keys, same group entries for every argument optedu accepts, same step dtype."""
    for ours_cls, theirs_cls, kwargs in SETTINGS:
        m1, m2 = _model(cls=ours_cls), _model(cls=ours_cls)
        ours = ours_cls(_groups(m1), **kwargs)
        theirs = theirs_cls(_groups(m2), **kwargs)
        _train(m1, ours, 2)
        _train(m2, theirs, 2)
        a, b = ours.state_dict(), theirs.state_dict()
        assert a["state"].keys() == b["state"].keys()
        for index in a["state"]:
            assert a["state"][index].keys() == b["state"][index].keys()
            for key in a["state"][index]:
                assert a["state"][index][key].dtype == b["state"][index][key].dtype, (ours, key)
        for ga, gb in zip(a["param_groups"], b["param_groups"]):
            assert {k: gb[k] for k in ga} == ga


SCHEDULERS = [
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=1e-4),
    lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=20),
    lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
]


@pytest.mark.parametrize("ours, theirs, kwargs, make_scheduler", crossed(
    dict(zip(SETTING_IDS, SETTINGS)),
    dict(zip(["step", "cosine", "onecycle", "linear"], SCHEDULERS))))
def test_torch_schedulers_drive_optedu(make_scheduler, ours, theirs, kwargs):
    """Learning rates (and OneCycle's momentum/betas cycling) and parameters match torch's run,
    bit for bit."""
    probe = theirs([torch.zeros(1, 1, requires_grad=True)], **kwargs)  # Muon: a matrix
    if make_scheduler is SCHEDULERS[2] and not {"momentum", "betas"} & set(probe.defaults):
        pytest.skip("OneCycleLR cycles momentum or betas, which this optimizer has not")
    runs = []
    for cls in (ours, theirs):
        model = _model(cls=cls)
        opt = cls(_groups(model), **kwargs)
        scheduler = make_scheduler(opt)
        lrs = []
        for _ in range(20):
            _train(model, opt, 1, scheduler)
            lrs.append([(g["lr"], g.get("momentum"), g.get("betas")) for g in opt.param_groups])
        runs.append((model, lrs))
    (m1, lrs1), (m2, lrs2) = runs
    assert lrs1 == lrs2
    assert _max_diff(m1, m2) == 0.0


def test_reduce_lr_on_plateau_drives_optedu():
    """ReduceLROnPlateau (which only reads and writes ``lr``) gives torch's sequence on optedu."""
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5]
    sequences = []
    for lib in (optedu, torch.optim):
        opt = lib.SGD(_model().parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5,
                                                               cooldown=1)
        lrs = []
        for loss in losses:
            scheduler.step(loss)
            lrs.append(opt.param_groups[0]["lr"])
        sequences.append(lrs)
    assert sequences[0] == sequences[1]
    assert min(sequences[0]) < 0.1  # the plateau did reduce the rate


def test_closure_is_called_and_its_loss_returned():
    model = _model()
    x, y = _data()
    opt = optedu.Adam(model.parameters(), lr=0.01)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert calls == [1] and torch.is_tensor(loss) and loss.requires_grad


@pytest.mark.parametrize("ours, theirs, kwargs", SETTINGS, ids=SETTING_IDS)
def test_parameters_without_grad_are_left_alone(ours, theirs, kwargs):
    """Both libraries step a parameter with a gradient beside one without: the one without
    stays put and gets the same state as in torch (none for SGD; Adagrad's eager ``sum`` and
    ``step``), and the one with a gradient moves identically."""
    runs = []
    shape = (3, 2) if ours in MATRICES_ONLY else (3,)
    for cls in (ours, theirs):
        used = torch.ones(shape, requires_grad=True)
        unused = torch.ones(shape, requires_grad=True)
        opt = cls([used, unused], **kwargs)
        for _ in range(2):
            used.grad = torch.ones(shape)
            opt.step()
        assert torch.equal(unused, torch.ones(shape)) and not torch.equal(used, torch.ones(shape))
        runs.append((used, {k: v.clone() for k, v in opt.state.get(unused, {}).items()}))
    (used_a, state_a), (used_b, state_b) = runs
    assert torch.equal(used_a, used_b)
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_zero_grad_sets_grads_to_none():
    model = _model()
    opt = optedu.SGD(model.parameters(), lr=0.1)
    _train(model, opt, 1)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_step_hooks_fire():
    p = torch.ones(2, requires_grad=True)
    opt = optedu.SGD([p], lr=0.1)
    seen = []
    opt.register_step_post_hook(lambda optimizer, args, kwargs: seen.append(optimizer))
    p.grad = torch.ones(2)
    opt.step()
    assert seen == [opt]


def test_add_param_group_gets_defaults_and_state():
    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    opt = optedu.Adagrad([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.2})
    assert opt.param_groups[1]["lr_decay"] == 0 and opt.param_groups[1]["lr"] == 0.2
    b.grad = torch.ones(2)
    opt.step()
    assert opt.state[b]["step"].item() == 1.0


def test_optedu_has_every_torch_optimizer():
    """All fifteen optimizer classes of torch.optim 2.13 have an optedu twin of the same name."""
    names = {name for name, value in vars(torch.optim).items()
             if isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
             and value is not torch.optim.Optimizer}
    assert len(names) == 15
    assert {name for name in names if not hasattr(optedu, name)} == set()
