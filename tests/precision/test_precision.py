"""optedu.precision.loss_scaling and optedu.precision.mixed against independent references: torch.amp.GradScaler
(step for step, bit for bit), torch-optimi's Kahan summation, pytorch_optimizer's stochastic
rounding, and float64 ground truth."""

import functools
import importlib
import math

import optimi
import pytest
import torch
from optimizers import FULL
from pytorch_optimizer import copy_stochastic

import optedu
from optedu.precision.loss_scaling import LossScaler, unscale_grads_, update_scale_
from optedu.precision.mixed import (LowPrecisionOptimizer, MasterWeights, bf16_stall, kahan_add_,
                              master_copy, stochastic_round_to_bf16)

BF16 = torch.bfloat16
OPTIMI_SGD = importlib.import_module("optimi.sgd")  # the module (optimi.sgd is a function)


@pytest.fixture(autouse=True)
def _float32_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(previous)


# --- dynamic loss scaling: the rules against torch's kernels ---------------------------------

@pytest.mark.parametrize(("init", "growth", "backoff", "interval"), [
    (2.0**16, 2.0, 0.5, 3), (3.0e4, 1.7, 0.3, 2), (3.0e38, 2.0, 0.5, 1), (1.0, 1.1, 0.9, 4)])
def test_update_scale_equals_torch_kernel(init, growth, backoff, interval):
    """update_scale_ against torch._amp_update_scale_ over 60 random overflow flags: the same
    float32 scale (rounded products, growth to inf refused) and the same growth tracker."""
    gen = torch.Generator().manual_seed(0)
    flags = (torch.rand(60, generator=gen) < 0.3).tolist()
    ours = (torch.tensor(init, dtype=torch.float32), torch.tensor(0, dtype=torch.int32))
    theirs = (torch.tensor(init, dtype=torch.float32), torch.tensor(0, dtype=torch.int32))
    for flag in flags:
        update_scale_(*ours, flag, growth, backoff, interval)
        torch._amp_update_scale_(*theirs, torch.tensor(float(flag)), growth, backoff, interval)
        assert ours[0].item() == theirs[0].item()
        assert ours[1].item() == theirs[1].item()
    assert math.isfinite(ours[0].item())


def test_unscale_grads_flags_and_multiplies_like_torch():
    """The same products and the same flag as torch._amp_foreach_non_finite_check_and_unscale_,
    for finite gradients and for a gradient holding inf (all gradients are still multiplied)."""
    gen = torch.Generator().manual_seed(0)
    inv = torch.tensor(2.0**-16).double().reciprocal().float().reciprocal()  # 65536 → 1/65536
    inv = torch.tensor(1 / 3.0e4, dtype=torch.float32)
    for poison in (False, True):
        grads = [torch.randn(5, generator=gen) * 1e4, torch.randn(3, 2, generator=gen)]
        if poison:
            grads[1][0, 1] = float("inf")
        ref = [g.clone() for g in grads]
        found = torch.zeros(())
        torch._amp_foreach_non_finite_check_and_unscale_(ref, found, inv)
        assert unscale_grads_(grads, inv) == bool(found.item()) == poison
        for g, r in zip(grads, ref):
            assert torch.equal(g, r)


# --- dynamic loss scaling: a training run beside GradScaler ---------------------------------

def _net(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 4)).to(dtype)


def _batches(steps):
    gen = torch.Generator().manual_seed(1)
    return [(3 * torch.randn(32, 8, generator=gen), torch.randn(32, 4, generator=gen))
            for _ in range(steps)]


def _found_inf(scaler, optimizer):
    if isinstance(scaler, LossScaler):
        return scaler._found_inf[id(optimizer)]
    state = scaler._per_optimizer_states[id(optimizer)]
    return bool(sum(v.item() for v in state["found_inf_per_device"].values()))


def _autocast_run(scaler, make_optimizer, steps, **kwargs):
    """fp32 weights, fp16 forward and backward (CPU autocast): with a scale of 2^16 the fp16
    gradients overflow; the scaler backs off until they fit, then grows every interval."""
    model = _net()
    opt = make_optimizer(model.parameters())
    scales, skipped, params = [], [], []
    for x, y in _batches(steps):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            out = model(x)
        loss = (out.float() - y).pow(2).sum()
        scaler.scale(loss).backward()
        scaler.step(opt)
        skipped.append(_found_inf(scaler, opt))
        scaler.update()
        scales.append(scaler.get_scale())
        params.append([p.detach().clone() for p in model.parameters()])
    return scales, skipped, params


