"""optedu.precision.memory.state_bytes against state sizes known from each
optimizer's definition."""

import math

import pytest
import torch
from optimizers import FULL

import optedu
from optedu.precision.memory import (STATE_LAYOUTS, predicted_state_bytes, state_bytes,
                           state_bytes_per_element, state_layout, state_per_element, stepped,
                           training_budget)
from optedu.precision.mixed import LowPrecisionOptimizer, MasterWeights
from optedu.optim.catalogue import CATALOGUE


@pytest.fixture(autouse=True)
def _float32_default():
    """torch stores ``step`` in the default dtype; other test modules change
    the default at import, so each test here starts from float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(previous)


def _stepped(make, dtype=torch.float32):
    # 21 weights + 3 biases = 24 elements in 2 tensors
    model = torch.nn.Linear(7, 3).to(dtype)
    opt = make(model.parameters())
    model(torch.randn(5, 7, dtype=dtype)).sum().backward()
    opt.step()
    return opt


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: torch.optim.SGD(p, lr=0.1), {}),
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         {"momentum_buffer": 24 * 4}),
        (lambda p: torch.optim.Adagrad(p), {"sum": 24 * 4, "step": 2 * 4}),
        (lambda p: torch.optim.RMSprop(p),
         {"square_avg": 24 * 4, "step": 2 * 4}),
        (lambda p: torch.optim.Adam(p),
         {"exp_avg": 96, "exp_avg_sq": 96, "step": 8}),
        (lambda p: torch.optim.Adam(p, amsgrad=True),
         {"exp_avg": 96, "exp_avg_sq": 96, "max_exp_avg_sq": 96, "step": 8}),
        (lambda p: optedu.Adam(p),
         {"exp_avg": 96, "exp_avg_sq": 96, "step": 8}),
        (lambda p: optedu.SGD(p, lr=0.1, momentum=0.9),
         {"momentum_buffer": 96}),
    ],
)
def test_state_bytes_per_key(make, expected):
    assert state_bytes(_stepped(make)) == expected


def test_buffers_follow_the_parameter_dtype():
    opt = _stepped(lambda p: torch.optim.Adam(p), dtype=torch.float64)
    assert state_bytes(opt)["exp_avg"] == 24 * 8


@pytest.mark.parametrize("make", [lambda p: torch.optim.Adam(p),
                                  lambda p: optedu.Adam(p)])
def test_step_counter_follows_the_default_dtype(make):
    """float32 buffers, but an 8-byte ``step`` under a float64 default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        sizes = state_bytes(_stepped(make, dtype=torch.float32))
    finally:
        torch.set_default_dtype(previous)
    assert sizes == {"exp_avg": 96, "exp_avg_sq": 96, "step": 2 * 8}


def test_no_state_before_the_first_step():
    model = torch.nn.Linear(7, 3)
    assert state_bytes(torch.optim.Adam(model.parameters())) == {}


# --- every optimizer class: the closed form against the measured state -----------------------

# shapes that exercise every layout: a matrix, a vector, a 3-D tensor (Adafactor factors the
# last two dimensions); Muon takes matrices only
SHAPES = [(4, 3), (3,), (2, 3, 4)]
MATRICES = [(4, 3), (3, 5)]

# class name -> constructor arguments, each a run whose measured state must equal the closed
# form (settings that change the layout): the catalogue's memory_settings
# (optedu/optim/catalogue.py), for optedu's classes and torch.optim's of the same name
SETTINGS = {rule.name: list(rule.memory_settings) for rule in CATALOGUE}


def optedu_classes():
    return sorted(name for name in optedu.__all__
                  if isinstance(getattr(optedu, name), type)
                  and issubclass(getattr(optedu, name), torch.optim.Optimizer)
                  and name != "Optimizer")


def torch_classes():
    return sorted(name for name in torch.optim.__all__
                  if isinstance(getattr(torch.optim, name), type)
                  and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
                  and name != "Optimizer")


def _measured_run(cls, kwargs):
    name = cls.__name__
    shapes = ((10, 3),) if name == "SparseAdam" else MATRICES if name == "Muon" else SHAPES
    return stepped(cls, shapes, **kwargs)


