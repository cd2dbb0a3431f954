"""optedu's Scion against pytorch_optimizer.SCION 4.1.0: bit for bit against its matrix-by-matrix
path (foreach=False) over the options and every norm, float32 and float64, four groups; against
its default path (foreach on CPU) within a measured bound, and bit for bit once its one departure
is undone: ``torch._foreach_mul_`` rounds the spectral oracles' factor √(d_out/d_in) to bfloat16
before it multiplies the bfloat16 polar factor (``x *= s`` multiplies in float32, then rounds);
then the paper's equations worked by hand for two steps, the spectral oracle against the SVD's
polar factor, and errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from pytorch_optimizer import SCION as Reference

from optedu.optim.scion import LMONorm, Scion, direction, OPTIONS
from optimizers import FULL, _pairwise_cover

STEPS = 10
SHAPES = [(6, 4), (4,), (4, 6), (6, 4), (3, 2, 2, 2), (5, 3)]
# matrix norms of the first group and the head's (the last tensor), with their options
HIDDEN = [(LMONorm.SPECTRAL, {}), (LMONorm.SPECTRAL, dict(max_scale=True, normalize=False,
                                                           num_steps=3)),
          (LMONorm.NONE, {}), (LMONorm.AUTO, {})]
HEAD = [(LMONorm.SIGN, {}), (LMONorm.SIGN, dict(normalize=False)),
        (LMONorm.COL, dict(normalized=True, transpose=True)), (LMONorm.COL, {}),
        (LMONorm.ROW, {}), (LMONorm.ROW, dict(normalized=False, transpose=True))]


def _run(cls, dtype, kwargs, hidden, head, steps=STEPS, **extra):
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]
    groups = [dict(params=[ps[0], ps[2], ps[3]], norm_type=hidden[0], norm_kwargs=hidden[1]),
              dict(params=[ps[1]], norm_type=LMONorm.BIAS, scale=3.0, lr=0.05),
              dict(params=[ps[4]], norm_type=LMONorm.AUTO, momentum=0.5),
              dict(params=[ps[5]], norm_type=head[0], norm_kwargs=head[1], scale=10.0)]
    opt = cls(groups, **kwargs, **extra)
    for t in range(steps):
        gen = torch.Generator().manual_seed(100 + t)
        for p in ps:
            p.grad = torch.randn(p.shape, generator=gen, dtype=dtype)
        opt.step()
    return ps, opt


OPTIONS_GRID = dict(lr=[0.1, 0.01], momentum=[0.1, 1.0], constraint=[False, True],
                    weight_decay=[0.0, 0.1], weight_decouple=[True, False],
                    maximize=[False, True], hidden=HIDDEN, head=HEAD)
_INDICES = list(itertools.product(*(range(len(v)) for v in OPTIONS_GRID.values())))
_COVER = _pairwise_cover(_INDICES)
CASES = [{key: OPTIONS_GRID[key][i] for key, i in zip(OPTIONS_GRID, indices)}
         for indices in (_INDICES if FULL else _COVER)]
COVER = [{key: OPTIONS_GRID[key][i] for key, i in zip(OPTIONS_GRID, indices)}
         for indices in _COVER]
# the reference's default path against ours, scaled to lr 0.1: at most 3.5e-3 (float32) and
# 3.9e-3 (float64) over the 26 cases of the pairwise cover after 10 steps. Why: its factor
# √(d_out/d_in), rounded to bfloat16 first, moves an entry u of a spectral step by at most one
# bfloat16 unit in the last place (2⁻⁷|u| or less); d is the same in both runs (it averages
# the gradients), so the gaps add, one per step, and do not compound: at most
# 10 × 0.1 × 2⁻⁷ max|u| = 7.8e-3 max|u|, max|u| up to 1.16 on these runs (9.1e-3), and the
# ±1-unit gaps partly cancel. Measured on the cover only; the full grid (1,536 cases) reaches
# 4.9e-3 (float32) and 5.7e-3 (float64) with the coupled decay, where d sees θ and the gaps
# feed back, and 6.8e-3 and 7.8e-3 with normalize=False, whose factor is √d_out = 2.4.
FOREACH_BOUND = 5e-3


def _id(case):
    return ",".join(f"{k}={v[0].name + str(v[1] or '') if isinstance(v, tuple) else v}"
                    for k, v in case.items())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_bit_identical_to_its_per_matrix_path(case, dtype):
    kwargs = {k: v for k, v in case.items() if k not in ("hidden", "head")}
    ours, opt = _run(Scion, dtype, kwargs, case["hidden"], case["head"])
    theirs, ref = _run(Reference, dtype, kwargs, case["hidden"], case["head"], foreach=False)
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q), (p - q).abs().max()
        assert list(opt.state[p]) == list(ref.state[q]) == ["d"]
        assert torch.equal(opt.state[p]["d"], ref.state[q]["d"])
    assert [g["step"] for g in opt.param_groups] == [g["step"] for g in ref.param_groups]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_its_default_path_within_the_measured_bound(dtype):
    worst = 0.0
    for case in COVER:
        kwargs = {k: v for k, v in case.items() if k not in ("hidden", "head")}
        ours, _ = _run(Scion, dtype, kwargs, case["hidden"], case["head"])
        batched, _ = _run(Reference, dtype, kwargs, case["hidden"], case["head"])
        worst = max(worst, max((p - q).abs().max().item()
                               for p, q in zip(ours, batched)) * 0.1 / case["lr"])
    assert 0 < worst <= FOREACH_BOUND, worst


def _mul_tensor_by_tensor(tensors, scalars):
    """``torch._foreach_mul_`` as a loop of ``mul_``: the scalar multiplies in float32."""
    for tensor, scalar in zip(tensors, scalars if isinstance(scalars, (list, tuple))
                              else [scalars] * len(tensors)):
        tensor.mul_(scalar)


@pytest.mark.full   # 52 runs
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_its_default_path_departs_only_by_its_bfloat16_factor(dtype, monkeypatch):
    """The bound's cause, isolated: with ``torch._foreach_mul_`` made a loop of ``mul_``, the
    reference's default path (same-shape matrices stacked into one batched Newton–Schulz
    iteration) equals optedu bit for bit over the cover: the stacking itself changes no bit."""
    for case in COVER:
        kwargs = {k: v for k, v in case.items() if k not in ("hidden", "head")}
        ours, _ = _run(Scion, dtype, kwargs, case["hidden"], case["head"])
        with monkeypatch.context() as patch:
            patch.setattr(torch, "_foreach_mul_", _mul_tensor_by_tensor)
            batched, _ = _run(Reference, dtype, kwargs, case["hidden"], case["head"])
        assert all(torch.equal(p, q) for p, q in zip(ours, batched)), _id(case)


def test_reference_paths_repeat_bit_for_bit():
    """On CPU both of the reference's paths give the same bits run after run: what changes a
    matrix's bits is the path, not the run."""
    for extra in (dict(foreach=False), {}):
        a, _ = _run(Reference, torch.float32, dict(lr=0.1), *HIDDEN[0:1], HEAD[0], **extra)
        b, _ = _run(Reference, torch.float32, dict(lr=0.1), *HIDDEN[0:1], HEAD[0], **extra)
        assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_defaults_and_signature_are_the_references():
    import inspect
    ours = inspect.signature(Scion.__init__).parameters
    theirs = {k: v for k, v in inspect.signature(Reference.__init__).parameters.items()
              if k != "kwargs"}
    assert sorted((k, v.default) for k, v in ours.items()) == \
        sorted((k, v.default) for k, v in theirs.items())
    p = [torch.zeros(2, 2, requires_grad=True)]
    assert Scion(p).defaults == Reference(p).defaults


