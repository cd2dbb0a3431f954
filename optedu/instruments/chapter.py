r"""The chapter kit: the set-up, glue helpers and small loops every chapter shares.

A chapter's hidden first cell runs :func:`setup` and takes what it needs from here, so no
chapter writes its own copy of this plumbing. What a chapter teaches stays in the chapter.

The glue helpers store text for ``{glue:text}`` in the prose, each with one behaviour:

* :func:`glue_text`: ``str(value)``, whatever ``value`` is;
* :func:`glue_value`: an ``int`` as the integer (the prose may format it, ``{glue:text}`k:,d```),
  anything else as its ``str``; with ``digits``, a float written by :func:`~.display.num`;
* :func:`glue_num`: a number written by :func:`~.display.num` (``2.6 × 10⁻⁶``, ``0.37``), a
  string as it is;
* :func:`prefixed`: one of them with the chapter's key prefix put in front of every key.

All store through :func:`~.display.glue`, which refuses a string the website would not show as
itself (``10,000`` read as the tuple ``(10, 0)``).

The formatters write several runs' values as one piece of prose, ``0.18–0.21`` or
``0.37 (0.35–0.40)``; they return text and glue nothing:

>>> value_range([0.212, 0.18])
'0.18–0.21'
>>> value_range([3.0, 3.0], spec=".1f", collapse=True)
'3.0'
>>> median_range([0.37, 0.352, 0.4])
'0.37 (0.35–0.40)'
>>> mean_pm([1.0, 2.0, 3.0])
'2.0 ± 1'
>>> iqr({"median": 1.234, "q1": 1.1, "q3": 1.5})
'1.23 (IQR 1.10–1.50)'

:func:`setting_label` writes a stored run's setting in the page's notation: ``beta2=0.95`` as
``β₂ = 0.95``.

Two small loops that several chapters ran, each the same line for line: :func:`regression_run`
(a rule on a fixed small regression, for checking one implementation against another) and
:func:`stream_path` (a rule fed a fixed gradient stream). A loop that a chapter teaches stays in
the chapter.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections.abc import Callable, Iterable, Mapping

from .display import compact_figures, glue, num, power_of_ten


def setup(dtype=None, *, figures: bool = True, scale: float = 2) -> None:
    """What every chapter's first cell does: one CPU thread, and figures as palette PNGs.

    ``dtype`` (for example ``torch.float64``) becomes torch's default dtype; ``figures=False``
    leaves matplotlib's figures as IPython shows them; ``scale`` is their resolution
    (:func:`~.display.compact_figures`). One thread, because the stored outputs are those of
    one thread: torch's sums over several threads come in another order.
    """
    import torch

    torch.set_num_threads(1)
    if dtype is not None:
        torch.set_default_dtype(dtype)
    if figures:
        compact_figures(scale=scale)


# ---- glue ------------------------------------------------------------------------------------


def glue_text(key: str, value: object) -> None:
    """Glue ``str(value)`` under ``key``, hidden, for the prose: ``glue_text("n", 3)`` stores ``'3'``."""
    glue(key, str(value), display=False)


def glue_value(key: str, value: object, digits: int | None = None) -> None:
    """Glue an ``int`` as the integer, anything else as its ``str``, hidden, under ``key``.

    An integer glued as one can be formatted by the prose (``{glue:text}`key:,d```); a bool is
    an ``int`` and is stored as ``True``/``False``. With ``digits``, a ``float`` is written by
    :func:`~.display.num` with that many significant digits; without, as ``str`` writes it.
    """
    if isinstance(value, int):
        glue(key, value, display=False)
    elif digits is not None and isinstance(value, float):
        glue(key, num(value, digits), display=False)
    else:
        glue(key, str(value), display=False)


def glue_num(key: str, value: float | str, digits: int = 2) -> None:
    """Glue a number written for reading (:func:`~.display.num`, ``digits`` significant
    digits), or a string as it is, hidden, under ``key``.

    An ``int`` is a number here: ``glue_num("n", 5)`` stores ``'5.0'`` (:func:`glue_value`
    keeps it an integer).
    """
    glue(key, value if isinstance(value, str) else num(value, digits), display=False)


def prefixed(prefix: str, store: Callable[..., None] = glue_value, **defaults) -> Callable[..., None]:
    """``store`` with ``prefix`` put in front of every key: a chapter's short name for its glue.

    >>> g = prefixed("bs_")          # g("steps", 120) glues 120 under "bs_steps"
    >>> g.__name__
    'glue_value_bs_'

    ``defaults`` are arguments of ``store`` that a call may give otherwise, by name or in its
    place: with ``g = prefixed("sha_", digits=2)``, ``g("x", 0.1234, 3)`` writes three digits.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"Invalid prefix: {prefix!r} (expected a non-empty string)")

    signature = inspect.signature(store)
    signature.bind_partial(prefix, **defaults)  # a default that store lacks fails here

    def store_prefixed(name: str, *args, **kwargs) -> None:
        bound = signature.bind(prefix + name, *args, **kwargs)
        for key, value in defaults.items():   # where the call did not give the argument
            bound.arguments.setdefault(key, value)
        store(*bound.args, **bound.kwargs)

    store_prefixed.__name__ = f"{store.__name__}_{prefix}"
    store_prefixed.__doc__ = f"{store.__name__} under '{prefix}' + name."
    return store_prefixed