def test_every_torch_class_has_a_layout_and_a_setting():
    """The tables name every optimizer of torch.optim (optedu's are tests/test_layout.py's
    test_every_optimizer_has_every_piece's to check)."""
    assert set(torch_classes()) <= set(STATE_LAYOUTS) | {"LBFGS"}
    assert set(torch_classes()) <= set(SETTINGS)


def _cases(classes):
    # a class without a catalogue row has no case here: tests/test_layout.py names what it lacks
    return [(lib, name, kwargs) for lib, names in classes for name in names
            for kwargs in SETTINGS.get(name, [])]


try:  # 8-bit Adam, until optedu exports it
    from optedu.precision import adam8bit as _adam8bit
except ImportError:  # pragma: no cover
    _adam8bit = None
EXTRA = ([(_adam8bit, ["Adam8bit", "AdamW8bit"])]
         if _adam8bit is not None and "Adam8bit" not in optedu.__all__ else [])
ALL_CASES = _cases([(optedu, optedu_classes()), (torch.optim, torch_classes()), *EXTRA])
# every optedu row, each of its settings (about 10 ms a case): a row's closed form is checked
# in the quick tier where it is written
QUICK_CASES = [c for c in ALL_CASES if c[0] is optedu]


@pytest.mark.parametrize(("lib", "name", "kwargs"), ALL_CASES if FULL else QUICK_CASES,
                         ids=lambda x: getattr(x, "__name__", str(x)))
def test_closed_form_equals_measured_state(lib, name, kwargs):
    """Bytes per state key, predicted from the class's layout, equal the bytes of the tensors
    it holds after a step (float32; L-BFGS with its history full: 9 iterations, 3 pairs)."""
    opt = _measured_run(getattr(lib, name), kwargs)
    measured = state_bytes(opt)
    predicted = predicted_state_bytes(opt)
    assert measured == predicted, (
        f"{name}({kwargs}) holds {measured} after a step, its closed form predicts "
        f"{predicted}: fix the row's state in optedu/optim/catalogue.py (a When for a buffer "
        f"that a setting switches on), or, where the layout depends on the shape, name a "
        f"layout function in LAYOUTS, optedu/precision/memory.py")
    # every row holds state, SGD without momentum excepted
    assert bool(measured) != (name == "SGD" and "momentum" not in kwargs)


def test_lbfgs_history_grows_to_history_size():
    """Before the history is full, the measured state is the layout with fewer pairs."""
    params = [torch.randn(5, generator=torch.Generator().manual_seed(1)).requires_grad_()]
    opt = optedu.LBFGS(params, history_size=4, max_iter=3)

    def closure():
        opt.zero_grad()
        loss = (params[0] ** 2 * torch.arange(1.0, 6.0)).sum()
        loss.backward()
        return loss

    opt.step(closure)  # 3 iterations, at most 2 pairs
    pairs = len(opt.state[params[0]]["old_dirs"])
    assert 0 < pairs < 4
    assert state_bytes(opt) == predicted_state_bytes(opt, lbfgs_pairs=pairs)
    assert state_bytes(opt) != predicted_state_bytes(opt)


def test_per_element_bytes():
    """Adam in float32: 4 bytes per element per moment; steps add 4 bytes per tensor."""
    opt = _stepped(lambda p: optedu.Adam(p))
    per = state_bytes_per_element(opt)
    assert per == {"exp_avg": 4.0, "exp_avg_sq": 4.0, "step": 8 / 24}


@pytest.mark.parametrize(("name", "settings", "expected"), [
    ("SGD", {}, 0.0), ("SGD", dict(momentum=0.9), 1.0), ("Adam", {}, 2.0),
    ("Adam", dict(amsgrad=True), 3.0), ("Lion", {}, 1.0), ("Adan", {}, 4.0),
    ("RMSprop", dict(momentum=0.9, centered=True), 3.0),
    ("Adafactor", {}, (1024 + 1024) / 1024**2), ("LBFGS", dict(history_size=10), 22.0),
])
def test_state_per_element_table(name, settings, expected):
    assert state_per_element(name, (1024, 1024), **settings) == expected


