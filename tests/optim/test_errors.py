"""Bad hyperparameters raise ValueError with a message naming the argument and the value.

Where torch.optim rejects the same input, optedu's message is torch's, word for word.
"""

import math

import pytest
import torch

import optedu
from optimizers import IDS, OURS, TWIN

NAN = math.nan

# (optedu class, kwargs, message)
BAD = [
    (optedu.SGD, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (optedu.SGD, dict(lr=NAN), "Invalid learning rate: nan"),
    (optedu.SGD, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    (optedu.SGD, dict(weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    (optedu.SGD, dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (optedu.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1),
     "Nesterov momentum requires a momentum and zero dampening"),
    (optedu.Adagrad, dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (optedu.Adagrad, dict(lr_decay=-0.1), "Invalid lr_decay value: -0.1"),
    (optedu.Adagrad, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (optedu.Adagrad, dict(initial_accumulator_value=-0.1),
     "Invalid initial_accumulator_value value: -0.1"),
    (optedu.Adagrad, dict(eps=-1e-10), "Invalid epsilon value: -1e-10"),
    (optedu.RMSprop, dict(lr=-0.01), "Invalid learning rate: -0.01"),
    (optedu.RMSprop, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (optedu.RMSprop, dict(momentum=-0.9), "Invalid momentum value: -0.9"),
    (optedu.RMSprop, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (optedu.RMSprop, dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    (optedu.Adam, dict(lr=-0.001), "Invalid learning rate: -0.001"),
    (optedu.Adam, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (optedu.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (optedu.Adam, dict(betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
    (optedu.Adam, dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (optedu.Adam, dict(betas=(0.9, NAN)), "Invalid beta parameter at index 1: nan"),
    (optedu.Adam, dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (optedu.AdamW, dict(lr=-0.001), "Invalid learning rate: -0.001"),
    (optedu.AdamW, dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    (optedu.AdamW, dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (optedu.Adadelta, dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (optedu.Adadelta, dict(rho=1.5), "Invalid rho value: 1.5"),
    (optedu.Adadelta, dict(rho=-0.1), "Invalid rho value: -0.1"),
    (optedu.Adadelta, dict(rho=NAN), "Invalid rho value: nan"),
    (optedu.Adadelta, dict(eps=-1e-6), "Invalid epsilon value: -1e-06"),
    (optedu.Adadelta, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (optedu.Adamax, dict(lr=-0.002), "Invalid learning rate: -0.002"),
    (optedu.Adamax, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (optedu.Adamax, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (optedu.Adamax, dict(betas=(0.9, -0.5)), "Invalid beta parameter at index 1: -0.5"),
    (optedu.Adamax, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (optedu.NAdam, dict(lr=-0.002), "Invalid learning rate: -0.002"),
    (optedu.NAdam, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (optedu.NAdam, dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (optedu.NAdam, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (optedu.NAdam, dict(momentum_decay=-0.004), "Invalid momentum_decay value: -0.004"),
    (optedu.RAdam, dict(lr=-0.001), "Invalid learning rate: -0.001"),
    (optedu.RAdam, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (optedu.RAdam, dict(betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
    (optedu.RAdam, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (optedu.Rprop, dict(lr=-0.01), "Invalid learning rate: -0.01"),
    (optedu.Rprop, dict(etas=(1.2, 0.5)), "Invalid eta values: 1.2, 0.5"),
    (optedu.Rprop, dict(etas=(0.5, 1.0)), "Invalid eta values: 0.5, 1.0"),
    (optedu.ASGD, dict(lr=-0.01), "Invalid learning rate: -0.01"),
    (optedu.ASGD, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    # Adafactor and Muon: torch's newer wording, "<what> should be >= <bound> but is: <value>"
    (optedu.Adafactor, dict(lr=-0.01), "Learning rate should be >= 0 but is: -0.01"),
    (optedu.Adafactor, dict(lr=NAN), "Learning rate should be >= 0 but is: nan"),
    (optedu.Adafactor, dict(beta2_decay=0.8), "beta2_decay should be <= 0 but is: 0.8"),
    (optedu.Adafactor, dict(eps=(-1e-30, 1e-3)), "epsilon1 should be >= 0 but is: -1e-30"),
    (optedu.Adafactor, dict(eps=(None, -1e-3)), "epsilon2 should be >= 0 but is: -0.001"),
    (optedu.Adafactor, dict(d=0.5), "Clipping threshold d should be >= 1 but is: 0.5"),
    (optedu.Adafactor, dict(weight_decay=-0.1), "weight_decay should be >= 0 but is: -0.1"),
    (optedu.Muon, dict(lr=-0.02), "Learning rate should be >= 0 but is: -0.02"),
    (optedu.Muon, dict(momentum=-0.95), "momentum should be >= 0 but is: -0.95"),
    (optedu.Muon, dict(weight_decay=-0.1), "weight decay should be >= 0 but is: -0.1"),
    (optedu.Muon, dict(adjust_lr_fn="spectral"),
     "Adjust learning rate function spectral is not supported"),
    # _params() is a vector, which Muon refuses once the hyperparameters pass
    (optedu.Muon, dict(), "Muon only supports 2D parameters whereas we found a parameter with "
     "size: torch.Size([2])"),
]


def _params():
    return [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize("cls, kwargs, message", BAD,
                         ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _ in BAD])
def test_bad_hyperparameter(cls, kwargs, message):
    with pytest.raises(ValueError) as raised:
        cls(_params(), **kwargs)
    assert str(raised.value) == message


@pytest.mark.parametrize("cls, kwargs, message", BAD,
                         ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _ in BAD])
def test_message_is_torchs(cls, kwargs, message):
    if cls is optedu.SGD and math.isnan(kwargs.get("lr", 0.0)):
        pytest.skip("torch.optim.SGD checks `lr < 0`, which a NaN passes; optedu rejects it")
    with pytest.raises(ValueError) as raised:
        TWIN[cls](_params(), **kwargs)
    assert str(raised.value) == message


@pytest.mark.parametrize("cls", OURS, ids=IDS)
def test_empty_parameter_list(cls):
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        cls([])


@pytest.mark.parametrize("cls", OURS, ids=IDS)
def test_parameter_in_two_groups(cls):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        cls([{"params": [p]}, {"params": [p]}])


@pytest.mark.parametrize("step_sizes", [(60.0, 50.0), (-1e-6, 50.0)])
def test_rprop_step_sizes_must_be_ordered(step_sizes):
    """torch.optim.Rprop takes any pair (its clamp then pins every step size); optedu refuses
    a negative minimum or a minimum above the maximum."""
    torch.optim.Rprop(_params(), step_sizes=step_sizes)
    with pytest.raises(ValueError) as raised:
        optedu.Rprop(_params(), step_sizes=step_sizes)
    assert str(raised.value) == (f"Invalid step_sizes value: {step_sizes} "
                                 "(expected 0 <= min <= max)")


def test_betas_must_be_a_pair():
    with pytest.raises(ValueError, match=r"^Invalid betas value: \(0.9,\) \(expected two values\)$"):
        optedu.Adam(_params(), betas=(0.9,))


DENSE_ONLY = [cls for cls in OURS if not cls.supports_sparse]


@pytest.mark.parametrize("cls", DENSE_ONLY, ids=[cls.__name__ for cls in DENSE_ONLY])
def test_sparse_gradients_are_refused(cls):
    """Every class but SGD and Adagrad (tests/optim/test_optim_db.py steps those with sparse
    gradients, as torch's optim_db says they take them) refuses a sparse gradient, as its
    torch twin does, before any parameter moves."""
    p = torch.zeros(3, 2, requires_grad=True)  # a matrix: Muon takes nothing else
    dense = torch.ones(3, 2, requires_grad=True)
    p.grad = torch.zeros(3, 2).to_sparse()
    dense.grad = torch.ones(3, 2)
    for make in (cls, TWIN[cls]):
        with pytest.raises(RuntimeError, match="does not support sparse gradients"):
            make([dense, p]).step()
    assert torch.equal(dense, torch.ones(3, 2))


def test_only_sgd_and_adagrad_take_sparse_gradients():
    assert {cls.__name__ for cls in OURS if cls.supports_sparse} == {"SGD", "Adagrad"}


def test_every_optimizer_has_bad_inputs_in_the_table():
    """A row added to tests/optimizers.py needs its bad arguments here too."""
    assert {cls for cls, _, _ in BAD} == set(OURS)