# ---- several runs as prose -------------------------------------------------------------------


def _writer(digits: int, spec: str | None) -> Callable[[float], str]:
    """:func:`~.display.num` with ``digits`` significant digits, or ``format(x, spec)``
    with a value that rounds to zero written without a sign (``-0.000`` as ``0.000``)."""
    if spec is not None:
        return lambda x: _unsigned_zero(format(x, spec))
    return lambda x: num(x, digits)


def _unsigned_zero(text: str) -> str:
    """``text`` without its sign where every digit is 0: a value that rounds to zero."""
    if text.strip()[:1] in "+-" and not any(c in "123456789" for c in text):
        return text.replace(text.strip()[0], "", 1)
    return text


def value_range(values: Iterable[float], digits: int = 2, *, spec: str | None = None,
                sep: str = "–", collapse: bool = False, count_nonfinite: str | None = None) -> str:
    """``'low–high'`` of several runs' values.

    Each end is written by :func:`~.display.num` with ``digits`` significant digits, or with the
    format ``spec`` (``".3f"``) when given; ``sep`` joins them (``" to "``). ``collapse``: one
    value when both ends read the same (``'0.30'``, not ``'0.30–0.30'``). ``count_nonfinite``:
    where some values are infinite or NaN, say how many instead (``count_nonfinite="diverged"``:
    ``'1 of 3 diverged'``).
    """
    values = list(values)
    if not values:
        raise ValueError("Invalid values: empty (expected at least one value)")
    bad = sum(not math.isfinite(v) for v in values) if count_nonfinite is not None else 0
    if bad:
        return f"{bad} of {len(values)} {count_nonfinite}"
    write = _writer(digits, spec)
    low, high = write(min(values)), write(max(values))
    return low if collapse and low == high else f"{low}{sep}{high}"


def median_range(values: Iterable[float], digits: int = 2, *, spec: str | None = None,
                 sep: str = "–", brackets: str = "()", nonfinite: str | None = None) -> str:
    """``'median (low–high)'`` of several runs' values: numpy's median (the middle two
    averaged for an even count), the numbers written as :func:`value_range` writes them.

    ``brackets`` hold the range (``"[]"``). ``nonfinite``: the text to return instead when a
    value is infinite or NaN (``"diverged"``); without it such values are written as they are.
    """
    return _center_range(values, "median", digits, spec, sep, brackets, nonfinite)


def mean_range(values: Iterable[float], digits: int = 2, *, spec: str | None = None,
               sep: str = "–", brackets: str = "()", nonfinite: str | None = None) -> str:
    """``'mean (low–high)'`` of several runs' values: numpy's mean, in the values' own dtype;
    otherwise as :func:`median_range`."""
    return _center_range(values, "mean", digits, spec, sep, brackets, nonfinite)


def _center_range(values, center, digits, spec, sep, brackets, nonfinite) -> str:
    import numpy as np

    if len(brackets) != 2:
        raise ValueError(f"Invalid brackets: {brackets!r} (expected two characters)")
    values = values if isinstance(values, np.ndarray) else list(values)
    if len(values) == 0:
        raise ValueError("Invalid values: empty (expected at least one value)")
    if nonfinite is not None and not all(math.isfinite(v) for v in values):
        return nonfinite
    middle = np.median(values) if center == "median" else np.mean(values)
    write = _writer(digits, spec)
    return (f"{write(middle)} {brackets[0]}{write(min(values))}{sep}"
            f"{write(max(values))}{brackets[1]}")