def test_sam_layout_is_its_base_s():
    """SAM keeps its base's state between steps: the base named by class or by name, SGD
    (stateless without momentum) when none is named; SAM around SAM is refused."""
    assert state_layout("SAM", (3, 2), base_optimizer="AdamW", amsgrad=True) == \
        state_layout("AdamW", (3, 2), amsgrad=True)
    assert state_layout("SAM", (3, 2), base_optimizer=optedu.SGD, momentum=0.9) == \
        {"momentum_buffer": ((3, 2), "param")}
    assert state_layout("SAM", (3, 2)) == {}
    with pytest.raises(ValueError, match="Invalid base_optimizer value: 'SAM'"):
        state_layout("SAM", (3, 2), base_optimizer="SAM")


def test_state_layout_rejects_unknown_names():
    with pytest.raises(ValueError, match="Invalid name value: 'Adamm'"):
        state_layout("Adamm", (3,))
    with pytest.raises(ValueError, match="Invalid optimizer value: Foo"):
        class Foo(torch.optim.SGD):
            pass
        predicted_state_bytes(Foo([torch.zeros(1, requires_grad=True)], lr=0.1))


# --- the budget, against the bytes of real models -----------------------------------------------

def _mlp():
    return torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 5))


def _transformer():
    layer = torch.nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32,
                                             dropout=0.0, batch_first=True)
    return torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


def _inputs(model, dtype):
    gen = torch.Generator().manual_seed(0)
    shape = (4, 12) if isinstance(model, torch.nn.Sequential) else (2, 5, 16)
    return torch.randn(shape, generator=gen).to(dtype)


def _nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


MAKERS = {"Adam": lambda p: optedu.Adam(p, lr=1e-3),
          "SGD": lambda p: optedu.SGD(p, lr=1e-3, momentum=0.9),
          "Lion": lambda p: optedu.Lion(p, lr=1e-4)}
SETTINGS_OF = {"Adam": {}, "SGD": dict(momentum=0.9), "Lion": {}}


@pytest.mark.parametrize(("model_fn", "precision"), [   # quick tier: the transformer in bf16-mixed
    pytest.param(model_fn, precision, id=f"{precision}-{model_fn.__name__}",
                 marks=pytest.mark.full if model_fn is _transformer and precision != "bf16-mixed"
                 else ())
    for model_fn in (_mlp, _transformer)
    for precision in ("fp32", "bf16-mixed", "fp16-mixed", "bf16")])
@pytest.mark.parametrize("name", ["Adam", "SGD", "Lion"] if FULL else ["Adam"])
def test_budget_equals_measured_bytes(model_fn, precision, name):
    """Weights, gradients, master weights, master gradients (held during the step) and state
    of a real model, measured from its tensors, equal training_budget's numbers."""
    torch.manual_seed(0)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(precision.split("-")[0],
                                                                 torch.float16)
    model = model_fn().to(dtype)
    shapes = [tuple(p.shape) for p in model.parameters()]
    model(_inputs(model, dtype)).float().pow(2).mean().backward()
    held = {}
    if precision.endswith("-mixed"):
        opt = MasterWeights(model.parameters(), MAKERS[name])

        def spy(*args, **kwargs):  # measure the fp32 gradients while the step runs
            held["master_gradients"] = _nbytes(q.grad for q in opt.master)
            return step(*args, **kwargs)
        step = opt.optimizer.step
        opt.optimizer.step = spy
        opt.step()
        held["master_weights"] = _nbytes(opt.master)
        held["after"] = [q.grad for q in opt.master]
        state = sum(state_bytes(opt.optimizer).values())
    else:
        opt = MAKERS[name](model.parameters())
        opt.step()
        state = sum(state_bytes(opt).values())
    budget = training_budget(shapes, name, precision=precision, **SETTINGS_OF[name])
    assert budget.weights == _nbytes(model.parameters())
    assert budget.gradients == _nbytes(p.grad for p in model.parameters())
    assert budget.master_weights == held.get("master_weights", 0)
    assert budget.master_gradients == held.get("master_gradients", 0)
    assert all(g is None for g in held.get("after", []))  # released after the step
    assert budget.optimizer_state == state


