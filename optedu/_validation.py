"""Hyperparameter checks shared by every optimizer.

One helper, one wording: the messages are torch.optim's, word for word, so code that matches on
torch's errors matches on optedu's too (``tests/test_errors.py`` checks that they are identical).
"""

from __future__ import annotations

from collections.abc import Sequence

_LABELS = {
    "lr": "learning rate",
    "eps": "epsilon value",
}


def check_non_negative(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value >= 0`` (NaN fails too).

    >>> check_non_negative("lr", -0.1)
    Traceback (most recent call last):
    ...
    ValueError: Invalid learning rate: -0.1
    """
    if not 0.0 <= value:
        label = _LABELS.get(name, f"{name} value")
        raise ValueError(f"Invalid {label}: {value}")


def check_betas(betas: Sequence[float]) -> tuple[float, float]:
    """Return ``betas`` as a pair of floats, each in ``[0, 1)``."""
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: expected two values, got {tuple(betas)}")
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
    return float(betas[0]), float(betas[1])


def check_nesterov(nesterov: bool, momentum: float, dampening: float) -> None:
    """Nesterov's look-ahead needs a momentum buffer that is not dampened."""
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def check_curvatures(smallest: float, largest: float) -> None:
    """Curvatures of a quadratic must satisfy ``0 < smallest <= largest``."""
    if not 0 < smallest <= largest:
        raise ValueError(f"Invalid curvatures: need 0 < smallest <= largest, got "
                         f"smallest={smallest}, largest={largest}")