def mean_pm(values: Iterable[float], digits: int = 2) -> str:
    """``'mean ± standard deviation'`` over runs: the mean to ``digits`` significant digits,
    the (n - 1) standard deviation to one, both by :func:`~.display.num`."""
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError(f"Invalid values: {len(values)} (expected at least two)")
    return f"{num(statistics.fmean(values), digits)} ± {num(statistics.stdev(values), 1)}"


def iqr(quartiles: dict, spec: str = ".2f", label: str = "IQR ") -> str:
    """A stored median and quartiles (keys ``median``, ``q1``, ``q3``) as
    ``'median (IQR q1–q3)'``, each in the format ``spec``; ``label=""`` leaves out the
    ``IQR`` where a table's header says it (``'1.23 (1.10–1.50)'``)."""
    q = quartiles
    return f"{q['median']:{spec}} ({label}{q['q1']:{spec}}–{q['q3']:{spec}})"


def listed(values: Iterable[object], last: str = "and") -> str:
    """Values as prose reads them, not as Python prints a list: ``listed([35, 65, 85]) ==
    '35, 65 and 85'``; ``last=","`` for a sequence read in order (``'0.1, 0.05, 0.025'``)."""
    words = [str(v) for v in values]
    if not words:
        raise ValueError("Invalid values: none (expected at least one)")
    if len(words) == 1 or last == ",":
        return ", ".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


#: torch's argument names as the book's formulas write them
SYMBOLS = {"lr": "η", "beta1": "β₁", "beta2": "β₂", "eps": "ε", "weight_decay": "λ"}


def setting_label(name: str, words: Mapping[str, str] | None = None) -> str:
    """A stored run's setting as the page writes it, not as the store keys it: each
    ``key=value`` part (parts split at ``", "``) as ``symbol = value``, the key through
    :data:`SYMBOLS` and then ``words`` (the chapter's own names), a value in e-notation as
    a power of ten; a part without ``=`` through ``words``, else as it is.

    >>> setting_label("beta2=0.95")
    'β₂ = 0.95'
    >>> setting_label("high, z=1e-4", {"z": "α"})
    'high, α = 10⁻⁴'
    """
    names = {**SYMBOLS, **(words or {})}
    parts = []
    for part in name.split(", "):
        key, equals, value = part.partition("=")
        if not equals:
            parts.append(names.get(part, part))
            continue
        mantissa, e, exponent = value.partition("e")
        if e and mantissa.replace(".", "", 1).isdigit() and exponent.lstrip("+-").isdigit():
            power = power_of_ten(int(exponent))
            value = power if mantissa == "1" else f"{mantissa} × {power}"
        parts.append(f"{names.get(key, key)} = {value}")
    return ", ".join(parts)


def steps_or_missed(steps: float, missed: str = "missed") -> str:
    """Steps to a target as a whole number, or ``missed`` where the run never reached it
    (``inf``): ``steps_or_missed(412.0) == '412'``."""
    return missed if math.isinf(steps) else f"{steps:.0f}"


# ---- a small training loop -------------------------------------------------------------------


def regression_run(make: Callable, dtype=None, steps: int = 30, seed: int = 0):
    """``steps`` full-batch steps of ``make(params)`` on a fixed small regression; the final
    parameters, flattened.

    The model is ``nn.Linear(6, 3)`` fitted to 32 random inputs and targets by mean squared
    error, all drawn after ``torch.manual_seed(seed)`` in ``dtype`` (default float64): a run
    whose every number depends on the rule, for checking one implementation against another.
    """
    import torch

    dtype = torch.float64 if dtype is None else dtype
    torch.manual_seed(seed)
    net = torch.nn.Linear(6, 3).to(dtype)
    x, y = torch.randn(32, 6, dtype=dtype), torch.randn(32, 3, dtype=dtype)
    opt = make(net.parameters())
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def stream_path(make: Callable, grads):
    """The path of one tensor, from zeros in the gradients' dtype, that ``make([theta])``
    steps with a fixed gradient stream, one row of ``grads`` per step: ``len(grads) + 1``
    points.

    No loss and no backward pass: each step's gradient is given, so two rules can be compared
    on exactly the same gradients.
    """
    import torch

    theta = torch.zeros(grads.shape[1:], dtype=grads.dtype, requires_grad=True)
    opt = make([theta])
    path = [theta.detach().clone()]
    for g in grads:
        theta.grad = g.clone()
        opt.step()
        path.append(theta.detach().clone())
    return torch.stack(path)