def test_budget_of_a_7b_model():
    """The per-parameter lines for N = 7e9: fp32 Adam 16 bytes, mixed 2+2+4+4+8 = 20 (16 in
    ZeRO's count, which leaves out the fp32 gradients), 8-bit state 2 + 2·4/2048."""
    n = 7_000_000_000
    fp32 = training_budget(n, "Adam").per_parameter(n)
    assert fp32["total"] == pytest.approx(16.0, abs=1e-9)
    mixed = training_budget(n, "Adam", precision="bf16-mixed").per_parameter(n)
    assert (mixed["weights"], mixed["gradients"], mixed["master_weights"],
            mixed["master_gradients"]) == (2.0, 2.0, 4.0, 4.0)
    assert mixed["optimizer_state"] == pytest.approx(8.0, abs=1e-9)
    int8 = training_budget(n, "Adam", state="int8", block_size=2048)
    assert int8.optimizer_state == 2 * (n + 4 * math.ceil(n / 2048)) + 4


def test_budget_int8_state_per_block():
    """One byte per value and one fp32 scale per block, per state tensor (ceil)."""
    b = training_budget([(100, 30), (7,)], "Adam", state="int8", block_size=64,
                        min_8bit_size=0)
    blocks = math.ceil(3000 / 64) + math.ceil(7 / 64)
    assert b.optimizer_state == 2 * (3007 + 4 * blocks) + 2 * 4


@pytest.mark.parametrize("precision", ["fp32", "bf16-mixed"])
def test_budget_int8_state_equals_adam8bit(precision):
    """optedu.Adam8bit's state (uint8 codes, a float32 absmax per block; tensors under
    min_8bit_size elements kept unquantised) measured on an MLP whose weight matrices are
    quantised and whose biases are not, against training_budget(state="int8")."""
    adam8bit = pytest.importorskip("optedu.precision.adam8bit")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(),
                                torch.nn.Linear(96, 50))
    if precision == "bf16-mixed":
        model = model.to(torch.bfloat16)
    shapes = [tuple(p.shape) for p in model.parameters()]
    x = torch.randn(4, 64).to(next(model.parameters()).dtype)
    model(x).float().pow(2).mean().backward()
    make = lambda p: adam8bit.Adam8bit(p, block_size=2048, min_8bit_size=4096)  # noqa: E731
    if precision == "bf16-mixed":
        wrapper = MasterWeights(model.parameters(), make)
        wrapper.step()
        opt = wrapper.optimizer
    else:
        opt = make(model.parameters())
        opt.step()
    measured = state_bytes(opt)
    assert measured["exp_avg_indices"] == 64 * 96 + 96 * 50        # one byte per weight
    budget = training_budget(shapes, "Adam", precision=precision, state="int8",
                             block_size=2048, min_8bit_size=4096)
    assert budget.optimizer_state == sum(measured.values())
    assert predicted_state_bytes(opt) == measured


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(precision="fp8"), "Invalid precision value: 'fp8'"),
    (dict(min_8bit_size=-1), "Invalid min_8bit_size value: -1"),
    (dict(state="int4"), "Invalid state value: 'int4'"),
    (dict(block_size=0), "Invalid block_size value: 0"),
    (dict(activations=-1), "Invalid activations value: -1"),
])
def test_budget_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training_budget(10, "Adam", **kwargs)


def test_budget_of_bf16_weights_with_kahan_compensation():
    """Pure bf16 weights stepped by LowPrecisionOptimizer (fp32 state, a bf16 Kahan buffer in
    ``state["kahan_comp"]``), measured on the MLP: the budget with state="fp32", kahan=True."""
    torch.manual_seed(0)
    model = _mlp().to(torch.bfloat16)
    shapes = [tuple(p.shape) for p in model.parameters()]
    model(_inputs(model, torch.bfloat16)).float().pow(2).mean().backward()
    opt = LowPrecisionOptimizer(optedu.AdamW(model.parameters(), lr=1e-3), "kahan")
    opt.step()
    measured = state_bytes(opt.optimizer)
    budget = training_budget(shapes, "AdamW", precision="bf16", state="fp32", kahan=True)
    assert budget.weights == budget.gradients == _nbytes(model.parameters())
    assert budget.compensation == measured.pop("kahan_comp")
    assert budget.optimizer_state == sum(measured.values())
    assert budget.master_weights == budget.master_gradients == 0