def _master_run(scaler, make_optimizer, steps):
    """fp16 weights and gradients, fp32 master weights: the scaled fp16 gradients overflow at
    2^16; the master gradients (fp32) are unscaled, the step skipped or taken on the masters."""
    model = _net(torch.float16)
    opt = MasterWeights(model.parameters(), make_optimizer)
    scales, skipped, params = [], [], []
    for x, y in _batches(steps):
        opt.zero_grad()
        loss = (model(x.half()).float() - y).pow(2).sum()
        scaler.scale(loss).backward()
        opt.step(scaler)
        skipped.append(_found_inf(scaler, opt.optimizer))
        scaler.update()
        scales.append(scaler.get_scale())
        params.append([p.detach().clone() for p in model.parameters()]
                      + [q.clone() for q in opt.master])
    return scales, skipped, params


RUN_CASES = [
    ("autocast", lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9), dict(growth_interval=3)),
    ("master", lambda p: optedu.AdamW(p, lr=1e-3), dict(growth_interval=4)),
]
if FULL:
    RUN_CASES += [
        ("autocast", lambda p: optedu.Adam(p, lr=1e-3),
         dict(init_scale=3.0e4, growth_factor=1.7, backoff_factor=0.3, growth_interval=5)),
        ("master", lambda p: torch.optim.SGD(p, lr=1e-3),
         dict(growth_factor=4.0, backoff_factor=0.25, growth_interval=2)),
    ]


@pytest.mark.parametrize(("kind", "make", "kwargs"), RUN_CASES)
def test_loss_scaler_equals_grad_scaler(kind, make, kwargs):
    """Step for step beside torch.amp.GradScaler("cpu"): the same float32 scales, the same
    skipped steps, bit-identical parameters (and master weights); the run overflows at the
    initial scale, backs off, recovers, and overflows again after growing."""
    steps = 200 if FULL else 12
    run = _autocast_run if kind == "autocast" else _master_run
    our_scaler, their_scaler = LossScaler(**kwargs), torch.amp.GradScaler("cpu", **kwargs)
    ours = run(our_scaler, make, steps)
    theirs = run(their_scaler, make, steps)
    assert our_scaler.state_dict() == their_scaler.state_dict()
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    for a, b in zip(ours[2], theirs[2]):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    scales, skipped = ours[0], ours[1]
    assert skipped[0] and not all(skipped)          # overflow at the start, then clean steps
    assert any(later > earlier for earlier, later in zip(scales, scales[1:]))   # it grew
    first_clean = skipped.index(False)
    assert any(skipped[first_clean:])               # and overflowed again after growing


def test_loss_scaler_state_dict_moves_to_and_from_grad_scaler():
    """GradScaler's five entries, loaded into a LossScaler and back, unchanged; a run's
    state_dict equals GradScaler's after the same run (the parity test's last step)."""
    saved = {"scale": 1234.5, "growth_factor": 3.0, "backoff_factor": 0.25,
             "growth_interval": 7, "_growth_tracker": 5}
    theirs = torch.amp.GradScaler("cpu")
    theirs.scale(torch.ones(()))
    theirs.load_state_dict(saved)
    ours = LossScaler()
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict() == theirs.state_dict() == saved
    back = torch.amp.GradScaler("cpu")
    back.scale(torch.ones(()))
    back.load_state_dict(ours.state_dict())
    assert back.state_dict() == saved


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(init_scale=0.0), "Invalid init_scale value: 0.0"),
    (dict(growth_factor=1.0), "Invalid growth_factor value: 1.0"),
    (dict(backoff_factor=1.0), "Invalid backoff_factor value: 1.0"),
    (dict(growth_interval=0), "Invalid growth_interval value: 0"),
])
def test_loss_scaler_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossScaler(**kwargs)


def test_loss_scaler_refuses_misuse_as_grad_scaler_does():
    w = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = LossScaler()
    scaler.scale(w.sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)
    scaler.update()
    with pytest.raises(RuntimeError, match="No inf checks"):
        scaler.update()
    half = torch.zeros(3, dtype=torch.float16, requires_grad=True)
    half.grad = torch.ones(3, dtype=torch.float16)
    with pytest.raises(ValueError, match="FP16 gradients"):
        scaler.unscale_(torch.optim.SGD([half], lr=0.1))


# --- fp32 master weights ----------------------------------------------------------------------

