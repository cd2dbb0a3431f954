r"""Training with 16-bit weights, from scratch: fp32 master weights, Kahan-
compensated updates and stochastic rounding.

A bfloat16 number keeps 8 significant bits: between 1 and 2 its spacing
(one *ulp*) is :math:`2^{-7} \approx 0.0078`. Round-to-nearest turns
:math:`w + \Delta` back into :math:`w` whenever :math:`|\Delta|` is below
half an ulp of :math:`w`, so small updates are lost and training *stalls*.
Three remedies, each a small function here:

* **master weights** (Micikevicius et al., 2018): the optimizer updates an
  fp32 copy; the 16-bit weights are its rounded image
  (:class:`MasterWeights`; 4 more bytes per parameter);
* **Kahan summation** (Kahan, 1965; torch-optimi's ``kahan_sum``): a 16-bit
  buffer keeps the rounding error of each update and adds it back to the
  next (:func:`kahan_add_`; 2 more bytes per parameter);
* **stochastic rounding** (Gupta et al., 2015): round up or down at random
  with probabilities that make the rounding unbiased, so the *expected*
  weight follows the exact update (:func:`stochastic_round_to_bf16`; no
  memory).

:class:`LowPrecisionOptimizer` runs an optedu optimizer's update on 16-bit
weights with any of the three roundings; :func:`bf16_stall` measures them
against float64. Loss scaling for float16 is in :mod:`optedu.precision.loss_scaling`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch

from optedu.optim._validation import check_integer, check_non_negative, invalid
from optedu.optim.optimizer import Optimizer

# ----------------------------------------------------------------------------
# fp32 master weights


def master_copy(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """An fp32 copy of each (16-bit) parameter: the master weights."""
    return [p.detach().float().clone() for p in params]


@torch.no_grad()
def grads_to_master_(params: list[torch.Tensor],
                     master: list[torch.Tensor]) -> None:
    """Cast each model gradient up to fp32 as its master's ``grad`` (a
    missing gradient stays ``None``)."""
    for p, q in zip(params, master, strict=True):
        q.grad = None if p.grad is None else p.grad.float()   # ĝ = fp32(g)


@torch.no_grad()
def master_to_model_(master: list[torch.Tensor],
                     params: list[torch.Tensor]) -> None:
    """Round each master weight to its model parameter's dtype (nearest)."""
    for p, q in zip(params, master, strict=True):
        p.copy_(q)                                            # w = round(θ)


class MasterWeights:
    """An optimizer that steps fp32 master copies of 16-bit parameters.

    ``step()``: gradients cast up to fp32 (:func:`grads_to_master_`), the
    inner optimizer's step on the masters (through ``scaler.step`` if a
    :class:`~optedu.precision.loss_scaling.LossScaler` or GradScaler is given), the
    masters rounded back into the model (:func:`master_to_model_`), the
    fp32 gradients released. Memory per parameter: 2 (weights) + 2
    (gradients) + 4 (master) + the inner optimizer's fp32 state, and 4 for
    the fp32 gradients while the step runs.

    Args:
        params: the model's parameters (an iterable of tensors).
        make_optimizer: builds the inner optimizer from the master tensors,
            e.g. ``lambda p: optedu.AdamW(p, lr=1e-3)``.
    """

    def __init__(self, params: Iterable[torch.Tensor],
                 make_optimizer: Callable[[list[torch.Tensor]],
                                          torch.optim.Optimizer]) -> None:
        self.params = list(params)
        if not self.params or not all(isinstance(p, torch.Tensor)
                                      for p in self.params):
            raise TypeError("MasterWeights expects a non-empty iterable of "
                            "tensors")
        self.master = master_copy(self.params)
        self.optimizer = make_optimizer(self.master)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def step(self, scaler: Any = None) -> None:
        grads_to_master_(self.params, self.master)
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)
        master_to_model_(self.master, self.params)
        for q in self.master:
            q.grad = None

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(),
                "master": [q.clone() for q in self.master]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict["optimizer"])
        with torch.no_grad():
            for q, saved in zip(self.master, state_dict["master"], strict=True):
                q.copy_(saved)
        master_to_model_(self.master, self.params)


# ----------------------------------------------------------------------------
# Kahan summation and stochastic rounding


