"""Adam's comparison variants (optedu.optim.variants.adam).

First steps by hand for every form, the cases where a form is the same rule
as optedu's Adam (and so torch's), and where it is not.
"""

from math import sqrt

import pytest
import torch

import optedu
from optedu.optim.variants.adam import FORMS, AdamVariant, adam_variant
from runs import path as _path
from runs import spread_grads as _grads


def _first_step(form: str, g: float = 2.0) -> float:
    theta = torch.zeros(1, dtype=torch.float64)
    state = [torch.zeros(1, dtype=torch.float64) for _ in range(3)]
    adam_variant(theta, torch.tensor([g], dtype=torch.float64), *state, 1,
                 lr=0.1, beta1=0.9, beta2=0.999, eps=0.0, form=form)
    return -theta.item()


@pytest.mark.parametrize("form, expected", [
    ("algorithm 1", 0.1),                         # η sign(g)
    ("epsilon hat", 0.1),
    ("no bias correction", 0.1 * 0.1 / sqrt(0.001)),   # √10 η
    ("amsgrad paper", 0.1 * 0.1 / sqrt(0.001)),
    ("max of corrected", 0.1),
])
def test_first_step_by_hand(form, expected):
    # m_1 = 0.1·2 = 0.2, v_1 = 0.001·4; corrected m̂_1 = 2, v̂_1 = 4
    assert abs(_first_step(form) - expected) < 1e-14


def test_algorithm_1_is_optedu_adam_up_to_rounding():
    grads = _grads()
    ref = _path(lambda p: optedu.Adam(p, lr=0.01), grads)
    variant = _path(lambda p: AdamVariant(p, lr=0.01), grads)
    assert ((variant - ref).abs().max() / ref.abs().max()).item() < 1e-13


def test_epsilon_hat_is_algorithm_1_when_eps_is_zero():
    grads = _grads()
    a = _path(lambda p: AdamVariant(p, lr=0.01, eps=0.0), grads)
    b = _path(lambda p: AdamVariant(p, lr=0.01, eps=0.0, form="epsilon hat"),
              grads)
    assert ((a - b).abs().max() / a.abs().max()).item() < 1e-13


def test_epsilon_hat_differs_for_gradients_near_eps():
    """The effective ε is ε/√(1-β2^t): √1000 ε at the first step."""
    g = torch.full((1, 1), 1e-8, dtype=torch.float64)
    a = _path(lambda p: AdamVariant(p, lr=1.0), g)[-1].item()
    b = _path(lambda p: AdamVariant(p, lr=1.0, form="epsilon hat"), g)
    assert abs(a + 0.5) < 1e-12                    # 1e-8 / (1e-8 + 1e-8)
    assert abs(b[-1].item() + 1 / (1 + sqrt(1000))) < 1e-12


def test_no_bias_correction_ratio_is_the_two_factors():
    grads = _grads(100)
    adam = _path(lambda p: optedu.Adam(p, lr=1e-3, eps=0.0), grads)
    nobc = _path(lambda p: AdamVariant(p, lr=1e-3, eps=0.0,
                                       form="no bias correction"), grads)
    t = torch.arange(1, 101, dtype=torch.float64)[:, None]
    predicted = (1 - 0.9**t) / torch.sqrt(1 - 0.999**t)
    ratio = nobc.diff(dim=0) / adam.diff(dim=0)
    assert torch.allclose(ratio, predicted.expand_as(ratio), rtol=1e-10)


def test_max_of_corrected_is_adam_for_a_constant_gradient():
    """v̂_t = g² at every step, so its maximum is v̂_t itself."""
    grads = torch.full((50, 1), 0.3, dtype=torch.float64)
    adam = _path(lambda p: AdamVariant(p, lr=0.01), grads)
    hat = _path(lambda p: AdamVariant(p, lr=0.01, form="max of corrected"),
                grads)
    assert torch.allclose(adam, hat, rtol=1e-14, atol=0)


def test_amsgrad_forms_after_a_spike():
    """g_1 = 1 then 0.01: the paper keeps v_1 = 1 - β2 as its maximum, the
    max-of-corrected form keeps v̂_1 = 1, so its steps stay near η/100."""
    grads = torch.full((200, 1), 0.01, dtype=torch.float64)
    grads[0] = 1.0
    opt = AdamVariant([torch.zeros(1, dtype=torch.float64,
                                   requires_grad=True)], form="amsgrad paper")
    theta = opt.param_groups[0]["params"][0]
    for g in grads:
        theta.grad = g.clone()
        opt.step()
    (state,) = opt.state.values()
    assert abs(state["max_exp_avg_sq"].item() - (1 - 0.999)) < 1e-15
    hat = _path(lambda p: AdamVariant(p, lr=1.0, eps=0.0,
                                      form="max of corrected"), grads)
    assert abs(abs(hat[-1] - hat[-2]).item() - 0.01) < 1e-3


def test_every_form_is_listed_and_an_unknown_form_raises():
    assert len(FORMS) == 5
    theta = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid form value: 'adamax'"):
        AdamVariant([theta], form="adamax")
    with pytest.raises(ValueError, match="Invalid form value"):
        _first_step("adamax")
