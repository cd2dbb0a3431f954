"""Every optimizer optedu rebuilds, beside its torch.optim twin: one row each.

The parity, error, interop and worked-example tests all read this list, so adding an optimizer
to optedu is one rule file and one row here. A row says:

* ``ours``, ``theirs``: the optedu class and the torch.optim class it must match;
* ``grid``: values for each constructor argument; every combination that torch's constructor
  accepts is a parity case under ``make test`` and CI (``OPTEDU_TESTS=full``), a pairwise cover
  of them in a quick ``pytest`` (:meth:`Pair.cases`); ``tests/optim/test_parity.py`` checks that the
  grid names every argument of torch's signature, less ``foreach``, ``fused``, ``capturable``
  and ``differentiable``;
* ``second_group``: how the second parameter group of a parity run differs from the first;
* ``ranges``: a hypothesis strategy per argument, its valid range, for the property tests;
* ``settings``: one or more non-default settings for the checkpoint, scheduler and closure
  tests of ``tests/optim/test_interop.py``;
* ``matrices_only`` (the catalogue's, ``optedu/optim/catalogue.py``): the optimizer refuses any
  parameter that is not 2-D (Muon): its parity runs use :data:`MATRIX_SHAPES` and no grad-None
  vector, the interop tests a model without biases;
* ``half_fraction``: run half of the combinations, those whose value indices sum to an even
  number (a 2^(k-1) fractional factorial): with k options at two values each, every
  combination of any k - 1 of them still runs. For a grid too large to run whole (Muon's).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from unittest import mock

import pytest
import torch
from hypothesis import strategies as st

import optedu
import optedu.instruments.parity
from optedu.instruments.parity import Parity
from optedu.optim.catalogue import CATALOGUE, PARITY_TEST, RULES

# parity shapes for a matrices-only row: tall, wide and square, in place of optedu.instruments.parity.SHAPES
MATRIX_SHAPES = ((4, 3), (3, 5), (4, 4))

# every combination of each grid (make test, CI) or a pairwise cover (a quick pytest)
FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"

# arguments of torch's constructors that the signature test leaves out: the implementation
# choices (optedu.SGD, Adam and AdamW take `foreach`, tested in tests/optim/test_foreach.py; the rest
# optedu leaves out on purpose: CONTRIBUTING.md, "What the parity tests promise")
# torch.optim's optimizers by name; test_optim_db.py checks they are optim_db's entries (whose
# module imports torch's whole OpInfo database: 1.5-4 s in every pytest worker).
TORCH_OPTIMIZERS = sorted(name for name in torch.optim.__all__
                          if isinstance(getattr(torch.optim, name), type)
                          and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
                          and name != "Optimizer")
TORCH_ONLY = frozenset({"foreach", "fused", "capturable", "differentiable"})


def _pairs(indices: Sequence[int]) -> set[tuple[int, int, int, int]]:
    return {(a, indices[a], b, indices[b])
            for a, b in itertools.combinations(range(len(indices)), 2)}


def crossed(*axes: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    """Cases for ``pytest.mark.parametrize`` from several axes, each a list of values (shown
    by ``str``) or a dict from id to value; a tuple value fills several arguments.

    Full tier: every combination. Quick tier: every value of every axis at least once, the
    axes read in step (case i takes value i modulo the axis's length)."""
    named = [dict(axis) if isinstance(axis, Mapping) else {str(v): v for v in axis}
             for axis in axes]
    assert all(len(n) == len(a) for n, a in zip(named, axes)), "two values show the same"
    if FULL:
        picks = list(itertools.product(*(list(axis.items()) for axis in named)))
    else:
        longest = max(len(axis) for axis in named)
        picks = [tuple(list(axis.items())[i % len(axis)] for axis in named)
                 for i in range(longest)]
    cases = []
    for pick in picks:
        values = [x for _, v in pick for x in (v if isinstance(v, tuple) else (v,))]
        cases.append(pytest.param(*values, id="-".join(key for key, _ in pick)))
    return cases


def _pairwise_cover(candidates: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Greedy pairwise cover: candidates (in grid order) until every pair of option values
    that some candidate has is in one of them. Deterministic."""
    uncovered = set().union(*(_pairs(c) for c in candidates)) if candidates else set()
    chosen = []
    while uncovered:
        best = max(candidates, key=lambda c: len(_pairs(c) & uncovered))
        chosen.append(best)
        uncovered -= _pairs(best)
    return chosen or candidates[:1]


@dataclass(frozen=True)
class Pair:
    ours: type[torch.optim.Optimizer]
    theirs: type[torch.optim.Optimizer]
    grid: Mapping[str, Sequence[Any]]
    second_group: Mapping[str, Any]
    ranges: Mapping[str, st.SearchStrategy[Any]]
    settings: Sequence[Mapping[str, Any]] = field(default_factory=list)
    half_fraction: bool = False

    @property
    def name(self) -> str:
        return self.ours.__name__

    @property
    def matrices_only(self) -> bool:
        """The catalogue's ``matrices_only``: the optimizer refuses any parameter that is not
        2-D (Muon)."""
        return RULES[self.name].matrices_only

    def accepts(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether torch's constructor takes ``kwargs`` (SGD refuses Nesterov without momentum).
        The probe is a 1 x 1 matrix, which every optimizer takes (Muon takes nothing else)."""
        try:
            self.theirs([torch.zeros(1, 1, requires_grad=True)], **kwargs)
        except ValueError:
            return False
        return True

    def cases(self, full: bool | None = None) -> list[dict[str, Any]]:
        """The grid's settings that torch accepts, for the parity runs.

        ``full`` (the default under ``make test`` and CI, see ``tests/conftest.py``): every
        combination (half of them with ``half_fraction``). Otherwise, for a quick
        ``pytest``: a pairwise cover, a few combinations in which every pair of values of
        any two options that torch accepts together still appears."""
        full = FULL if full is None else full
        keys = list(self.grid)
        accepted = []
        for indices in itertools.product(*(range(len(v)) for v in self.grid.values())):
            if self.half_fraction and sum(indices) % 2:
                continue
            kwargs = {key: self.grid[key][i] for key, i in zip(keys, indices)}
            if self.accepts(kwargs):
                accepted.append(indices)
        if not full:
            accepted = _pairwise_cover(accepted)
        return [{key: self.grid[key][i] for key, i in zip(keys, indices)}
                for indices in accepted]

    def compare(self, kwargs: Mapping[str, Any],
                group_overrides: Sequence[Mapping[str, Any]] = ({},), **options: Any) -> Parity:
        """:func:`optedu.instruments.parity.compare` of ``ours`` against ``theirs``; a matrices-only row runs
        on :data:`MATRIX_SHAPES` (the harness takes its shapes from ``optedu.instruments.parity.SHAPES``) and
        without the harness's grad-None parameter, a vector."""
        if not self.matrices_only:
            return optedu.instruments.parity.compare(self.ours, self.theirs, kwargs, group_overrides,
                                         **options)
        with mock.patch.object(optedu.instruments.parity, "SHAPES", MATRIX_SHAPES):
            return optedu.instruments.parity.compare(self.ours, self.theirs, kwargs, group_overrides,
                                         with_unused=False, **options)


rates = st.floats(1e-4, 0.5)
decays = st.floats(0.0, 0.5)
betas = st.floats(0.0, 0.999)
epsilons = st.sampled_from([1e-12, 1e-8, 1e-3, 0.1])
flags = st.booleans()

PAIRS = [
    Pair(optedu.SGD, torch.optim.SGD,
         grid=dict(lr=[0.05], momentum=[0.0, 0.9], dampening=[0.0, 0.3], weight_decay=[0.0, 0.1],
                   nesterov=[False, True], maximize=[False, True]),
         second_group={"lr": 0.01, "weight_decay": 0.2},
         ranges=dict(lr=rates, momentum=st.floats(0.0, 0.99),
                     dampening=st.one_of(st.just(0.0), st.floats(0.0, 1.0)), weight_decay=decays,
                     nesterov=flags, maximize=flags),
         settings=[dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                   dict(lr=0.05)]),
    Pair(optedu.Adagrad, torch.optim.Adagrad,
         grid=dict(lr=[0.1], lr_decay=[0.0, 0.05], weight_decay=[0.0, 0.1],
                   initial_accumulator_value=[0.0, 0.5], eps=[1e-10, 1e-3], maximize=[False, True]),
         second_group={"lr": 0.03, "lr_decay": 0.1},
         ranges=dict(lr=rates, lr_decay=decays, weight_decay=decays,
                     initial_accumulator_value=st.floats(0.0, 2.0),
                     eps=st.sampled_from([0.0, 1e-12, 1e-8, 1e-3, 0.1]), maximize=flags),
         settings=[dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)]),
    Pair(optedu.RMSprop, torch.optim.RMSprop,
         grid=dict(lr=[0.01], alpha=[0.99, 0.5], eps=[1e-8, 1e-2], weight_decay=[0.0, 0.1],
                   momentum=[0.0, 0.9], centered=[False, True], maximize=[False, True]),
         second_group={"lr": 0.003, "alpha": 0.9},
         ranges=dict(lr=st.floats(1e-4, 0.05), alpha=st.floats(0.0, 0.999), eps=epsilons,
                     weight_decay=decays, momentum=st.floats(0.0, 0.95), centered=flags,
                     maximize=flags),
         settings=[dict(lr=0.01, momentum=0.5, centered=True)]),
    Pair(optedu.Adam, torch.optim.Adam,
         grid=dict(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-3],
                   weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True],
                   decoupled_weight_decay=[False, True]),
         second_group={"lr": 0.002, "betas": (0.8, 0.99)},
         ranges=dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(betas, betas), eps=epsilons,
                     weight_decay=decays, amsgrad=flags, maximize=flags,
                     decoupled_weight_decay=flags),
         settings=[dict(lr=0.01, amsgrad=True, weight_decay=0.01)]),
    Pair(optedu.AdamW, torch.optim.AdamW,
         grid=dict(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-3],
                   weight_decay=[0.0, 0.01, 0.3], amsgrad=[False, True], maximize=[False, True]),
         second_group={"lr": 0.002, "weight_decay": 0.05},
         ranges=dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(betas, betas), eps=epsilons,
                     weight_decay=decays, amsgrad=flags, maximize=flags),
         settings=[dict(lr=0.01, weight_decay=0.1)]),
    Pair(optedu.Adadelta, torch.optim.Adadelta,
         grid=dict(lr=[0.5], rho=[0.9, 0.5], eps=[1e-6, 1e-2],
                   weight_decay=[0.0, 0.1], maximize=[False, True]),
         second_group={"lr": 0.3, "rho": 0.95},
         ranges=dict(lr=st.floats(1e-3, 2.0), rho=st.floats(0.0, 1.0),
                     eps=st.sampled_from([0.0, 1e-12, 1e-6, 1e-3, 0.1]),
                     weight_decay=decays, maximize=flags),
         settings=[dict(lr=0.5, rho=0.8, weight_decay=0.01)]),
    Pair(optedu.Adamax, torch.optim.Adamax,
         grid=dict(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-3],
                   weight_decay=[0.0, 0.1], maximize=[False, True]),
         second_group={"lr": 0.002, "betas": (0.8, 0.99)},
         ranges=dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(betas, betas), eps=epsilons,
                     weight_decay=decays, maximize=flags),
         settings=[dict(lr=0.01, weight_decay=0.01)]),
    # NAdam's momentum schedule lives in the ``mu_product`` state: the parity test that changes
    # lr mid-run and the checkpoint tests carry it across
    Pair(optedu.NAdam, torch.optim.NAdam,
         grid=dict(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-3],
                   weight_decay=[0.0, 0.1], momentum_decay=[4e-3, 0.05],
                   decoupled_weight_decay=[False, True], maximize=[False, True]),
         second_group={"lr": 0.002, "momentum_decay": 0.01},
         ranges=dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(betas, betas), eps=epsilons,
                     weight_decay=decays, momentum_decay=st.floats(0.0, 0.1),
                     decoupled_weight_decay=flags, maximize=flags),
         settings=[dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True)]),
    # RAdam: every grid beta2 rectifies from step 6 or 7 of a 50-step run (checked in
    # tests/optim/test_parity.py), so both branches run
    Pair(optedu.RAdam, torch.optim.RAdam,
         grid=dict(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-3],
                   weight_decay=[0.0, 0.1], decoupled_weight_decay=[False, True],
                   maximize=[False, True]),
         second_group={"lr": 0.002, "betas": (0.8, 0.99)},
         ranges=dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(betas, betas), eps=epsilons,
                     weight_decay=decays, decoupled_weight_decay=flags, maximize=flags),
         settings=[dict(lr=0.01, weight_decay=0.01)]),
    # Rprop ignores lr after a parameter's first step (its step sizes start at lr), so the
    # mid-run change of lr must leave both runs alike; (1e-3, 0.05) clamps within 50 steps
    Pair(optedu.Rprop, torch.optim.Rprop,
         grid=dict(lr=[0.01], etas=[(0.5, 1.2), (0.3, 1.5)], step_sizes=[(1e-6, 50), (1e-3, 0.05)],
                   maximize=[False, True]),
         second_group={"lr": 0.05, "etas": (0.4, 1.1)},
         ranges=dict(lr=rates, etas=st.tuples(st.floats(0.05, 0.95), st.floats(1.05, 3.0)),
                     step_sizes=st.tuples(st.floats(0.0, 1e-3), st.floats(1e-2, 100.0)),
                     maximize=flags),
         settings=[dict(lr=0.01, etas=(0.4, 1.3))]),
    # ASGD: t0 = 10 starts the averaging inside a 50-step run (the default 1e6 never does);
    # lambd = 0.1 makes the rate decay visibly
    Pair(optedu.ASGD, torch.optim.ASGD,
         grid=dict(lr=[0.05], lambd=[1e-4, 0.1], alpha=[0.75, 0.5], t0=[1e6, 10.0],
                   weight_decay=[0.0, 0.1], maximize=[False, True]),
         second_group={"lr": 0.01, "t0": 5.0},
         ranges=dict(lr=rates, lambd=st.floats(0.0, 0.5), alpha=st.floats(0.0, 1.0),
                     t0=st.floats(0.0, 60.0), weight_decay=decays, maximize=flags),
         settings=[dict(lr=0.05, lambd=0.01, t0=3.0)]),
    # Adafactor: the harness's shapes take both paths, factored ((4, 3) and (2, 2, 2): the last
    # two dimensions) and a full second moment ((5,)); tests/optim/test_adafactor_muon.py adds more
    Pair(optedu.Adafactor, torch.optim.Adafactor,
         grid=dict(lr=[0.01], beta2_decay=[-0.8, -0.3], eps=[(None, 1e-3), (1e-3, 0.5)],
                   d=[1.0, 3.0], weight_decay=[0.0, 0.1], maximize=[False, True]),
         second_group={"lr": 0.003, "beta2_decay": -0.5},
         ranges=dict(lr=rates, beta2_decay=st.floats(-1.5, 0.0),
                     eps=st.tuples(st.sampled_from([None, 1e-30, 1e-10, 1e-3]),
                                   st.sampled_from([0.0, 1e-3, 0.1])),
                     d=st.floats(1.0, 10.0), weight_decay=decays, maximize=flags),
         settings=[dict(lr=0.02, beta2_decay=-0.5, d=2.0, weight_decay=0.01)]),
    # Muon: matrices only. Its grid is 2^7 = 128 combinations, of which the half fraction runs
    # 64 (the whole grid took 44 s of CPU in float64 and float32; every combination of any six
    # options runs). lr is varied by the second group and the mid-run change; None and
    # "original" are the same rule ("original" is in ranges and tests/optim/test_adafactor_muon.py)
    Pair(optedu.Muon, torch.optim.Muon,
         grid=dict(lr=[0.02], weight_decay=[0.1, 0.0], momentum=[0.95, 0.5],
                   nesterov=[True, False],
                   ns_coefficients=[optedu.optim.muon.NS_COEFFICIENTS, (1.875, -1.25, 0.375)],
                   eps=[1e-7, 1.0], ns_steps=[5, 2], adjust_lr_fn=[None, "match_rms_adamw"]),
         second_group={"lr": 0.005, "momentum": 0.9},
         ranges=dict(lr=st.floats(1e-4, 0.1), weight_decay=decays, momentum=st.floats(0.0, 0.99),
                     nesterov=flags,
                     ns_coefficients=st.sampled_from([optedu.optim.muon.NS_COEFFICIENTS,
                                                      (1.875, -1.25, 0.375), (1.5, -0.5, 0.0)]),
                     eps=st.sampled_from([1e-7, 1e-3, 1.0]), ns_steps=st.integers(0, 7),
                     adjust_lr_fn=st.sampled_from([None, "original", "match_rms_adamw"])),
         settings=[dict(lr=0.02, momentum=0.9, adjust_lr_fn="match_rms_adamw"),
                   dict(lr=0.02, nesterov=False, weight_decay=0.0)],
         half_fraction=True),
]

OURS = [pair.ours for pair in PAIRS]
IDS = [pair.name for pair in PAIRS]
TWIN = {pair.ours: pair.theirs for pair in PAIRS}
# optedu and torch classes that take only 2-D parameters
MATRICES_ONLY = {cls for pair in PAIRS if pair.matrices_only for cls in (pair.ours, pair.theirs)}

# (optedu class, torch class, kwargs) for every interop setting, with readable ids
SETTINGS = [(pair.ours, pair.theirs, kwargs) for pair in PAIRS for kwargs in pair.settings]
SETTING_IDS = [f"{ours.__name__}-{i}" for i, (ours, _, _) in enumerate(SETTINGS)]

# Optimizers checked outside the table, each in its own test file (relative to tests/), read
# from the catalogue (optedu.optim.catalogue.Rule.test): those compared with a reference package
# (lion-pytorch, optax, schedulefree, bitsandbytes, ...), and the torch twins the shared grid
# cannot drive (SparseAdam refuses dense gradients; LBFGS steps with a closure and line
# searches). tests/test_layout.py fails on an exported optimizer that is in neither PAIRS nor
# this table.
REFERENCE_TESTS = {rule.name: rule.test for rule in CATALOGUE if rule.test != PARITY_TEST}
