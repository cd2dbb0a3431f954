r"""APOLLO: AdamW's moments kept only on a *random* projection of the gradient,
used to scale the raw gradient channel by channel (Zhu et al., "APOLLO:
SGD-like Memory, AdamW-level Performance", MLSys 2025), with the arguments,
group keys and state of ``apollo-torch`` 1.0.3.

For a matrix gradient :math:`G_t \in \mathbb{R}^{m\times n}` (:math:`m\ge n`)
and a Gaussian :math:`P \in \mathbb{R}^{r\times n}`, entries
:math:`\mathcal{N}(0, 1/r)`, redrawn from a seed every ``update_proj_gap``
steps (Algorithm 1):

.. math::

    R_t &= G_t P^\top,\qquad M_t, V_t = \text{AdamW's moments of } R_t,
        \qquad \tilde R_t = M_t / (\sqrt{V_t} + \epsilon) \\
    s_j &= \frac{\lVert \tilde R_t[j,:]\rVert}{\lVert R_t[j,:]\rVert + 10^{-8}}
        \quad\text{(channel; one } s \text{ for the tensor with
        ``scale_type="tensor"``)} \\
    \tilde G_t &= \sqrt{\alpha}\; s \odot G_t,\quad\text{then Fira's norm-growth
        limiter: } \tilde G_t \leftarrow \tilde G_t / \max\!\Big(
        \tfrac{\lVert\tilde G_t\rVert}{\gamma_{t-1}}, 1.01\Big) \cdot 1.01 \\
    W_t &= W_{t-1} - \eta\,\tfrac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\tilde G_t
        - \eta\lambda W

APOLLO-Mini is ``rank=1, scale_type="tensor"`` with a large ``scale``
(the paper's :math:`\sqrt{128}` on the update).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._sharding import refuse_pieces
from .optimizer import evaluate
from ._validation import check_betas, check_non_negative, invalid
from .galore import (GaLoreProjector, adamw_direction, check_low_rank_group, decay,
                     projection_side, state_shapes as galore_state_shapes)

NEXT_SEED_DRAWS = 0xF   # apollo-torch's ADV_DEFAULT


def seeded_gaussian(shape: tuple[int, int], seed: int, dtype: torch.dtype) -> torch.Tensor:
    """``torch.randn(shape)`` from a generator seeded with ``seed`` (CPU)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype)


def next_seed(seed: int) -> int:
    """The seed of the next projector: the last of 15 integers drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, torch.iinfo(torch.int64).max, (NEXT_SEED_DRAWS,),
                          generator=generator)
    return draws.tolist()[-1]


def state_shapes(shape: tuple[int, ...], group: dict[str, Any], *, limiter: bool = True
                 ) -> dict[str, tuple[int, ...]]:
    """The closed form of a parameter's state tensors: GaLore's (moments in the projected
    shape, the projector) plus the limiter's last norm ``scaled_grad`` (a scalar, unless
    ``disable_nl``); the ``seed`` and ``step`` are Python ints."""
    shapes = galore_state_shapes(shape, group, random=group.get("proj") == "random")
    if "rank" in group and len(shape) == 2 and limiter:
        shapes["scaled_grad"] = ()
    return shapes


class RandomProjector:
    """APOLLO's projector of one matrix, with apollo-torch's attributes
    (``rank``, ``verbose``, ``update_proj_gap``, ``scale``, ``proj_type``,
    ``ortho_matrix``, ``seed``, ``svd_count``) so that a checkpoint moves.
    ``ortho_matrix`` is not orthogonal: a Gaussian scaled by
    :math:`1/\\sqrt{r}`, drawn in float32 and cast to the gradient's dtype."""

    def __init__(self, rank: int, verbose: bool = False, update_proj_gap: int = 200,
                 scale: float = 1.0, proj_type: str = "std", seed: int = 0) -> None:
        self.rank = rank
        self.verbose = verbose
        self.update_proj_gap = update_proj_gap
        self.scale = scale
        self.proj_type = proj_type
        self.ortho_matrix: Any = None
        self.seed = seed
        self.svd_count = 0

    def project(self, grad: torch.Tensor, step: int) -> torch.Tensor:
        side = projection_side(self.proj_type, grad.shape)
        if side == "full":
            raise NotImplementedError("full rank projection is not implemented yet")
        if self.ortho_matrix is None or step % self.update_proj_gap == 0:
            shape = (grad.shape[0], self.rank) if side == "left" else (self.rank, grad.shape[1])
            self.ortho_matrix = (seeded_gaussian(shape, self.seed, torch.float32)
                                 / math.sqrt(self.rank)).to(grad)
            self.seed = next_seed(self.seed)
        if side == "right":
            return grad @ self.ortho_matrix.t()
        return self.ortho_matrix.t() @ grad