def test_master_weights_equal_an_fp32_optimizer_fed_upcast_gradients():
    """bf16 model, fp32 masters: after each step the masters equal torch.optim.AdamW run on
    fp32 tensors given the bf16 gradients cast up, bit for bit, and the model weights are the
    masters rounded to bf16; the masters then move where the bf16 weights alone would not."""
    model = _net(BF16)
    opt = MasterWeights(model.parameters(), lambda p: optedu.AdamW(p, lr=1e-4))
    ref = master_copy(model.parameters())
    ref_opt = torch.optim.AdamW(ref, lr=1e-4)
    for x, y in _batches(3):
        opt.zero_grad()
        (model(x.to(BF16)).float() - y).pow(2).mean().backward()
        for r, p in zip(ref, model.parameters()):
            r.grad = p.grad.float()
        opt.step()
        ref_opt.step()
        for p, q, r in zip(model.parameters(), opt.master, ref):
            assert torch.equal(q, r)
            assert torch.equal(p, r.to(BF16))
    moved = [(q - p.float()).abs().max().item() for p, q in zip(model.parameters(), opt.master)]
    assert max(moved) > 0   # the masters hold what bf16 cannot


def test_master_weights_state_dict_round_trip():
    model = _net(BF16)
    opt = MasterWeights(model.parameters(), lambda p: optedu.Adam(p, lr=1e-3))
    x, y = _batches(1)[0]
    (model(x.to(BF16)).float() - y).pow(2).mean().backward()
    opt.step()
    saved = opt.state_dict()
    other = MasterWeights(_net(BF16).parameters(), lambda p: optedu.Adam(p, lr=1e-3))
    other.load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(other.master, opt.master))
    assert all(torch.equal(a, b) for a, b in zip(other.params, opt.params))


def test_master_weights_rejects_an_empty_model():
    with pytest.raises(TypeError, match="non-empty iterable of tensors"):
        MasterWeights([], lambda p: optedu.SGD(p, lr=0.1))


# --- Kahan summation --------------------------------------------------------------------------

def test_kahan_add_equals_torch_optimi_kernel():
    """kahan_add_ beside torch-optimi's SGD kernel with kahan_sum (bf16 weights, bf16
    gradients, no momentum): bit-identical weights and compensations over 100 steps."""
    gen = torch.Generator().manual_seed(0)
    w = (1 + torch.rand(64, generator=gen)).to(BF16)
    ours_w, ours_c = w.clone(), torch.zeros_like(w)
    ref_w, ref_c = w.clone(), torch.zeros_like(w)
    for _ in range(100):
        g = torch.randn(64, generator=gen).to(BF16)
        kahan_add_(ours_w, g, ours_c, alpha=-1e-3)
        OPTIMI_SGD._single_param_sgd(ref_w, g.clone(), None, ref_c, lr=1e-3, momentum=0.0,
                                     weight_decay=0.0, dampening=False, decouple_wd=False,
                                     kahan_sum=True)
        assert torch.equal(ours_w, ref_w) and torch.equal(ours_c, ref_c)
    assert not torch.equal(ours_w, w)


def test_kahan_sum_recovers_what_rounding_drops():
    """Adding 500 increments of 1e-3 to 1.0 in bf16: plain addition never moves (each is under
    half an ulp, 2^-8); Kahan's weight is the exact sum rounded to bf16."""
    plain, w, c = torch.ones(1, dtype=BF16), torch.ones(1, dtype=BF16), torch.zeros(1, dtype=BF16)
    step = torch.full((1,), 1e-3, dtype=BF16)
    for _ in range(500):
        plain.add_(step)
        kahan_add_(w, step, c)
    exact = 1.0 + 500 * step.double().item()
    assert plain.item() == 1.0
    assert w.item() == torch.tensor(exact).to(BF16).item() == 1.5


# --- stochastic rounding ----------------------------------------------------------------------

def test_stochastic_rounding_equals_pytorch_optimizer_bit_for_bit():
    """Same algorithm, same random stream (torch's default generator, seeded): the same bits as
    pytorch_optimizer 4.1.0's copy_stochastic."""
    x = torch.randn(4096, generator=torch.Generator().manual_seed(0)) * 10
    torch.manual_seed(7)
    ours = stochastic_round_to_bf16(x)
    torch.manual_seed(7)
    theirs = torch.empty_like(x, dtype=BF16)
    copy_stochastic(theirs, x)
    assert torch.equal(ours.view(torch.int16), theirs.view(torch.int16))


