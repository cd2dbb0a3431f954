r"""Adadelta as Zeiler's paper writes it: a variant of optedu.adadelta.

:func:`adadelta_paper` is Algorithm 1 of Zeiler (2012): no learning rate,
and an :math:`\epsilon` in each root. It is a *variant*: torch's
``Adadelta`` (and so ``optedu.Adadelta``) multiplies the update by ``lr``
and uses one :math:`\epsilon` for both roots. With ``lr=1`` and
``eps_delta=eps`` the two are the same rule, to the bit (tested). A separate
``eps_delta`` lets the Adadelta chapter give the two roots the units they
need: :math:`\epsilon` in the numerator is a squared *parameter* size, in the
denominator a squared *gradient* size.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optedu.optim.optimizer import Group, Optimizer, State


def adadelta_paper(
    param: torch.Tensor,
    grad: torch.Tensor,
    square_avg: torch.Tensor,
    acc_delta: torch.Tensor,
    *,
    rho: float,
    eps: float,
    eps_delta: float | None = None,
) -> None:
    r"""VARIANT, not torch's rule: Zeiler's Algorithm 1, no learning rate.

    .. math::

        E[g^2]_t &\leftarrow \rho\, E[g^2]_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta\theta_t &\leftarrow -\frac{\sqrt{E[\Delta\theta^2]_{t-1}
            + \epsilon_\Delta}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t \\
        E[\Delta\theta^2]_t &\leftarrow \rho\, E[\Delta\theta^2]_{t-1}
            + (1-\rho)\, \Delta\theta_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} + \Delta\theta_t

    ``square_avg`` is :math:`E[g^2]`, ``acc_delta`` is
    :math:`E[\Delta\theta^2]`. ``eps_delta`` (:math:`\epsilon_\Delta`,
    default ``eps``) is the paper's :math:`\epsilon` in the numerator's root;
    the paper uses one :math:`\epsilon` for both. No weight decay, no
    ``maximize``: only the learning rate and the second :math:`\epsilon`
    differ from :func:`optedu.adadelta`.
    """
    eps_num = eps if eps_delta is None else eps_delta
    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    #                                  E[g²]_t = ρ E[g²]_{t-1} + (1-ρ) g_t²
    rms_g = square_avg.add(eps).sqrt_()          # RMS[g]_t
    delta = acc_delta.add(eps_num).sqrt_()       # RMS[Δθ]_{t-1}
    delta.div_(rms_g).mul_(grad)                 # -Δθ_t = RMS[Δθ]/RMS[g]·g
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    #                                  E[Δθ²]_t = ρ E[Δθ²] + (1-ρ) Δθ_t²
    param.sub_(delta)                            # θ_t = θ_{t-1} + Δθ_t


class AdadeltaPaper(Optimizer):
    r"""VARIANT: an optimizer applying :func:`adadelta_paper`.

    It has no ``lr`` in its parameter groups, as in the paper, so torch's
    learning-rate schedulers cannot drive it.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        rho: decay rate :math:`\rho` (default ``0.95``, the paper's experimental
            setting; torch's default is ``0.9``).
        eps: :math:`\epsilon` in the gradient's root (default ``1e-6``).
        eps_delta: :math:`\epsilon_\Delta` in the update's root (default
            ``None``: the same as ``eps``, as in the paper).
    """

    def __init__(self, params: Iterable[Any], rho: float = 0.95,
                 eps: float = 1e-6, eps_delta: float | None = None) -> None:
        super().__init__(params, dict(rho=rho, eps=eps, eps_delta=eps_delta))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"square_avg": torch.zeros_like(param),
                "acc_delta": torch.zeros_like(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        adadelta_paper(param, grad, state["square_avg"], state["acc_delta"],
                       rho=group["rho"], eps=group["eps"],
                       eps_delta=group["eps_delta"])
