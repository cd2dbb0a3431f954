r"""Schedule-free SGD and AdamW: a gradient point between the SGD iterate
and its running average replaces the learning-rate schedule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._validation import check_betas, check_integer, check_non_negative, invalid
from .optimizer import Group, Optimizer, State, evaluate


def schedule_free_sgd(
    y: torch.Tensor,
    grad: torch.Tensor,
    z: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    ckp1: float,
) -> None:
    r"""One schedule-free SGD step on one tensor, in place (Defazio et al.,
    2024). The parameter holds the gradient point :math:`y`; the average
    :math:`x` is never stored.

    .. math::

        g_t &= \nabla f(y_t) + \lambda\, y_t \\
        z_{t+1} &= z_t - \gamma_t\, g_t \\
        x_{t+1} &= (1 - c_{t+1})\, x_t + c_{t+1}\, z_{t+1} \\
        y_{t+1} &= (1 - \beta)\, z_{t+1} + \beta\, x_{t+1}

    which, eliminating :math:`x`, is
    :math:`y_{t+1} = (1-c)\,y_t + c\,z_t + \gamma_t(\beta(1-c) - 1)\,g_t`.
    :math:`c_{t+1}` (``ckp1``) is the weight of the newest point in the
    average and :math:`\gamma_t` (``lr``) the warmed-up rate.
    """
    g = grad.add(y, alpha=weight_decay) if weight_decay else grad
    y.lerp_(z, ckp1)                            # (1-c) y_t + c z_t
    y.add_(g, alpha=lr * (momentum * (1 - ckp1) - 1))   # + γ(β(1-c)-1) g_t
    z.sub_(g, alpha=lr)                         # z_{t+1} = z_t - γ g_t


def schedule_free_adamw(
    y: torch.Tensor,
    grad: torch.Tensor,
    z: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    ckp1: float,
) -> None:
    r"""One schedule-free AdamW step on one tensor, in place: the SGD form
    of :func:`schedule_free_sgd` with :math:`\beta_1` as :math:`\beta` and
    the gradient divided by Adam's bias-corrected RMS (``step`` 1-based).

    .. math::

        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \hat g_t &= \frac{g_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
            + \lambda\, y_t

    then :math:`z`, :math:`x`, :math:`y` as in SGD with :math:`\hat g_t`.
    """
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    # √(v_t / (1-β2^t)) + ε
    denom = exp_avg_sq.div(1 - beta2**step).sqrt_().add_(eps)
    g = grad.div(denom)                         # ĝ_t = g_t / (√v̂_t + ε)
    if weight_decay:
        g.add_(y, alpha=weight_decay)           # ĝ_t + λ y_t
    y.lerp_(z, ckp1)                            # (1-c) y_t + c z_t
    y.add_(g, alpha=lr * (beta1 * (1 - ckp1) - 1))      # + γ(β1(1-c)-1) ĝ
    z.sub_(g, alpha=lr)                         # z_{t+1} = z_t - γ ĝ_t


class _ScheduleFree(Optimizer):
    """Bookkeeping both rules share: per group the step count ``k``, the
    warmed-up rate, the averaging weights, and the train/eval switch."""

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def _beta(self, group: Group) -> float:
        raise NotImplementedError

    @torch.no_grad()
    def train(self) -> None:
        """Parameters to the gradient point: y = (1-β) z + β x."""
        for group in self.param_groups:
            if not group["train_mode"]:
                for p in group["params"]:
                    if "z" in self.state.get(p, {}):
                        p.lerp_(self.state[p]["z"], 1 - self._beta(group))
                group["train_mode"] = True

    @torch.no_grad()
    def eval(self) -> None:
        """Parameters to the average x = (y - (1-β) z) / β, for evaluation
        and checkpoints."""
        for group in self.param_groups:
            if group["train_mode"]:
                for p in group["params"]:
                    if "z" in self.state.get(p, {}):
                        p.lerp_(self.state[p]["z"], 1 - 1 / self._beta(group))
                group["train_mode"] = False

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError(f"{type(self).__name__} is not in train mode: "
                               "call .train() before step()")
        loss = evaluate(closure)
        for group in self.param_groups:
            k, warmup = group["k"], group["warmup_steps"]
            # γ_t = η min(1, (k+1)/warmup)
            lr = group["lr"] * ((k + 1) / warmup if k < warmup else 1.0)
            group["scheduled_lr"] = lr
            lr_max = group["lr_max"] = max(lr, group["lr_max"])
            # w_t = (k+1)^r · max γ^p ;  c_{t+1} = w_t / Σ w
            weight = (k + 1) ** group["r"] * lr_max ** group["weight_lr_power"]
            weight_sum = group["weight_sum"] = group["weight_sum"] + weight
            ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
            group["_step"] = (lr, ckp1)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not "
                                       "support sparse gradients")
                if not self.state.get(p):
                    self.state[p] = self.init_state(p, group)
                self.update(p, p.grad, self.state[p], group)
            del group["_step"]
            group["k"] = k + 1
        return loss


def _check_common(lr: float, weight_decay: float, warmup_steps: int,
                  r: float, weight_lr_power: float) -> None:
    check_non_negative("lr", lr)
    check_non_negative("weight_decay", weight_decay)
    check_integer("warmup_steps", warmup_steps, 0)
    check_non_negative("r", r)
    check_non_negative("weight_lr_power", weight_lr_power)


def _bookkeeping() -> dict[str, Any]:
    """The group entries schedulefree keeps, so checkpoints load both ways."""
    return dict(k=0, train_mode=False, weight_sum=0.0, lr_max=-1.0,
                scheduled_lr=0.0)


class SGDScheduleFree(_ScheduleFree):
    r"""Schedule-free SGD (Defazio, Yang, Mehta, Mishchenko, Khaled &
    Cutkosky, "The Road Less Scheduled", NeurIPS 2024), with the arguments,
    defaults, state (``z``) and group entries of ``schedulefree`` 1.4.1's
    ``SGDScheduleFree``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta` (default ``1.0``).
        momentum: :math:`\beta`, the interpolation of :math:`y` between
            :math:`z` and :math:`x`, in :math:`(0, 1)` (default ``0.9``).
        weight_decay: :math:`\lambda`, an L2 term at :math:`y` (default 0).
        warmup_steps: linear warmup of :math:`\gamma_t` (default ``0``).
        r: average weights grow as :math:`(t+1)^r` (default ``0``).
        weight_lr_power: and as :math:`\max\gamma^p` (default ``2``).

    Call ``train()`` before training (``step()`` refuses otherwise) and
    ``eval()`` before evaluating or saving: the parameters then hold
    :math:`x`. Differences from ``schedulefree``: no ``foreach``; the
    gradient is left as it was (``schedulefree`` adds the decay to
    ``p.grad`` in place); ``RuntimeError`` (an ``Exception``) in eval mode;
    an optedu checkpoint steps in ``schedulefree`` once each group has a
    ``foreach`` entry. Parameters, ``z`` and group entries are bit-equal to
    ``schedulefree``'s (tested, both of its paths).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2,
    ) -> None:
        _check_common(lr, weight_decay, warmup_steps, r, weight_lr_power)
        if not 0 < momentum < 1:
            raise invalid("momentum", momentum, "a number in (0, 1)")
        defaults = dict(lr=lr, momentum=momentum, r=r,
                        warmup_steps=warmup_steps,
                        weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, **_bookkeeping())
        super().__init__(params, defaults)

    def _beta(self, group: Group) -> float:
        return group["momentum"]

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"z": param.clone(memory_format=torch.preserve_format)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        lr, ckp1 = group["_step"]
        schedule_free_sgd(param, grad, state["z"], lr=lr,
                          momentum=group["momentum"],
                          weight_decay=group["weight_decay"], ckp1=ckp1)


class AdamWScheduleFree(_ScheduleFree):
    r"""Schedule-free AdamW (Defazio et al., 2024), with the arguments,
    defaults, state (``z``, ``exp_avg_sq``) and group entries of
    ``schedulefree`` 1.4.1's ``AdamWScheduleFree``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta` (default ``0.0025``).
        betas: :math:`(\beta_1, \beta_2)`; :math:`\beta_1` interpolates as
            SGD's ``momentum`` and must be > 0 (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).
        weight_decay: :math:`\lambda`, added to the normalised gradient at
            :math:`y` (default ``0``).
        warmup_steps, r, weight_lr_power: as :class:`SGDScheduleFree`.

    Differences from ``schedulefree``: as :class:`SGDScheduleFree`
    (``schedulefree`` also divides ``p.grad`` in place); it checks no
    argument, optedu raises ``ValueError``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
    ) -> None:
        _check_common(lr, weight_decay, warmup_steps, r, weight_lr_power)
        betas = check_betas(betas)
        if betas[0] == 0:
            raise invalid("betas", betas, "beta1 > 0: eval() divides by it")
        check_non_negative("eps", eps)
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r,
                        warmup_steps=warmup_steps,
                        weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, **_bookkeeping())
        super().__init__(params, defaults)

    def _beta(self, group: Group) -> float:
        return group["betas"][0]

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"z": param.clone(memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(
                    param, memory_format=torch.preserve_format)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        lr, ckp1 = group["_step"]
        beta1, beta2 = group["betas"]
        schedule_free_adamw(param, grad, state["z"], state["exp_avg_sq"],
                            group["k"] + 1, lr=lr, beta1=beta1, beta2=beta2,
                            eps=group["eps"],
                            weight_decay=group["weight_decay"], ckp1=ckp1)