def test_stochastic_rounding_is_unbiased():
    """E[round(x)] = x: for values 0.1, 0.5 and 0.9 of the way across a gap (positive and
    negative), 20000 seeded draws each land on the two neighbours only, with a mean within
    5 standard errors of x, and a rounding-to-nearest bias 10 or more standard errors away."""
    gen = torch.Generator().manual_seed(0)
    n = 20000
    for base in (1.0, -3.0, 2.0**-20):
        ulp = 2.0 ** (math.floor(math.log2(abs(base))) - 7)   # bfloat16: 8 significant bits
        for frac in (0.1, 0.5, 0.9):
            x = torch.full((n,), base + math.copysign(frac * ulp, base), dtype=torch.float32)
            r = stochastic_round_to_bf16(x, gen).double()
            low, high = sorted((base, base + math.copysign(ulp, base)))
            assert set(r.unique().tolist()) <= {low, high}
            se = ulp * math.sqrt(frac * (1 - frac) / n)
            assert abs(r.mean().item() - x[0].item()) < 5 * se
            nearest = x[:1].to(BF16).double().item()
            assert abs(nearest - x[0].item()) > 10 * se or frac == 0.5


def test_stochastic_rounding_keeps_bf16_values_and_zero():
    values = torch.tensor([0.0, -0.0, 1.0, -2.5, 3.0e38, float("inf")]).to(BF16).float()
    out = stochastic_round_to_bf16(values, torch.Generator().manual_seed(0))
    assert torch.equal(out.float(), values)


# --- 16-bit updates inside an optedu optimizer -----------------------------------------------

def _quadratic_run(make, steps=300):
    """SGD on 0.5 a (w - w*)^2 from w in [1.5, 1.9], gradients taken at the bf16 weights."""
    gen = torch.Generator().manual_seed(3)
    a = 0.5 + torch.rand(32, generator=gen)
    w0 = 1.5 + 0.4 * torch.rand(32, generator=gen)
    target = w0 - 0.4
    w = w0.to(BF16)
    opt = make(w)
    for _ in range(steps):
        w.grad = (a * (w.float() - target)).to(BF16)
        opt.step()
    return w, opt


@pytest.mark.full  # three 300-step runs
def test_low_precision_kahan_against_torch_optimi_sgd():
    """optedu SGD on bf16 weights with Kahan rounding beside torch-optimi 0.3.3's SGD with
    kahan_sum, 300 steps: bit-identical weights on this run (the step is formed in fp32 as
    round(w - lr g) - w here, as -lr g there: the two agree unless a bf16 rounding falls
    between them), while plain bf16 SGD has not moved at all."""
    ours, _ = _quadratic_run(lambda w: LowPrecisionOptimizer(optedu.SGD([w], lr=1e-3)))
    theirs, _ = _quadratic_run(lambda w: optimi.SGD([w], lr=1e-3, kahan_sum=True,
                                                    foreach=False, triton=False))
    plain, _ = _quadratic_run(lambda w: LowPrecisionOptimizer(optedu.SGD([w], lr=1e-3),
                                                              "nearest"))
    ulp = 2.0**-7
    assert torch.equal(ours, theirs)
    start = _quadratic_run(lambda w: LowPrecisionOptimizer(optedu.SGD([w], lr=1e-3)), 0)[0]
    assert torch.equal(plain, start)
    assert (ours.double() - start.double()).abs().min().item() >= 4 * ulp


def test_low_precision_state_and_compensation():
    """The rule's state is fp32; the Kahan buffer is bf16, stored as ``kahan_comp`` (2 bytes per
    parameter, counted by optedu.precision.memory.state_bytes)."""
    _, opt = _quadratic_run(lambda w: LowPrecisionOptimizer(optedu.Adam([w], lr=1e-3)), 2)
    state = next(iter(opt.optimizer.state.values()))
    assert state["exp_avg"].dtype == torch.float32
    assert state["kahan_comp"].dtype == BF16
    sizes = optedu.precision.memory.state_bytes(opt.optimizer)
    assert sizes["kahan_comp"] == 32 * 2 and sizes["exp_avg"] == 32 * 4


def test_low_precision_rejects_other_optimizers_and_roundings():
    w = torch.zeros(3, dtype=BF16)
    with pytest.raises(TypeError, match="LBFGS is not an optedu optimizer"):
        LowPrecisionOptimizer(optedu.LBFGS([w]))
    with pytest.raises(TypeError, match="SGD is not an optedu optimizer"):
        LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.1))
    with pytest.raises(ValueError, match="Invalid rounding value: 'up'"):
        LowPrecisionOptimizer(optedu.SGD([w], lr=0.1), "up")


