r"""Weight decay as other sources write it: three comparison variants.

None of these is what torch computes. The AdamW chapter runs each beside
``torch.optim.SGD`` or ``torch.optim.AdamW`` (and so beside ``optedu.SGD``
and ``optedu.AdamW``) so that each difference, or each equivalence, is
executed rather than asserted.

- :class:`DecoupledSGD`: SGD with decoupled decay scaled by the learning
  rate, :math:`\theta \leftarrow (1-\eta\lambda)\theta`, then the SGD step
  without decay (SGDW).
- :class:`FixedDecaySGD`: the same with a fixed factor :math:`1-\lambda'`
  that ignores the learning rate, ``weight_decay`` read as :math:`\lambda'`.
- :class:`AdamWDecayAfterStep`: AdamW with the decay applied *after* the
  Adam step, as the long lesson's code (and its NumPy Adam) writes it;
  torch decays first.
"""

from __future__ import annotations

import torch

from optedu.optim.adam import Adam
from optedu.optim.optimizer import Group, State
from optedu.optim.sgd import SGD


class DecoupledSGD(SGD):
    r"""VARIANT, not torch's rule: the decay :math:`(1-\eta\lambda)`, then SGD.

    The SGD step (momentum, dampening, Nesterov as in :class:`optedu.SGD`)
    runs with no decay of its own. Without momentum this equals
    ``torch.optim.SGD(weight_decay=λ)`` (L2); with momentum it does not,
    because torch's L2 term enters the momentum buffer.
    """

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        param.mul_(1 - group["lr"] * group["weight_decay"])  # θ ← (1-ηλ)θ
        super().update(param, grad, state, {**group, "weight_decay": 0.0})


class FixedDecaySGD(SGD):
    r"""VARIANT, not torch's rule: a fixed decay :math:`(1-\lambda')`, then SGD.

    ``weight_decay`` is :math:`\lambda'`, a fraction per step that does not
    follow the learning rate. It equals torch's L2 only when
    :math:`\lambda' = \eta\lambda` at every step, so only at a constant
    learning rate.
    """

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        param.mul_(1 - group["weight_decay"])  # θ ← (1 - λ') θ
        super().update(param, grad, state, {**group, "weight_decay": 0.0})


class AdamWDecayAfterStep(Adam):
    r"""VARIANT, not torch's rule: the Adam step, then the decay (1 - ηλ).

    The long lesson's order. From the same state it differs from
    ``torch.optim.AdamW`` by :math:`\eta^2\lambda u_t`, with
    :math:`u_t = \hat m_t/(\sqrt{\hat v_t}+\epsilon)`. ``weight_decay``
    defaults to AdamW's ``1e-2``.
    """

    def __init__(self, params, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         maximize=maximize)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        super().update(param, grad, state, {**group, "weight_decay": 0.0})
        param.mul_(1 - group["lr"] * group["weight_decay"])  # after the step
