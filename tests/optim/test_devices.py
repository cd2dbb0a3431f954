"""Every rule of the catalogue on an accelerator: the same three steps on the CPU and on the
device, on the seeded float64 MLP of ``optedu.distributed.sharded_rules`` (the catalogue's
small run), and the largest difference of the weights, relative to how far they moved.

A rule that makes a tensor without naming the device (``torch.eye(n)`` beside a CUDA matrix)
raises there; the difference bounds what the device's own kernels change (other sums, other
orders). Skipped where no CUDA device is present. ``python tests/optim/test_devices.py OUT``
writes the measured differences as JSON.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

from optedu.distributed import sharded_rules as sr

#: SparseAdam takes sparse gradients only (an embedding's), which the MLP has not
NAMES = [n for n in sr.rule_names() if n != "SparseAdam"]
#: the largest difference allowed, relative to the move. Measured on an NVIDIA H200 (torch
#: 2.11, CUDA 13) against this machine's CPU: at most 5.9e-12 (Shampoo; 3.7e-15 Adam), so
#: 1e-9 for every rule but two, whose step decomposes a matrix whose answer is not unique
#: to rounding:
#:
#: * GaLoreAdamW projects on the leading singular vectors of the gradient, which move by
#:   rounding over the gap of the singular values: measured 2.5e-6, bound 1e-5;
#: * SOAP runs Adam in the eigenbasis of its statistics, which is not unique where they are
#:   rank-deficient (the output layer's 16 × 16 statistic has rank 4 at most): each solver
#:   picks its own basis of the null space, and Adam's per-coordinate scale differs in
#:   it. Measured 41 % of the move after three steps: no bound, the run must only succeed.
BOUND = 1e-9
BOUNDS = {"GaLoreAdamW": 1e-5, "SOAP": None}


def run(name: str, device: str) -> list[torch.Tensor]:
    """The catalogue's small run of ``name`` (:data:`sr.STEPS` steps with a closure) on
    ``device``; the weights after it, on the CPU."""
    with sr.default_dtype(torch.float64):
        return _run(name, device)


def _run(name: str, device: str) -> list[torch.Tensor]:
    model = sr.make_model(name).to(device)
    x, y = (t.to(device) for t in sr.make_batch())
    opt = sr.class_of(name)(sr._groups(name, model), **sr.arguments(name))
    if hasattr(opt, "train"):
        opt.train()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    for _ in range(sr.STEPS):
        closure()                         # SAM's first half needs the gradient
        opt.step(closure)
    if hasattr(opt, "eval"):
        opt.eval()
    return [p.detach().cpu() for p in model.parameters()]


def difference(name: str, device: str) -> float:
    """The largest difference between the weights after the run on the CPU and on
    ``device``, relative to the largest move of a weight on the CPU."""
    start = [p.detach() for p in sr.make_model(name).parameters()]
    here, there = run(name, "cpu"), run(name, device)
    move = max((a - s).abs().max().item() for a, s in zip(here, start))
    gap = max((a - b).abs().max().item() for a, b in zip(here, there))
    return gap / move


def bound(name: str) -> float | None:
    return BOUNDS.get(name, BOUND)


def test_the_comparison_sees_a_difference(monkeypatch):
    """The check can fail: a run that moves one weight by a millionth of the move is caught,
    and the same run on the same device is exactly equal."""
    assert difference("Adam", "cpu") == 0.0
    honest = run

    def bent(name: str, device: str) -> list[torch.Tensor]:
        out = honest(name, "cpu")
        if device == "meta-bent":
            out[0] = out[0].clone()
            out[0].view(-1)[0] += 1e-6
        return out

    monkeypatch.setattr(sys.modules[__name__], "run", bent)
    assert difference("Adam", "meta-bent") > BOUND


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_the_rule_runs_on_cuda_as_on_the_cpu(name):
    gap = difference(name, "cuda")
    assert bound(name) is None or gap <= bound(name), (name, gap)


if __name__ == "__main__":
    rows = {}
    for name in NAMES:
        try:
            rows[name] = {"difference": difference(name, "cuda"), "bound": bound(name)}
        except Exception as error:  # noqa: BLE001 - every rule is reported
            rows[name] = {"error": repr(error)[:300]}
        print(name, rows[name], flush=True)
    with open(sys.argv[1], "w") as sink:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "rules": rows}, sink, indent=1)
