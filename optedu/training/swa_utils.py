r"""Averages of the weights along a run: stochastic weight averaging (SWA) and an exponential
moving average (EMA), with torch 2.13's ``torch.optim.swa_utils`` API and numbers.

An averaged model keeps a second copy of the weights, :math:`\bar w`, and after each
``update_parameters(model)`` moves it toward the model's weights :math:`w_t`:

.. math::

    \text{SWA: } \bar w_{n+1} = \bar w_n + \frac{w_t - \bar w_n}{n + 1}
    \qquad
    \text{EMA: } \bar w_{n+1} = \beta\,\bar w_n + (1 - \beta)\,w_t,

starting from a copy (:math:`\bar w_1 = w`). SWA is the plain mean of the weights it has
seen (Izmailov et al., 2018), usually taken once per epoch late in training at a constant or
cyclic rate (:class:`SWALR` anneals to it); the EMA forgets with half-life
:math:`\ln 2 / \ln(1/\beta)` updates (Polyak averaging with exponential weights). Neither
averages BatchNorm's running statistics unless ``use_buffers=True``: after averaging,
:func:`update_bn` recomputes them with one pass over the data.

torch writes both rules two ways, one tensor at a time (``avg_fn``) and as one ``foreach``
call over all tensors (``multi_avg_fn``, ``torch._foreach_lerp_``); a lerp rounds differently
from the formula above, so the two forms differ in the last bit. By default torch averages
with the lerp on a GPU and with the formula on the CPU; this module makes the same choices,
to give torch's numbers exactly.

Differences from torch: two averaging functions at once and a bad ``decay`` raise
``ValueError`` (torch: ``AssertionError`` and ``ValueError``), naming the argument (a NaN
``decay`` too, which torch accepts); SWA over
all tensors at once (``get_swa_multi_avg_fn``) refuses integer buffers with a ``ValueError``
that says what to use instead, where torch 2.13 fails inside ``addcdiv``.

References: P. Izmailov et al., *Averaging weights leads to wider optima and better
generalization*, UAI 2018; B. T. Polyak and A. B. Juditsky, *Acceleration of stochastic
approximation by averaging*, 1992.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from torch.utils._foreach_utils import _get_foreach_kernels_supported_devices as _foreach_devices

from optedu.lr_scheduler._base import LRScheduler, per_group
from optedu.optim._validation import check_interval

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]

Tensors = list[Tensor] | tuple[Tensor, ...]  # what the _foreach ops take


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[Tensors, Tensors, Any], None]:
    """The EMA over all tensors at once: ``lerp`` toward the model by ``1 - decay``."""
    check_interval("decay", decay, 0, 1)

    @torch.no_grad()
    def ema_update(averaged: Tensors, current: Tensors, _: Any) -> None:
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - decay)
        else:  # integer tensors (buffers): lerp does not take them
            for a, w in zip(averaged, current):
                a.copy_(a * decay + w * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[Tensors, Tensors, Tensor | int], None]:
    """SWA's running mean over all tensors at once: ``lerp`` by ``1/(n+1)``."""
    @torch.no_grad()
    def swa_update(averaged: Tensors, current: Tensors, n: Tensor | int) -> None:
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            # torch takes a 0-d tensor weight where its stubs say a Python number
            torch._foreach_lerp_(averaged, current, 1 / (n + 1))  # type: ignore[arg-type]
        else:
            diffs = torch._foreach_sub(current, averaged)
            if isinstance(n, Tensor):  # torch 2.13 fails here inside addcdiv
                raise ValueError(
                    "Invalid averaging: get_swa_multi_avg_fn() cannot average integer "
                    "tensors (BatchNorm's num_batches_tracked, with use_buffers=True) by a "
                    "tensor count; use the default average (multi_avg_fn=None) instead")
            else:
                torch._foreach_add_(averaged, diffs, alpha=1.0 / (n + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Tensor, Tensor, Any], Tensor]:
    """The EMA of one tensor: ``decay * averaged + (1 - decay) * current``."""
    check_interval("decay", decay, 0, 1)

    @torch.no_grad()
    def ema_update(averaged: Tensor, current: Tensor, _: Any) -> Tensor:
        return decay * averaged + (1 - decay) * current

    return ema_update


def get_swa_avg_fn() -> Callable[[Tensor, Tensor, Tensor | int], Tensor]:
    """SWA's running mean of one tensor: ``averaged + (current - averaged) / (n + 1)``."""
    @torch.no_grad()
    def swa_update(averaged: Tensor, current: Tensor, n: Tensor | int) -> Tensor:
        return averaged + (current - averaged) / (n + 1)

    return swa_update


