"""Argument checks shared by every optedu module: optimizers, schedules, schedulers, tools.

One helper per kind of check, one wording everywhere::

    Invalid <name> value: <value>                      (torch.optim's own wording)
    Invalid <name> value: <value> (expected <what>)    (where torch has no message)

``lr`` reads "learning rate" and ``eps`` "epsilon value", as in torch.optim, so code that matches
on torch's errors matches on optedu's too (``tests/optim/test_errors.py`` and
``tests/lr_scheduler/test_lr_scheduler.py`` check that the messages are identical wherever torch has one).
Every check raises ``ValueError`` (never ``assert``); NaN fails every numeric check.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

_LABELS = {
    "lr": "learning rate",
    "eps": "epsilon value",
}


def invalid(name: str, value: Any, expected: str | None = None) -> ValueError:
    """The ``ValueError`` for a bad argument, in the one wording (returned, for ``raise``).

    >>> invalid("lr", -0.1)
    ValueError('Invalid learning rate: -0.1')
    >>> invalid("window", 0, "an integer >= 1")
    ValueError('Invalid window value: 0 (expected an integer >= 1)')
    """
    label = _LABELS.get(name, f"{name} value")
    suffix = f" (expected {expected})" if expected is not None else ""
    return ValueError(f"Invalid {label}: {value}{suffix}")


def _at_least(value: Any, bound: float, strict: bool) -> bool:
    """``value > bound`` (strict) or ``value >= bound``; False for bools, NaN and non-numbers."""
    if isinstance(value, bool):
        return False
    try:
        return bool(value > bound) if strict else bool(value >= bound)
    except TypeError:
        return False


def check_non_negative(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value >= 0`` (NaN fails too), in torch's wording.

    >>> check_non_negative("lr", -0.1)
    Traceback (most recent call last):
    ...
    ValueError: Invalid learning rate: -0.1
    """
    if not _at_least(value, 0.0, strict=False):
        raise invalid(name, value)


def check_tensor_lr(lr: Any, foreach: bool | None = False) -> None:
    """torch's checks of a learning rate given as a tensor, made before its value is checked:
    one element, and (Adam, AdamW) not with ``foreach=True``. A float passes.

    >>> check_tensor_lr(torch.tensor([0.1, 0.1]))
    Traceback (most recent call last):
    ...
    ValueError: Tensor lr must be 1-element
    """
    if isinstance(lr, torch.Tensor):
        if foreach:
            raise ValueError("lr as a Tensor is not supported for capturable=False and "
                             "foreach=True")
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")


def check_greater(name: str, value: Any, bound: float = 0.0) -> None:
    """Raise ``ValueError`` unless ``value > bound`` (``bound`` 0: a positive number)."""
    if not _at_least(value, bound, strict=True):
        raise invalid(name, value, f"a number > {bound:g}")


def check_interval(name: str, value: Any, low: float, high: float, *,
                   open_low: bool = False) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (``low < value`` with ``open_low``)."""
    if not (_at_least(value, low, strict=open_low) and _at_least(high, value, strict=False)):
        bracket = "(" if open_low else "["
        raise invalid(name, value, f"a number in {bracket}{low:g}, {high:g}]")


def check_integer(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (Python's or numpy's, not a bool) in
    ``[minimum, maximum]`` (no upper limit when ``maximum`` is ``None``)."""
    ok = (isinstance(value, numbers.Integral) and not isinstance(value, bool)
          and minimum <= int(value) and (maximum is None or value <= maximum))
    if not ok:
        expected = (f"an integer >= {minimum}" if maximum is None
                    else f"an integer in [{minimum}, {maximum}]")
        raise invalid(name, value, expected)


