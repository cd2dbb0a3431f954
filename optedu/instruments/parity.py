"""Run an optedu optimizer beside its torch.optim twin and measure how far apart they end up.

The tests and the chapters use this one harness, so "optedu matches torch" always means the same
experiment: several tensors of different shapes and gradient scales, split into parameter groups
with different hyperparameters, a parameter whose ``grad`` stays ``None``, steps with all-zero
gradients, and gradients that depend on the parameters (so any difference would feed back).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

SHAPES = ((4, 3), (5,), (2, 2, 2))
GRAD_SCALES = (1.0, 1e-3, 1e2)


@dataclass(frozen=True)
class Parity:
    """The outcome of :func:`compare`: largest relative differences, and whether state keys agree.

    ``params`` and ``state`` are maxima over tensors of ``‖a − b‖∞ / ‖b‖∞`` (0 when both are 0).
    """

    params: float
    state: float
    state_keys_match: bool
    steps: int

    @property
    def worst(self) -> float:
        return max(self.params, self.state)

    def ok(self, rtol: float) -> bool:
        return self.state_keys_match and self.worst <= rtol


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖a − b‖∞ / ‖b‖∞``, computed in float64; 0 when both are zero, inf when only ``b`` is.

    NaNs count as equal where both tensors have them (both rules divided 0 by 0 in the same
    place) and as an infinite difference where only one has them.
    """
    a, b = a.detach().double(), b.detach().double()
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    if not torch.equal(nan_a, nan_b):
        return math.inf
    a, b = a.masked_fill(nan_a, 0.0), b.masked_fill(nan_b, 0.0)
    diff = (a - b).abs().max().item() if a.numel() else 0.0
    scale = b.abs().max().item() if b.numel() else 0.0
    if diff == 0.0:
        return 0.0
    return math.inf if scale == 0.0 else diff / scale


def upper_bound(x: float) -> str:
    """A difference as a power-of-ten bound, stable across machines: ``0``, ``< 1e-15``, ..."""
    if x == 0.0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    return f"< 1e{math.floor(math.log10(x)) + 1}"


def _make_params(n_groups: int, dtype: torch.dtype, seed: int, with_unused: bool):
    generator = torch.Generator().manual_seed(seed)
    groups = []
    for _ in range(n_groups):
        groups.append([torch.randn(shape, generator=generator, dtype=dtype) for shape in SHAPES])
    unused = torch.randn(3, generator=generator, dtype=dtype) if with_unused else None
    return groups, unused