class APOLLO(torch.optim.Optimizer):
    r"""APOLLO (Zhu et al., MLSys 2025), as ``apollo_torch.APOLLOAdamW`` 1.0.3.

    Args:
        params: tensors or groups. A group with ``rank`` must also set
            ``proj`` (``"random"``, APOLLO's; ``"svd"``, GaLore's projector),
            ``scale_type`` (``"channel"`` or ``"tensor"``),
            ``update_proj_gap``, ``scale`` (:math:`\alpha`; the update is
            multiplied by :math:`\sqrt{\alpha}`) and ``proj_type``
            (``"std"``, ``"reverse_std"``, ``"left"``, ``"right"``); its
            tensors must be matrices. Other groups are plain AdamW.
        lr, betas, eps (default ``1e-6``), weight_decay, correct_bias: as
            :class:`~optedu.optim.galore.GaLoreAdamW`.
        scale_front: multiply by :math:`\sqrt{\alpha}` before the limiter
            instead of after (default ``False``).
        disable_nl: turn off the norm-growth limiter (default ``False``).

    State per parameter: ``seed`` (its 1-based position among the
    parameters, set at construction), ``step`` (a Python int),
    ``projector``, ``exp_avg`` and ``exp_avg_sq`` in the projected shape
    (``max(m, n) × rank``), ``scaled_grad`` (the limiter's last norm, a
    scalar tensor).

    Differences from ``apollo-torch`` 1.0.3 (bit-identical, both dtypes):
    ``no_deprecation_warning`` is left out; bad arguments raise
    ``ValueError`` when a group is added. Quirks kept: a float64 run draws
    its Gaussian in float32; the scaling factor divides by the norm of the
    *projected* gradient :math:`R_t`, not of :math:`G_t`; the limiter
    starts from the first step's norm.
    """

    # FSDP2 shards and ZeRO pieces (._sharding): refused, before any state moves
    element_wise = False
    couples_tensors = False
    refuses_shards = "its random projection and its channel norms span the whole matrix"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        scale_front: bool = False,
        disable_nl: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "correct_bias": correct_bias}
        super().__init__(params, defaults)
        self.scale_front = scale_front
        self.disable_nl = disable_nl
        index = 0
        for group in self.param_groups:
            for param in group["params"]:
                index += 1
                if param.requires_grad:
                    self.state[param]["seed"] = index

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        check_low_rank_group(param_group, ("std", "reverse_std", "right", "left"))
        if "rank" in param_group:
            if param_group.get("proj") not in ("random", "svd"):
                raise invalid("proj", param_group.get("proj"), "'random' or 'svd'")
            if param_group.get("scale_type") not in ("channel", "tensor"):
                raise invalid("scale_type", param_group.get("scale_type"), "'channel' or 'tensor'")
        super().add_param_group(param_group)

    @staticmethod
    def _projector(group: dict[str, Any], state: dict[str, Any]) -> Any:
        keys = dict(update_proj_gap=group["update_proj_gap"], scale=group["scale"],
                    proj_type=group["proj_type"])
        if group["proj"] == "random":
            return RandomProjector(group["rank"], seed=state["seed"], **keys)
        return GaLoreProjector(group["rank"], **keys)

    @torch.no_grad()
    def step(  # type: ignore[override]  # torch's stub: None without a closure
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """One step; ``closure`` re-runs the model and returns the loss."""
        loss = evaluate(closure)
        refuse_pieces(self)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError("APOLLO does not support sparse gradients")
                state = self.state[param]
                state.setdefault("step", 0)
                grad = param.grad
                if "rank" in group:
                    norm_dim = 0 if grad.shape[0] < grad.shape[1] else 1   # the long side
                    if "projector" not in state:
                        state["projector"] = self._projector(group, state)
                    grad = state["projector"].project(grad, state["step"])     # R_t
                direction, step_size = adamw_direction(grad, state, group)    # R̃_t
                if "rank" in group:
                    direction = self._scaled_gradient(param.grad, grad, direction,
                                                      norm_dim, state, group)
                param.add_(direction, alpha=-step_size)
                decay(param, group)
        return loss

    def _scaled_gradient(self, full: torch.Tensor, low: torch.Tensor, adapted: torch.Tensor,
                         norm_dim: int, state: dict[str, Any], group: dict[str, Any]
                         ) -> torch.Tensor:
        """The raw gradient scaled by ‖R̃‖/‖R‖ per channel (or per tensor),
        times √α, through the norm-growth limiter."""
        if group["scale_type"] == "channel":
            factor = torch.norm(adapted, dim=norm_dim) / (torch.norm(low, dim=norm_dim) + 1e-8)
            if norm_dim == 1:
                factor = factor.unsqueeze(1)
        else:
            factor = torch.norm(adapted) / (torch.norm(low) + 1e-8)
        scaled = full * factor
        root_scale = math.sqrt(group["scale"])
        if self.scale_front:
            scaled *= root_scale
        if not self.disable_nl:
            if "scaled_grad" in state:
                norm = torch.norm(scaled)
                limiter = max(norm / (state["scaled_grad"] + 1e-8), 1.01) / 1.01
                scaled = scaled / limiter
                state["scaled_grad"] = norm / limiter
            else:
                state["scaled_grad"] = torch.norm(scaled)
        if not self.scale_front:
            scaled *= root_scale
        return scaled
