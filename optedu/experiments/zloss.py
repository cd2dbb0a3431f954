"""Evidence for the chapter "Loss spikes", section "The output logits and z-loss": the
softmax normaliser :math:`\\log Z` and the common level of the output logits of the chapter's
character transformer, trained with and without PaLM's z-loss.

``make experiments-zloss`` stores each run as one JSON line in ``experiments/zloss.jsonl`` as
soon as it finishes, keyed ``(setting, seed)``, resumable, with the machine, versions and commit
in ``experiments/zloss.meta.json``; one worker, one thread, torch's CPU kernels pinned
(:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run exactly::

    python -m optedu.experiments zloss

The model and data are :mod:`optedu.experiments.spikes`' (:class:`~.spikes.TinyLM`, the
benchmark's help texts), trained with Adam for :data:`STEPS` steps, at the rate
:data:`~.spikes.HIGH` that makes the attention logits grow, or the healthy
:data:`~.spikes.LOW`, each with the z-loss weight :math:`\\alpha` of :data:`SETTINGS` (the
loss is :math:`\\ell + \\alpha \\overline{\\log^2 Z}`, the mean over the batch's positions),
seeds :data:`SEEDS`. Every :data:`EVERY` steps a run stores the batch's cross-entropy, its mean
:math:`\\log Z`, the mean of all its output logits and the output head's bias mean; at the
end the validation loss.

References: A. Chowdhery et al., *PaLM: scaling language modeling with Pathways*, 2022
(z-loss, :math:`\\alpha = 10^{-4}`); M. Wortsman et al., *Small-scale proxies for large-scale
Transformer training instabilities*, ICLR 2024 (output-logit divergence at small scale).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from optedu.choosing import workloads
from optedu.instruments import store

from .grid import Grid, Job, Key, timed
from .spikes import HIGH, LOW, TinyLM

__all__ = ["GRID", "KEY", "STEPS", "EVERY", "SEEDS", "SETTINGS", "jobs", "train", "execute",
           "read"]

STEPS = 1000
EVERY = 10
SEEDS = (0, 1, 2)
#: setting -> (Adam's rate, the z-loss weight alpha)
SETTINGS: dict[str, tuple[float, float]] = {
    "high": (HIGH, 0.0),
    "high, z=1e-4": (HIGH, 1e-4),
    "high, z=1e-3": (HIGH, 1e-3),
    "low": (LOW, 0.0),
    "low, z=1e-4": (LOW, 1e-4),
}

KEY = Key("setting", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    return [KEY(s, seed) for s in SETTINGS for seed in SEEDS]


def train(setting: str, seed: int, steps: int = STEPS) -> dict[str, Any]:
    """One run of ``setting`` (a key of :data:`SETTINGS`) at ``seed``."""
    if setting not in SETTINGS:
        raise ValueError(f"Invalid setting: {setting!r}")
    lr, alpha = SETTINGS[setting]
    torch.manual_seed(seed)
    model = TinyLM()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches = workloads.text_windows(seed)
    out: dict[str, list[float | None]] = {"loss": [], "log_z": [], "logit_mean": [],
                                          "bias_mean": []}
    for t in range(steps):
        x, y = next(batches)
        z = model(x).flatten(0, 1)
        log_z = torch.logsumexp(z, dim=-1)
        loss = nn.functional.cross_entropy(z, y.flatten())
        total = loss + alpha * (log_z ** 2).mean()      # PaLM's z-loss, alpha log^2 Z
        if t % EVERY == 0:
            out["loss"].append(store.rounded(float(loss.detach())))
            out["log_z"].append(store.rounded(float(log_z.detach().mean())))
            out["logit_mean"].append(store.rounded(float(z.detach().mean())))
            out["bias_mean"].append(store.rounded(float(model.head.bias.detach().mean())))
        opt.zero_grad()
        total.backward()
        opt.step()
    data = workloads.help_text()
    with torch.no_grad():
        val = nn.functional.cross_entropy(model(data.val_x).flatten(0, 1),
                                          data.val_y.flatten())
    return {**out, "val_loss": store.rounded(float(val))}


@timed
def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    return {"setting": job.setting, "seed": job.seed, "steps": STEPS,
            **train(job.setting, job.seed)}


GRID = Grid(name="zloss", chapter="Loss spikes",
            about="the char transformer's output log Z with and without PaLM's z-loss, Adam at "
                  "the high and the healthy rate, three seeds, 15 runs of 1,000 steps.",
            minutes=5, file="zloss.jsonl", job=KEY, jobs=jobs, execute=execute, sample=1)
read = GRID.read