# --- the measured demonstration ---------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _stall(steps, dim, lr):
    return bf16_stall(steps=steps, dim=dim, lr=lr)


def test_bf16_stall_plain_stalls_and_kahan_tracks_float64():
    """Plain bf16 weights never move (every update is under half an ulp), so their error is the
    whole distance float64 travels; Kahan stays within one bf16 ulp (RMS) of float64 at every
    step; float32 within 1e-5."""
    steps, dim, lr = (1000, 256, 1e-3) if FULL else (30, 4, 4e-3)
    runs = _stall(steps, dim, lr)
    truth, plain = runs["float64"], runs["nearest"]
    assert truth["loss"][-1] < truth["loss"][0]
    assert torch.equal(plain["loss"], plain["loss"][0].expand_as(plain["loss"]))  # stalled
    assert plain["rms_error"][-1] > 0.02
    assert abs(plain["mean_error"][-1]) > 0.8 * plain["rms_error"][-1]   # all of it is bias
    assert runs["float32"]["rms_error"].max() < 1e-5
    assert runs["kahan"]["rms_error"].max() < 2.0**-7
    assert runs["kahan"]["rms_error"][-1] < plain["rms_error"][-1] / 10


@pytest.mark.full  # 1000 steps
def test_bf16_stall_stochastic_rounding_is_unbiased():
    """Stochastic rounding over 1000 steps: RMS error under a fifth of plain bf16's, and its
    mean error (the bias) within 4 standard errors of 0, where plain bf16's is all bias."""
    dim = 256
    runs = _stall(1000, dim, 1e-3)
    plain, stochastic = runs["nearest"], runs["stochastic"]
    assert stochastic["rms_error"][-1] < plain["rms_error"][-1] / 5
    assert abs(stochastic["mean_error"][-1]) < 4 * stochastic["rms_error"][-1] / math.sqrt(dim)


def test_stochastic_rounding_needs_bf16_weights():
    w = torch.zeros(3, dtype=torch.float16)
    w.grad = torch.ones(3, dtype=torch.float16)
    with pytest.raises(TypeError, match="writes bfloat16, not torch.float16"):
        LowPrecisionOptimizer(optedu.SGD([w], lr=0.1), "stochastic").step()


def test_loss_scaler_two_optimizers_and_a_set_scale_as_grad_scaler():
    """Two optimizers under one scaler: one overflows, so its step alone is skipped and the
    scale backs off for both; update(new_scale) sets the scale. As GradScaler, bit for bit."""
    def run(scaler):
        a = torch.ones(3, requires_grad=True)
        b = torch.ones(2, requires_grad=True)
        opt_a, opt_b = torch.optim.SGD([a], lr=0.1), optedu.SGD([b], lr=0.1)
        scales = []
        for big in (1e3, 1.0, 1.0):   # 1e3 * 2^16 overflows in float16
            loss = (a.half() * big).sum().float() + (b * b).sum()
            scaler.scale(loss).backward()
            scaler.step(opt_a)
            scaler.step(opt_b)
            scaler.update()
            scales.append(scaler.get_scale())
            opt_a.zero_grad()
            opt_b.zero_grad()
        scaler.update(new_scale=1024.0)
        return scales + [scaler.get_scale()], a.detach(), b.detach()

    ours, theirs = run(LossScaler()), run(torch.amp.GradScaler("cpu"))
    assert ours[0] == theirs[0] == [32768.0, 32768.0, 32768.0, 1024.0]
    assert torch.equal(ours[1], theirs[1]) and torch.equal(ours[2], theirs[2])
    two_steps = torch.ones(3).sub_(0.1).sub_(0.1)                # a: its first step skipped
    assert torch.equal(ours[1], two_steps)


def test_low_precision_on_fp32_weights_is_the_plain_optimizer():
    """On fp32 weights the working copy is a copy (not the weight itself) and the Kahan
    write-back adds Δ = θ - w back in fp32: on this run the same weights as optedu.AdamW run
    directly, bit for bit."""
    gen = torch.Generator().manual_seed(0)
    w0, grads = torch.randn(5, generator=gen), torch.randn(4, 5, generator=gen)
    ours, ref = w0.clone(), w0.clone()
    opt = LowPrecisionOptimizer(optedu.AdamW([ours], lr=0.1), "kahan")
    ref_opt = optedu.AdamW([ref], lr=0.1)
    for g in grads:
        ours.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    assert torch.equal(ours, ref)
    assert not torch.equal(ours, w0)
