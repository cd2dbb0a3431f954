"""Shared pytest configuration: deterministic, single-threaded torch; hypothesis profile."""

import gc
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]   # tests/optim/test_tiers.py runs small pytest sessions


def pytest_configure(config):
    """torch on one thread and matplotlib off-screen (notebooks keep their inline backend), in
    every process that runs tests; pytest-xdist's controller only hands tests out, and would
    spend a second and a half importing torch before it starts the workers."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    # The cyclic garbage collector's full passes walk every object a worker holds (torch,
    # sympy, jax, pytest's items: a million and more), 0.2 to 1 s each; at Python's default
    # thresholds a few thousand tests made 20 to 30 of them, 4 to 13 CPU-seconds a worker.
    # Rarer young passes (every 10,000 allocations) and full ones (every 100 middle passes)
    # left 2; each worker's peak memory stayed at 1.0 GB. A test that needs garbage gone
    # calls gc.collect() itself.
    gc.set_threshold(10_000, 20, 100)
    import matplotlib
    import torch

    matplotlib.use("Agg")
    torch.set_num_threads(1)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """An xdist worker leaves at once when its session is over: it has sent every report and
    "workerfinished" (xdist's pytest_sessionfinish), and the interpreter's own finalisation
    (torch, jax and the objects of a few thousand tests freed one by one) took 3 to 5 s of a
    60 s quick tier, in each worker, while the controller waited."""
    if hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# Two tiers: ``make test`` and CI set OPTEDU_TESTS=full (every grid combination of
# tests/optimizers.py, 40 hypothesis examples per property); a plain ``pytest`` is quick
# (a pairwise cover of each grid, 5 examples). OPTEDU_HYPOTHESIS_EXAMPLES overrides both.
FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"
settings.register_profile(
    "optedu", max_examples=int(os.environ.get("OPTEDU_HYPOTHESIS_EXAMPLES",
                                              "40" if FULL else "5")),
    deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
)
settings.load_profile("optedu")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """The quick tier deselects the tests marked ``full`` (``@pytest.mark.full``, registered in
    pyproject.toml), instead of reporting hundreds of skips; the full tier runs them."""
    if FULL:
        return
    kept, left_out = [], []
    for item in items:
        (left_out if item.get_closest_marker("full") else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture
def world_of_one(monkeypatch):
    """A one-process gloo group on the loopback interface, for a rank's code run in-process
    (tests/distributed/test_distributed.py, tests/distributed/test_flat_zero.py)."""
    import torch.distributed as dist

    from optedu.distributed import launcher

    loopback = launcher.loopback_interface()
    if loopback is not None:
        monkeypatch.setenv("GLOO_SOCKET_IFNAME", loopback)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()