class AveragedModel(nn.Module):
    """A copy of ``model`` whose weights are the average of those it is given.

    Args:
        model: the model to average (deep-copied; the copy is what ``forward`` runs).
        device: where the copy lives (default: where the model is).
        avg_fn: an average of one tensor, ``(averaged, current, n_averaged) -> new``.
        multi_avg_fn: an in-place average of lists of tensors; neither given: SWA's mean.
        use_buffers: average the buffers too (BatchNorm's running statistics); otherwise
            they are copied from the model at each update.

    ``n_averaged`` (a buffer, so it is checkpointed) counts the updates; the first copies the
    weights.
    """

    n_averaged: Tensor

    def __init__(self, model: nn.Module, device: int | torch.device | None = None,
                 avg_fn: Callable[[Tensor, Tensor, Tensor | int], Tensor] | None = None,
                 multi_avg_fn: Callable[[Tensors, Tensors, Tensor | int], None] | None = None,
                 use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Invalid averaging: give avg_fn or multi_avg_fn, not both")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _tensors(self, model: nn.Module) -> Iterable[Tensor]:
        if self.use_buffers:
            return itertools.chain(model.parameters(), model.buffers())
        return model.parameters()

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """Average ``model``'s weights into this copy (the first call copies them)."""
        ours = self._tensors(self.module) if self.use_buffers else self.parameters()
        averaged, current = [], []
        for a, w in zip(ours, self._tensors(model)):
            w = w.detach().to(a.device)
            averaged.append(a.detach())
            current.append(w)
            if self.n_averaged == 0:
                a.detach().copy_(w)
        if self.n_averaged > 0:
            if self.avg_fn is not None:  # one tensor at a time, the caller's rule
                for a, w in zip(averaged, current):
                    a.copy_(self.avg_fn(a, w, self.n_averaged.to(a.device)))
            else:  # by device and dtype, as foreach kernels need
                groups: dict[tuple[torch.device, torch.dtype], tuple[list, list]] = {}
                for a, w in zip(averaged, current):
                    pair = groups.setdefault((a.device, a.dtype), ([], []))
                    pair[0].append(a)
                    pair[1].append(w)
                for (device, _), (a_list, w_list) in groups.items():
                    n = self.n_averaged.to(device)
                    if self.multi_avg_fn is not None:
                        self.multi_avg_fn(a_list, w_list, n)
                    elif device.type in _foreach_devices():  # torch's choice: lerp on GPUs
                        get_swa_multi_avg_fn()(a_list, w_list, n)
                    else:  # and the formula, tensor by tensor, on the CPU
                        mean = get_swa_avg_fn()
                        for a, w in zip(a_list, w_list):
                            a.copy_(mean(a, w, n))
        if not self.use_buffers:  # keep the buffers in step with the model
            for b, b_model in zip(self.module.buffers(), model.buffers()):
                b.detach().copy_(b_model.detach().to(b.device))
        self.n_averaged += 1


@torch.no_grad()
def update_bn(loader: Iterable[Any], model: nn.Module,
              device: int | torch.device | None = None) -> None:
    """Recompute every BatchNorm's running mean and variance with one pass over ``loader``
    (batches, or tuples whose first entry is the input): the statistics are reset and
    averaged over all batches (``momentum=None``, a cumulative mean), then each layer's
    momentum and the model's training mode are restored."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    for batch in loader:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    r"""Anneal each group's rate to ``swa_lr`` over ``anneal_epochs`` steps, then hold it.

    With :math:`\alpha_t = a(\min(1, t / T))` for the annealing shape :math:`a` (``"cos"``:
    :math:`(1 - \cos \pi s)/2`; ``"linear"``: :math:`s`) and :math:`T` = ``anneal_epochs``,
    torch recovers the rate the annealing started from out of the current one and steps the
    interpolation:

    .. math::

        \eta^{0}_t = \frac{\eta_{t-1} - \alpha_{t-1}\,\eta_\text{swa}}{1 - \alpha_{t-1}},
        \qquad
        \eta_t = \alpha_t\,\eta_\text{swa} + (1 - \alpha_t)\,\eta^{0}_t,

    so that it chains after another scheduler, which set :math:`\eta_{t-1}`. Once
    :math:`\alpha = 1` the rate is :math:`\eta_\text{swa}`.

    Args:
        optimizer: the wrapped optimizer.
        swa_lr: the rate to reach, for every group or one per group (kept as
            ``group["swa_lr"]``).
        anneal_epochs: steps of annealing (0: the first step jumps to ``swa_lr``).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        last_epoch: the index of the last step (-1: start).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, swa_lr: float | Sequence[float],
                 anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1) -> None:
        for rate, group in zip(per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = rate
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = (self._cosine_anneal if anneal_strategy == "cos"
                            else self._linear_anneal)

    def get_lr(self) -> list[float]:
        step = self._step_count - 1  # steps taken, the constructor's included
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        starts = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                  for group in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [group["swa_lr"] * alpha + lr * (1 - alpha)
                for group, lr in zip(self.optimizer.param_groups, starts)]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer and the annealing function (torch's keys)."""
        state = super().state_dict()
        state.pop("anneal_func", None)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "anneal_func"})
        self._set_anneal_func(self._anneal_strategy)