def compare(
    ours: Callable[..., torch.optim.Optimizer],
    theirs: Callable[..., torch.optim.Optimizer],
    defaults: Mapping[str, Any] | None = None,
    group_overrides: Sequence[Mapping[str, Any]] = ({},),
    *,
    steps: int = 50,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    zero_grad_steps: Sequence[int] = (7,),
    with_unused: bool = True,
    after_step: Callable[[torch.optim.Optimizer, int], None] | None = None,
) -> Parity:
    """Run ``ours`` and ``theirs`` (optimizer classes or factories) on identical problems.

    Args:
        ours, theirs: called as ``cls(param_groups, **defaults)``.
        defaults: keyword arguments for both constructors.
        group_overrides: one dict per parameter group, its hyperparameters on top of ``defaults``.
        steps: number of optimisation steps.
        seed: seeds the initial parameters and the gradient noise.
        dtype: dtype of parameters and gradients.
        zero_grad_steps: steps (1-based) at which every gradient is exactly zero.
        with_unused: add a parameter, in the last group, whose ``grad`` is always ``None``.
        after_step: called as ``after_step(optimizer, t)`` on both optimizers after each step
            (e.g. to change the learning rate mid-run).
    """
    defaults = dict(defaults or {})
    runs = []
    for factory in (ours, theirs):
        groups, unused = _make_params(len(group_overrides), dtype, seed, with_unused)
        params = [[p.clone().requires_grad_() for p in g] for g in groups]
        extra = unused.clone().requires_grad_() if unused is not None else None
        spec = []
        for i, (group_params, overrides) in enumerate(zip(params, group_overrides)):
            members = list(group_params)
            if extra is not None and i == len(group_overrides) - 1:
                members.append(extra)
            spec.append({"params": members, **overrides})
        optimizer = factory(spec, **defaults)
        runs.append((optimizer, [p for g in params for p in g], extra))

    noise = torch.Generator().manual_seed(seed + 1)
    for t in range(1, steps + 1):
        draws = [torch.randn(p.shape, generator=noise, dtype=dtype) for p in runs[0][1]]
        for optimizer, flat, _ in runs:
            for k, (p, z) in enumerate(zip(flat, draws)):
                scale = GRAD_SCALES[k % len(GRAD_SCALES)]
                # gradient of ½‖p‖² plus noise, on three scales; exactly zero on chosen steps
                g = torch.zeros_like(p) if t in zero_grad_steps else scale * (z + 0.5 * p.detach())
                p.grad = g
            optimizer.step()
            if after_step is not None:
                after_step(optimizer, t)

    (opt_a, flat_a, extra_a), (opt_b, flat_b, extra_b) = runs
    params_a = flat_a + ([extra_a] if extra_a is not None else [])
    params_b = flat_b + ([extra_b] if extra_b is not None else [])
    param_diff = max(relative_difference(a, b) for a, b in zip(params_a, params_b))
    state_diff, keys_match = 0.0, True
    for a, b in zip(params_a, params_b):
        sa, sb = opt_a.state.get(a, {}), opt_b.state.get(b, {})
        if set(sa) != set(sb):
            keys_match = False
            continue
        for key in sa:
            va, vb = sa[key], sb[key]
            if torch.is_tensor(va) and torch.is_tensor(vb):
                state_diff = max(state_diff, relative_difference(va, vb))
            elif va != vb:
                keys_match = False
    return Parity(params=param_diff, state=state_diff, state_keys_match=keys_match, steps=steps)


def ulps(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference between ``a`` and ``b`` in units in the last place of their
    largest entry (in ``a``'s dtype): 0 is bit for bit; 1 is one rounding of the largest
    entry. Counted at the tensor's scale, not each element's, so that an entry that a sum
    cancelled to near zero does not turn one rounding into thousands of its own ulps.

    >>> one = torch.tensor([1.0, 2.0])
    >>> ulps(one, torch.nextafter(one, torch.tensor(3.0)))
    0.5
    """
    if torch.equal(a, b):
        return 0.0
    big = torch.maximum(a.abs().max(), b.abs().max())
    spacing = (torch.nextafter(big, torch.tensor(math.inf, dtype=big.dtype)) - big).item()
    return (a.double() - b.double()).abs().max().item() / spacing


def one_step_ulps(
    first: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    second: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    *,
    shapes: Sequence[tuple[int, ...]] = ((64, 33), (1000,), (3, 5, 7)),
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    warmup: int = 3,
) -> dict[str, float]:
    """Two implementations of a rule from the same state: ``first`` takes ``warmup`` steps,
    ``second`` loads its parameters and state, both take one step with the same gradients.
    Returns the largest distance in ulps (:func:`ulps`) of the parameters and of every state
    entry, so that a difference of rounding is not confused with the drift of many steps."""
    generator = torch.Generator().manual_seed(seed)
    params = [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]
    a = first(params)

    def gradients() -> list[torch.Tensor]:
        return [torch.randn(p.shape, generator=generator, dtype=dtype) for p in params]

    for _ in range(warmup):
        for p, g in zip(params, gradients()):
            p.grad = g
        a.step()
    twins = [p.detach().clone() for p in params]
    b = second(twins)
    flags: list[dict[str, Any]] = [{key: group[key] for key in ("foreach", "fused") if key in group}
             for group in b.param_groups]
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for group, kept in zip(b.param_groups, flags):     # the path stays b's own
        group.update(kept)
    for p, q, g in zip(params, twins, gradients()):
        p.grad, q.grad = g, g.clone()
    a.step()
    b.step()
    worst = {"param": max(ulps(p, q) for p, q in zip(params, twins))}
    for p, q in zip(params, twins):
        for key, value in a.state[p].items():
            if isinstance(value, torch.Tensor) and value.numel() > 1:
                worst[key] = max(worst.get(key, 0.0), ulps(value, b.state[q][key]))
    return worst
