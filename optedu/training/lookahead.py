r"""Lookahead (Zhang et al., 2019): any optimizer's fast weights, pulled back every
:math:`k` steps toward a slow copy that moves a fraction :math:`\alpha` of the way.

The wrapped optimizer steps the fast weights :math:`\theta` as usual. Every :math:`k` of its
steps, the slow weights :math:`\phi` (a copy of the weights taken at the start) move toward
the fast ones and the fast ones restart from them (the paper's Algorithm 1):

.. math::

    \begin{aligned}
    \theta_{t,i} &= \theta_{t,i-1} + A(L, \theta_{t,i-1}, d),
        \qquad i = 1, \dots, k \quad \text{(the base optimizer)}\\
    \phi_t &= \phi_{t-1} + \alpha\,(\theta_{t,k} - \phi_{t-1})\\
    \theta_{t+1,0} &= \phi_t .
    \end{aligned}

So :math:`\phi` is an exponential moving average of the points the fast weights reach every
:math:`k` steps, with weight :math:`\alpha` on the newest (:math:`\alpha = 1` would be the base
alone; pytorch_optimizer, and so optedu, take :math:`\alpha \in [0, 1)`). The slow weights see the direction of :math:`k` steps, in which oscillations across a
valley have partly cancelled; the paper reports that this lowers the variance of the base's
iterates and makes it less sensitive to its learning rate and momentum.

``pullback_momentum`` says what happens to the base's ``momentum_buffer`` at each
synchronisation (the paper's Algorithm 1 says nothing of the base's state; the option and its
name are pytorch_optimizer's): ``"none"`` keeps it,
``"reset"`` zeroes it, ``"pullback"`` interpolates it the same way toward a slow copy of its
own, :math:`m \leftarrow m_\text{slow} + \alpha (m - m_\text{slow})`,
:math:`m_\text{slow} \leftarrow m`. Only SGD's state has a ``momentum_buffer``: under Adam,
both write a ``momentum_buffer`` that Adam never reads, its ``exp_avg`` is untouched, and the
three options give the same weights (``tests/training/test_lookahead.py``).

Arguments, defaults, state keys (``slow_params``, ``slow_momentum``; ``backup_params`` while the
slow weights are loaded for evaluation), each group's ``counter`` and the state dict's layout
(``lookahead_state`` by ``(group, index)``, ``base_optimizer``) are those of
``pytorch_optimizer.Lookahead`` 4.1.0, and wrapping optedu's SGD or Adam it gives the numbers of
pytorch_optimizer's wrapping torch's bit for bit (``tests/training/test_lookahead.py``).

Differences from pytorch_optimizer 4.1.0: ``k`` must be an integer (it takes ``k=2.5`` and
synchronises every third step) and bad arguments raise optedu's message naming the argument and
its value; a copy (``copy.deepcopy``, pickling) keeps ``defaults`` and works (pytorch_optimizer's
leaves them out and fails to load).

Reference: M. R. Zhang, J. Lucas, G. Hinton and J. Ba, *Lookahead optimizer: k steps forward,
1 step back*, NeurIPS 2019.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from optedu.optim._validation import check_integer, invalid

__all__ = ["Lookahead", "lookahead_sync"]

PULLBACK = ("none", "reset", "pullback")


@torch.no_grad()
def lookahead_sync(fast: Tensor, slow: Tensor, alpha: float) -> None:
    r"""One synchronisation of one tensor, in place: the slow weights move :math:`\alpha` of
    the way to the fast ones, and the fast ones restart from there.

    ``lerp`` computes :math:`\theta + (1-\alpha)(\phi - \theta)`, which is
    :math:`\phi + \alpha(\theta - \phi)` up to rounding (pytorch_optimizer's form).
    """
    fast.lerp_(slow, 1 - alpha)   # φ_t = φ_{t-1} + α(θ_{t,k} − φ_{t-1}), written into θ
    slow.copy_(fast)              # θ_{t+1,0} = φ_t, and φ keeps φ_t for the next k steps


class Lookahead(torch.optim.Optimizer):
    r"""Lookahead around ``optimizer``: every ``k`` steps, :func:`lookahead_sync` on each
    parameter of the group that has a gradient.

    Args:
        optimizer: the base optimizer (an instance; or a class, built from ``kwargs``, which
            must hold ``params``).
        k: base steps between synchronisations, an integer >= 1 (default 5).
        alpha: how far the slow weights move toward the fast ones, in [0, 1) (default 0.5).
        pullback_momentum: ``"none"`` (default), ``"reset"`` or ``"pullback"``: what becomes
            of the base's ``momentum_buffer`` at a synchronisation.

    ``param_groups`` are the base's (a scheduler that sets ``lr`` sets the base's); each gets a
    step ``counter``. ``state[p]`` holds ``slow_params`` (and ``slow_momentum``), the base's
    own state stays in ``optimizer.state``. :meth:`backup_and_load_cache` puts the slow
    weights in the parameters for an evaluation, :meth:`clear_and_load_backup` takes them out.
    """

    optimizer: torch.optim.Optimizer
    k: int
    alpha: float
    pullback_momentum: str

    def __init__(self, optimizer: torch.optim.Optimizer | type[torch.optim.Optimizer],
                 k: int = 5, alpha: float = 0.5, pullback_momentum: str = "none",
                 **kwargs: Any) -> None:
        check_integer("k", k, 1)
        if not (isinstance(alpha, numbers.Real) and 0 <= alpha < 1):
            raise invalid("alpha", alpha, "a number in [0, 1)")
        if pullback_momentum not in PULLBACK:
            raise invalid("pullback_momentum", pullback_momentum, "'none', 'reset' or 'pullback'")
        if not isinstance(optimizer, torch.optim.Optimizer):
            if "params" not in kwargs:
                raise ValueError("Invalid optimizer value: a class needs params= to build it")
            optimizer = optimizer(kwargs.pop("params"), **kwargs)
        self.optimizer = optimizer
        self.alpha, self.k, self.pullback_momentum = alpha, k, pullback_momentum
        # torch's step hooks, without torch.optim.Optimizer.__init__ (the groups are the base's)
        self._optimizer_step_pre_hooks: dict[int, Callable] = OrderedDict()
        self._optimizer_step_post_hooks: dict[int, Callable] = OrderedDict()
        self._patch_step_function()
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for group in self.param_groups:
            self.init_group(group)
        self.defaults = {"lookahead_alpha": alpha, "lookahead_k": k,
                         "lookahead_pullback_momentum": pullback_momentum,
                         **optimizer.defaults}

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "optimizer": self.optimizer,
                "alpha": self.alpha, "k": self.k, "pullback_momentum": self.pullback_momentum}

    def init_group(self, group: dict[str, Any]) -> None:
        """A ``counter`` for the group, and for each parameter its slow copy: φ_0 = θ_0."""
        group.setdefault("counter", 0)
        for p in group["params"]:
            state = self.state[p]
            if "slow_params" not in state:
                state["slow_params"] = p.detach().clone()
                if self.pullback_momentum == "pullback":
                    state["slow_momentum"] = torch.zeros_like(p)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)
        self.init_group(self.param_groups[-1])

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def sync(self, group: dict[str, Any]) -> None:
        """Synchronise a group's parameters that have a gradient (and their momenta)."""
        base = self.optimizer.state
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            lookahead_sync(p, state["slow_params"], self.alpha)
            if self.pullback_momentum == "pullback":
                m = base[p].setdefault("momentum_buffer", torch.zeros_like(p))
                lookahead_sync(m, state["slow_momentum"], self.alpha)  # the same for m
            elif self.pullback_momentum == "reset":
                base[p]["momentum_buffer"] = torch.zeros_like(p)       # m = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One step of the base; every ``k``-th step of a group, its synchronisation."""
        loss = self.optimizer.step(closure)
        for group in self.param_groups:
            group["counter"] += 1
            if group["counter"] >= self.k:
                group["counter"] = 0
                self.sync(group)
        return loss

    @torch.no_grad()
    def backup_and_load_cache(self) -> None:
        """Keep the fast weights in ``backup_params`` and put the slow ones in the parameters."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["backup_params"] = p.detach().clone()
                p.copy_(self.state[p]["slow_params"])

    @torch.no_grad()
    def clear_and_load_backup(self) -> None:
        """Put the fast weights back, and forget the backup."""
        for group in self.param_groups:
            for p in group["params"]:
                p.copy_(self.state[p].pop("backup_params"))

    def state_dict(self) -> dict[str, Any]:
        """``lookahead_state`` (each parameter's state by ``(group, index)``) and the base's
        ``state_dict`` as ``base_optimizer`` (its groups hold the counters)."""
        lookahead_state = {(i, j): dict(self.state[p])
                           for i, group in enumerate(self.param_groups)
                           for j, p in enumerate(group["params"]) if p in self.state}
        return {"lookahead_state": lookahead_state,
                "base_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict` (the slow weights cast to each parameter's device and
        dtype); refuse one whose parameters are not these."""
        saved = state_dict["lookahead_state"]
        restored: dict[Tensor, dict[str, Any]] = {}
        for i, group in enumerate(self.param_groups):
            for j, p in enumerate(group["params"]):
                if (i, j) in saved:
                    restored[p] = dict(saved[(i, j)])
                elif p in saved:
                    restored[p] = dict(saved[p])
        count = sum(len(group["params"]) for group in self.param_groups)
        if not len(restored) == len(saved) == count:
            raise ValueError(f"Invalid state_dict value: lookahead state for {len(saved)} "
                             f"parameters (expected one per parameter, {count})")
        self.optimizer.load_state_dict(state_dict["base_optimizer"])
        for p, entries in restored.items():
            for key, value in entries.items():
                if isinstance(value, Tensor):
                    entries[key] = value.to(device=p.device, dtype=p.dtype).clone()
        self.state = defaultdict(dict, restored)
