"""Quasi-random search: trials drawn from a contestant's search space, the same on every
workload.

AlgoPerf's external-tuning ruleset draws its trials by quasi-random search (Bousquet et al.,
2017): a low-discrepancy sequence covers a box more evenly than independent uniform draws,
so five trials already probe every part of a three-dimensional space, and every prefix of
the sequence is itself an even cover. Here the sequence is Halton's (the radical inverse of
the trial number in bases 2, 3, 5, ...), shifted by a fixed random offset modulo 1
(Cranley and Patterson's rotation, seed 0) so that no trial sits on the box's corner, and
mapped log-uniformly onto each hyperparameter's range.
"""

from __future__ import annotations

import math
import random

from .contestants import Hyper, Space

__all__ = ["halton", "trials", "PRIMES"]

PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)


def radical_inverse(i: int, base: int) -> float:
    """The digits of ``i`` in ``base`` mirrored about the point: 6 = 110₂ -> 0.011₂ = 0.375."""
    if i < 0:
        raise ValueError(f"Invalid index: {i}")
    result, scale = 0.0, 1.0 / base
    while i:
        i, digit = divmod(i, base)
        result += digit * scale
        scale /= base
    return result


def halton(n: int, dims: int, *, seed: int = 0) -> list[list[float]]:
    """The first ``n`` points of the ``dims``-dimensional Halton sequence in [0, 1), each
    coordinate shifted by a random offset (seeded) modulo 1."""
    if not 1 <= dims <= len(PRIMES):
        raise ValueError(f"Invalid dims: {dims} (1 to {len(PRIMES)})")
    if n < 0:
        raise ValueError(f"Invalid n: {n}")
    rng = random.Random(seed)
    shift = [rng.random() for _ in range(dims)]
    return [[(radical_inverse(i + 1, PRIMES[d]) + shift[d]) % 1.0 for d in range(dims)]
            for i in range(n)]


def trials(space: Space, n: int, *, seed: int = 0) -> list[Hyper]:
    """``n`` hyperparameter settings from ``space`` (name -> (low, high), log-uniform), in a
    fixed order: the first ``k`` of them are the first ``k`` of any longer draw."""
    names = sorted(space)
    points = halton(n, len(names), seed=seed)
    out = []
    for point in points:
        hyper = {}
        for name, u in zip(names, point):
            low, high = space[name]
            hyper[name] = float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
        out.append(hyper)
    return out
