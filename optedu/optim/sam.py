r"""SAM: sharpness-aware minimisation around any optimizer, and ASAM, its
scale-invariant variant."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._sharding import norms
from ._validation import check_non_negative, invalid
from .optimizer import Group, Optimizer


def sam_perturbation(
    param: torch.Tensor,
    grad: torch.Tensor,
    scale: torch.Tensor,
    *,
    adaptive: bool,
) -> torch.Tensor:
    r"""The ascent step :math:`\hat\epsilon` of one tensor (Foret et al.,
    2021, eq. 2; Kwon et al., 2021, for ``adaptive``).

    .. math::

        \hat\epsilon = \rho\,\frac{g}{\lVert g\rVert}
        \qquad\text{or, adaptive,}\qquad
        \hat\epsilon = \rho\,\frac{w^2 \odot g}{\lVert\, |w| \odot g\rVert}

    ``scale`` is :math:`\rho / (\lVert\cdot\rVert + \epsilon)`, one number
    for all tensors (the norm is global); the parameter moves to
    :math:`w + \hat\epsilon` by ``param.add_`` of the returned tensor.
    """
    factor = torch.pow(param, 2) if adaptive else 1.0
    return factor * grad * scale.to(param)


def centralize(grad: torch.Tensor) -> None:
    """Gradient centralisation (Yong et al., 2020), in place: a tensor of
    two or more dimensions loses its mean over all but the first."""
    if grad.dim() > 1:
        grad.add_(-grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True))


def perturbation_norm(groups: Iterable[Group]) -> torch.Tensor:
    r""":math:`\lVert g\rVert` over every parameter with a gradient, or
    :math:`\lVert |w| \odot g\rVert` in the groups with ``adaptive=True``.

    As pytorch_optimizer 4.1.0 computes it: one norm per tensor (in its
    dtype), the norms squared and summed in float32 (float64 parameters
    included), a one-element float32 tensor.
    """
    grads = []
    for group in groups:
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad * p.abs() if group.get("adaptive", False) else p.grad
            grads.append(grad)
    if not grads:
        return torch.zeros((), dtype=torch.float32)
    # whole-tensor norms: one all-reduce of the pieces' squares when sharded
    return norms(grads).float().square_().sum().sqrt_()


class SAM(Optimizer):
    r"""Sharpness-aware minimisation (Foret et al., "Sharpness-Aware
    Minimization for Efficiently Improving Generalization", ICLR 2021)
    around a base optimizer; ``adaptive=True`` is ASAM (Kwon et al., ICML
    2021).

    Each step takes two gradients: :math:`g` at the weights :math:`w`
    (computed before ``step``), then :math:`g' = \nabla L(w+\hat\epsilon)`
    at the perturbed weights :math:`w + \hat\epsilon` (the closure). The
    weights go back to :math:`w` and the base optimizer steps with
    :math:`g'`.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        base_optimizer: the optimizer class that takes the step (an optedu
            or a torch.optim class), built here on the same groups.
        rho: :math:`\rho`, the radius of the neighbourhood (default
            ``0.05``); per group.
        adaptive: ASAM: the perturbation scaled by :math:`w^2`, the norm by
            :math:`|w|` (default ``False``); per group.
        use_gc: centralise the gradients before perturbing (default
            ``False``); the norm is taken before centralising, as in the
            reference.
        perturb_eps: :math:`\epsilon` added to the norm (default ``1e-12``).
        foreach: passed on to the base optimizer when not ``None``.
        **kwargs: the base optimizer's arguments (``lr``, ``momentum``...).

    ``param_groups`` and ``state`` are the base optimizer's own objects, so
    a scheduler, ``state_dict`` and ``load_state_dict`` see one optimizer.
    Between :meth:`first_step` and :meth:`second_step` each parameter's
    state holds ``old_p``, the weights before the ascent (one extra copy
    of the model); after the step the state is the base optimizer's.

    Protocol (pytorch_optimizer's, and davda54/sam's)::

        loss_fn(model(x), y).backward()        # g at w
        def closure():
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)        # L(w + eps)
            loss.backward()                    # g' at w + eps
            return loss
        optimizer.step(closure)                # returns L(w + eps)
        optimizer.zero_grad()

    Differences from ``pytorch_optimizer.SAM`` (4.1.0, the reference the
    tests run): none in the steps (bit-identical, float32 and float64).
    Its ``step`` returns ``None`` and, without a gradient at :math:`w`,
    silently takes a plain base step; optedu's returns the closure's loss
    and refuses a step with no gradient, and a missing closure raises
    ``ValueError`` (theirs ``NoClosureError``).
    """

    couples_tensors = True  # sums over every parameter (see ._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        use_gc: bool = False,
        perturb_eps: float = 1e-12,
        foreach: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if not (isinstance(base_optimizer, type)
                and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise invalid("base_optimizer", repr(base_optimizer),
                          "an optimizer class, such as optedu.SGD")
        check_non_negative("rho", rho)
        check_non_negative("perturb_eps", perturb_eps)
        self.use_gc = use_gc
        self.perturb_eps = perturb_eps
        if foreach is not None:
            kwargs["foreach"] = foreach
        defaults = {"rho": rho, "adaptive": adaptive, "foreach": foreach, **kwargs}
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        r"""Move every parameter with a gradient to :math:`w + \hat\epsilon`,
        keeping :math:`w` in its state as ``old_p``."""
        if not any(p.grad is not None
                   for group in self.param_groups for p in group["params"]):
            raise RuntimeError(
                "SAM.first_step: no parameter has a gradient; compute the "
                "loss at the current weights and call backward() first")
        norm = perturbation_norm(self.param_groups).add_(self.perturb_eps)
        for group in self.param_groups:
            scale = group["rho"] / norm
            for p in group["params"]:
                if p.grad is None:
                    continue
                if self.use_gc:
                    centralize(p.grad)
                self.state[p]["old_p"] = p.clone()
                p.add_(sam_perturbation(p, p.grad, scale,
                                        adaptive=group["adaptive"]))
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Put the weights back to ``old_p`` and let the base optimizer step
        with the gradients now held (those at the perturbed weights)."""
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(
        self, closure: Callable[[], Any] | None = None
    ) -> Any:
        """One SAM step: :meth:`first_step`, the closure at the perturbed
        weights, :meth:`second_step`. Returns the closure's loss,
        :math:`L(w + \\hat\\epsilon)`."""
        if closure is None:
            raise invalid("closure", None, "a function that zeroes the "
                          "gradients, computes the loss, calls backward() "
                          "and returns the loss: SAM takes two gradients")
        refuse = getattr(self.base_optimizer, "refuse_pieces", None)
        if refuse is not None:
            refuse()              # before the weights move to w + ε̂
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
        self.base_optimizer.state = self.state
