"""Shared pytest configuration: deterministic, single-threaded torch; hypothesis profile."""

import os

import matplotlib
import torch
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")  # tests draw figures off-screen (notebooks keep their inline backend)
torch.set_num_threads(1)

settings.register_profile(
    "optedu", max_examples=int(os.environ.get("OPTEDU_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
)
settings.load_profile("optedu")