@torch.no_grad()
def kahan_add_(param: torch.Tensor, update: torch.Tensor,
               compensation: torch.Tensor, alpha: float = 1.0) -> None:
    r"""``param += alpha * update`` with the rounding error carried over.

    .. math::
        c \leftarrow c + \alpha u,\quad w' \leftarrow w + c,\quad
        c \leftarrow c + (w - w')

    :math:`c` is what the rounded sum :math:`w'` failed to absorb; it joins
    the next update. Each operation rounds to the tensors' dtype. This is
    torch-optimi 0.3.3's ``kahan_sum`` step (``optimi/sgd.py``), from
    torchdistX's ``AnyPrecisionAdamW``.
    """
    compensation.add_(update, alpha=alpha)   # c = c + αu
    previous = param.clone()
    param.add_(compensation)                 # w' = w + c (rounded)
    compensation.add_(previous.sub_(param))  # c = c + (w - w'): the part lost


def stochastic_round_to_bf16(
        x: torch.Tensor,
        generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Round float32 ``x`` to bfloat16, up with probability equal to the
    fraction of the gap it has crossed, so :math:`E[\mathrm{round}(x)] = x`.

    bfloat16 is float32 with the low 16 bits cut. Adding a uniform random
    integer :math:`r \in [0, 2^{16})` to the bits of :math:`x` and cutting
    rounds the magnitude up exactly when :math:`r` reaches the low bits'
    complement: probability (low bits) / :math:`2^{16}`. The same algorithm
    as ``pytorch_optimizer.copy_stochastic`` (from PyTorch issue 120376).
    Finite inputs; the largest float32 values may round to ``inf``.
    """
    bits = x.float().contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32,
                          generator=generator, device=x.device)
    cut = (bits + noise).bitwise_and_(-65536)   # keep the top 16 bits
    return cut.view(torch.float32).to(torch.bfloat16)


ROUNDINGS = ("nearest", "kahan", "stochastic")


class LowPrecisionOptimizer:
    """Step an optedu optimizer whose parameters are bfloat16 (or float16).

    For each parameter :math:`w` with a gradient: the rule runs on an fp32
    copy (fp32 gradient, fp32 state), giving :math:`\\theta = w + \\Delta`;
    then the new 16-bit weight is

    * ``"nearest"``: :math:`\\mathrm{round}(\\theta)` (plain 16-bit
      training: updates under half an ulp are lost);
    * ``"kahan"``: :func:`kahan_add_` of :math:`\\Delta = \\theta - w`
      (fp32) with a 16-bit buffer ``state["kahan_comp"]``;
    * ``"stochastic"``: :func:`stochastic_round_to_bf16` of :math:`\\theta`.

    Differences from torch-optimi: optimi keeps the state in the weights'
    dtype and applies its update in that dtype; here the state is fp32 and
    the update :math:`\\Delta` is formed in fp32. The rounding steps are
    the same functions.

    Args:
        optimizer: an optedu optimizer over 16-bit parameters whose step is
            optedu's per-parameter loop of ``init_state`` and ``update`` (SGD,
            Adam, AdamW, Lion, ...; not L-BFGS, SparseAdam, schedule-free).
        rounding: one of ``"nearest"``, ``"kahan"``, ``"stochastic"``.
        generator: random numbers for ``"stochastic"``.
    """

    def __init__(self, optimizer: Optimizer, rounding: str = "kahan",
                 generator: torch.Generator | None = None) -> None:
        # torch wraps step() in a profiling hook; optedu.optim.foreach's step
        # falls back to the per-parameter loop
        step = inspect.unwrap(type(optimizer).step)
        if (not isinstance(optimizer, Optimizer)
                or type(optimizer).update is Optimizer.update
                or step.__module__ not in ("optedu.optim.optimizer",
                                           "optedu.optim.foreach")):
            raise TypeError(f"{type(optimizer).__name__} is not an optedu "
                            "optimizer with optedu's per-parameter step")
        if rounding not in ROUNDINGS:
            raise invalid("rounding", repr(rounding),
                          "one of " + ", ".join(ROUNDINGS))
        self.optimizer = optimizer
        self.rounding = rounding
        self.generator = generator

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @torch.no_grad()
    def step(self) -> None:
        opt = self.optimizer
        for group in opt.param_groups:
            for w in group["params"]:
                if w.grad is None:
                    continue
                if self.rounding == "stochastic" and w.dtype != torch.bfloat16:
                    raise TypeError("stochastic rounding writes bfloat16, "
                                    f"not {w.dtype}")
                # exact fp32 copy of the weight (a copy even if w is fp32)
                theta = w.to(torch.float32, copy=True)
                theta.grad = w.grad.float()
                state = opt.state.get(w)
                if state is None:
                    state = opt.init_state(theta, group)   # fp32 state
                opt.update(theta, theta.grad, state, group)
                self._write(w, theta, state)
                if state:   # like torch.optim: no entry for a stateless rule
                    opt.state[w] = state

    def _write(self, w: torch.Tensor, theta: torch.Tensor,
               state: dict[str, Any]) -> None:
        if self.rounding == "nearest":
            w.copy_(theta)
        elif self.rounding == "stochastic":
            w.copy_(stochastic_round_to_bf16(theta, self.generator))
        else:
            if "kahan_comp" not in state:
                state["kahan_comp"] = torch.zeros_like(w)
            kahan_add_(w, theta.sub_(w.float()), state["kahan_comp"])

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()


# ----------------------------------------------------------------------------
# The measured demonstration: bf16 weights stall; Kahan and stochastic
# rounding do not


def _quadratic(dim: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Curvatures a in [0.5, 1.5], start w0 in [1.5, 1.9], minimum
    w* = w0 - [0.2, 0.6] (float64)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform() -> torch.Tensor:
        return torch.rand(dim, generator=gen, dtype=torch.float64)

    a = 0.5 + uniform()
    w0 = 1.5 + 0.4 * uniform()
    target = w0 - 0.2 - 0.4 * uniform()
    return a, w0, target


def bf16_stall(steps: int = 1000, lr: float = 1e-3, dim: int = 256,
               seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    r"""SGD on :math:`f(w) = \tfrac12 \sum_i a_i (w_i - w^*_i)^2` with weights
    in float64 (the truth), float32, and bfloat16 with each rounding of
    :class:`LowPrecisionOptimizer`.

    The weights start in :math:`[1.5, 1.9]`, where a bfloat16 ulp is
    :math:`2^{-7}`; with the defaults every update
    :math:`\eta a_i (w_i - w_i^*)` is below :math:`9 \times 10^{-4}`, under
    half an ulp (:math:`3.9 \times 10^{-3}`). Each run's gradient is taken
    at its own weights (in the weights' precision, as a backward pass
    would). Returns, per run (``"float64"``, ``"float32"``, ``"nearest"``,
    ``"kahan"``, ``"stochastic"``), float64 tensors over the steps 0..steps:
    ``"loss"``, ``"rms_error"`` (root mean square of :math:`w - w_{64}`)
    and ``"mean_error"`` (mean of :math:`w - w_{64}`: the bias).
    """
    check_integer("steps", steps, 1)
    check_integer("dim", dim, 1)
    check_non_negative("lr", lr)
    a, w0, target = _quadratic(dim, seed)
    from optedu.optim.sgd import SGD

    runs: dict[str, tuple[torch.Tensor, Any]] = {}
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        w = w0.to(dtype, copy=True)
        runs[name] = (w, SGD([w], lr=lr))
    for rounding in ROUNDINGS:
        w = w0.to(torch.bfloat16)
        gen = torch.Generator().manual_seed(seed)
        opt = LowPrecisionOptimizer(SGD([w], lr=lr), rounding, gen)
        runs[rounding] = (w, opt)

    history: dict[str, dict[str, list[float]]] = {
        name: {"loss": [], "rms_error": [], "mean_error": []} for name in runs}
    for step in range(steps + 1):
        truth = runs["float64"][0].detach().clone()
        for name, (w, opt) in runs.items():
            with torch.no_grad():
                error = w.double() - truth
                loss = 0.5 * (a * (w.double() - target) ** 2).sum()
            history[name]["loss"].append(loss.item())
            history[name]["rms_error"].append(error.pow(2).mean().sqrt().item())
            history[name]["mean_error"].append(error.mean().item())
            if step < steps:  # ∇f = a (w - w*), in the weights' dtype
                w.grad = (a * (w.double() - target)).to(w.dtype)
                opt.step()
    return {name: {key: torch.tensor(values, dtype=torch.float64)
                   for key, values in curves.items()}
            for name, curves in history.items()}