@pytest.mark.parametrize("constraint", [False, True], ids=["uSCG", "SCG"])
def test_two_steps_by_hand(constraint):
    """Pethick et al. (2025), Algorithms 1 and 2, with the sign oracle of a 2 x 2 head
    (lmo(d) = -sign(d)/d_in): γ 0.1, α 0.5, ρ 2, θ_0 all ones.
    d_1 = [[.5, -1], [.25, 0]], ρ sign/2 = [[1, -1], [1, 0]];
    d_2 = .5 d_1 + .5 g_2 = [[-.75, -1], [.125, .5]], ρ sign/2 = [[-1, -1], [1, 1]]."""
    theta = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    opt = Scion([theta], lr=0.1, momentum=0.5, constraint=constraint,
                norm_type=LMONorm.SIGN, scale=2.0)
    theta.grad = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    opt.step()
    first = [[0.8, 1.0], [0.8, 0.9]] if constraint else [[0.9, 1.1], [0.9, 1.0]]
    torch.testing.assert_close(theta.detach(), torch.tensor(first, dtype=torch.float64),
                               rtol=1e-15, atol=0)
    theta.grad = torch.tensor([[-2.0, -1.0], [0.0, 1.0]], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(opt.state[theta]["d"],
                               torch.tensor([[-0.75, -1.0], [0.125, 0.5]], dtype=torch.float64),
                               rtol=0, atol=0)
    # SCG: θ_2 = .9 θ_1 - .1 [[-1, -1], [1, 1]]; uSCG: θ_2 = θ_1 - .1 [[-1, -1], [1, 1]]
    second = [[0.82, 1.0], [0.62, 0.71]] if constraint else [[1.0, 1.2], [0.8, 0.9]]
    torch.testing.assert_close(theta.detach(), torch.tensor(second, dtype=torch.float64),
                               rtol=1e-15, atol=0)


def test_spectral_oracle_is_the_scaled_polar_factor():
    """-lmo of the RMS→RMS norm is √(d_out/d_in) U Vᵀ: five bfloat16 steps of Jordan's quintic
    leave every singular value in [0.68, 1.2] (measured 0.74 to 1.12 here) and the singular
    vectors as the SVD's (cosine with U Vᵀ above 0.97, measured 0.99)."""
    d = torch.randn(12, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = direction(d, LMONorm.SPECTRAL, OPTIONS[LMONorm.SPECTRAL]).double() / (12 / 5) ** 0.5
    s = torch.linalg.svdvals(out)
    assert 0.68 <= s.min() and s.max() <= 1.2, s
    u, _, vh = torch.linalg.svd(d, full_matrices=False)
    polar = u @ vh
    assert (out * polar).sum() / (out.norm() * polar.norm()) > 0.97


def test_column_oracle_gives_unit_rms_columns():
    d = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = direction(d, LMONorm.COL, OPTIONS[LMONorm.COL])
    torch.testing.assert_close(out.pow(2).mean(0), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(momentum=0.0), "Invalid momentum value: 0.0 (expected a number in (0, 1])"),
    (dict(momentum=1.5), "Invalid momentum value: 1.5 (expected a number in (0, 1])"),
    (dict(scale=0.0), "Invalid scale value: 0.0 (expected a number > 0)"),
    (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    (dict(norm_type=9), "Invalid norm_type value: 9 (expected an LMONorm, 0 to 7)"),
    (dict(norm_type=LMONorm.SIGN, norm_kwargs=dict(transpose=True)),
     "Invalid norm_kwargs value: {'transpose': True} (expected options of SIGN: "
     "['normalize', 'zero_init'])"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as info:
        Scion([torch.zeros(2, 2, requires_grad=True)], **kwargs)
    assert str(info.value) == message


INIT_NORMS = HIDDEN + HEAD + [(LMONorm.SIGN, dict(zero_init=True)),
                              (LMONorm.ROW, dict(normalized=True, transpose=True)),
                              (LMONorm.COL, dict(normalized=False, transpose=True))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("norm", INIT_NORMS, ids=lambda n: n[0].name + str(n[1] or ""))
def test_init_draws_the_references_weights_bit_for_bit(norm, dtype):
    """The reference's ``init()``: each group's norm re-draws its weights (orthogonal in
    float64 for the spectral norms, ±1 for sign, unit columns or rows, zeros for biases),
    times the group's ``scale``; the global generator is drawn in the same order."""
    out = []
    for cls in (Scion, Reference):
        torch.manual_seed(0)
        ps = [torch.zeros(s, dtype=dtype, requires_grad=True) for s in SHAPES]
        groups = [dict(params=[ps[0], ps[2], ps[3]], norm_type=norm[0], norm_kwargs=norm[1],
                       scale=2.0),
                  dict(params=[ps[1]], norm_type=LMONorm.BIAS, scale=3.0),
                  dict(params=[ps[4]], norm_type=LMONorm.AUTO),
                  dict(params=[ps[5]], norm_type=norm[0], norm_kwargs=norm[1], scale=10.0)]
        opt = cls(groups)
        with torch.no_grad():
            ps[1].fill_(1.0)                 # a bias is re-drawn as zeros, not kept
        opt.init()
        out.append(ps)
    for ours, theirs in zip(*out):
        assert torch.equal(ours, theirs)
    assert out[0][1].abs().sum() == 0 and out[0][4].abs().sum() > 0


def test_init_puts_a_spectral_matrix_on_its_ball():
    """Orthogonal times √(d_out/d_in): every singular value of the RMS→RMS-scaled matrix is
    the radius."""
    torch.manual_seed(0)
    w = torch.zeros(6, 4, dtype=torch.float64, requires_grad=True)
    Scion([w], norm_type=LMONorm.SPECTRAL, scale=2.0).init()
    rms_to_rms = torch.linalg.svdvals(w.detach()) * (4 / 6) ** 0.5
    torch.testing.assert_close(rms_to_rms, torch.full((4,), 2.0, dtype=torch.float64))