def check_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """Return ``optimizer`` if it is a ``torch.optim.Optimizer`` (optedu's are), else raise
    ``TypeError`` in torch's lr_scheduler wording."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    return optimizer


def check_betas(betas: Sequence[float]) -> tuple[float, float]:
    """Return ``betas`` as a pair of floats, each in ``[0, 1)``."""
    if len(betas) != 2:
        raise invalid("betas", tuple(betas), "two values")
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")  # torch's
    return float(betas[0]), float(betas[1])


def check_beta_tuple(betas: Sequence[float], count: int, *,
                     last_may_be_one: bool = False) -> tuple[float, ...]:
    """Return ``betas`` as ``count`` floats, each in ``[0, 1)`` (torch's wording).

    CAME's three betas; Adan's and AdEMAMix's, whose last may be 1
    (``last_may_be_one``: a slow average that never forgets, as their references allow).

    >>> check_beta_tuple((0.9, 0.999, 1.0), 3)
    Traceback (most recent call last):
    ...
    ValueError: Invalid beta parameter at index 2: 1.0
    >>> check_beta_tuple((0.9, 0.999, 1.0), 3, last_may_be_one=True)
    (0.9, 0.999, 1.0)
    >>> check_beta_tuple((0.9, 0.99), 3)
    Traceback (most recent call last):
    ...
    ValueError: Invalid betas value: (0.9, 0.99) (expected three values)
    """
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) \
            or len(betas) != count:
        shown = tuple(betas) if isinstance(betas, Sequence) else betas
        raise invalid("betas", shown, f"{_WORDS.get(count, count)} values")
    for index, beta in enumerate(betas):
        closed = last_may_be_one and index == count - 1
        if not _at_least(beta, 0.0, strict=False) or not _at_least(1.0, beta,
                                                                   strict=not closed):
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")  # torch's
    return tuple(float(beta) for beta in betas)


_WORDS = {2: "two", 3: "three", 4: "four"}


def check_beta_types(betas: Sequence[Any], foreach: bool | None) -> None:
    """torch.optim.Adam's checks of the betas' types, in its words: both floats or both
    tensors, and tensors not with ``foreach=True``; then optedu's own: floats (optedu's Adam
    takes no tensor betas)."""
    if not (all(isinstance(beta, float) for beta in betas)
            or all(isinstance(beta, torch.Tensor) for beta in betas)):
        raise ValueError("betas must be either both floats or both Tensors")
    for index, beta in enumerate(betas):
        if isinstance(beta, torch.Tensor):
            if foreach:
                raise ValueError(f"betas[{index}] as a Tensor is not supported for "
                                 "capturable=False and foreach=True")
            raise invalid("betas", tuple(betas), "two floats")


def check_adam_arguments(lr: Any, eps: Any, betas: Sequence[float],
                         weight_decay: Any) -> tuple[float, float]:
    """The checks of Adam and its relatives, in torch.optim.Adam's order; returns ``betas``."""
    check_tensor_lr(lr)
    check_non_negative("lr", lr)
    check_non_negative("eps", eps)
    betas = check_betas(betas)
    check_non_negative("weight_decay", weight_decay)
    return betas


def check_nesterov(nesterov: bool, momentum: float, dampening: float) -> None:
    """Nesterov's look-ahead needs a momentum buffer that is not dampened (torch's message)."""
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def check_curvatures(smallest: float, largest: float) -> None:
    """Curvatures of a quadratic must satisfy ``0 < smallest <= largest``."""
    if not 0 < smallest <= largest:
        raise ValueError(f"Invalid curvatures: need 0 < smallest <= largest, got "
                         f"smallest={smallest}, largest={largest}")


def check_bound(label: str, value: Any, bound: float, *, above: bool = True) -> None:
    """Raise ``ValueError`` unless ``value >= bound`` (``value <= bound`` with ``above=False``;
    NaN fails), in the wording of torch's newer optimizers (Adafactor, Muon), whose ``label`` is
    free text: ``Learning rate should be >= 0 but is: -0.1``."""
    ok = _at_least(value, bound, strict=False) if above else _at_least(bound, value, strict=False)
    if not ok:
        raise ValueError(f"{label} should be {'>=' if above else '<='} {bound:g} but is: {value}")
