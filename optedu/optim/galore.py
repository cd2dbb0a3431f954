r"""GaLore: AdamW on a low-rank projection of each matrix's gradient (Zhao et
al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection",
ICML 2024), with the arguments, group keys and state of ``galore-torch`` 1.0.

For a matrix :math:`W \in \mathbb{R}^{m\times n}` (:math:`m \ge n`) with
gradient :math:`G_t`, every ``update_proj_gap`` steps GaLore takes the top
``rank`` right singular vectors of the *current gradient*,
:math:`P = V_r^\top \in \mathbb{R}^{r\times n}` (Algorithm 2, "if t mod T =
0"), and in between keeps :math:`P` fixed:

.. math::

    R_t &= G_t P^\top \in \mathbb{R}^{m\times r}
        \quad\text{(project; } P G_t \text{ on the left side when } m<n) \\
    M_t &= \beta_1 M_{t-1} + (1-\beta_1) R_t,\qquad
    V_t = \beta_2 V_{t-1} + (1-\beta_2) R_t^2 \\
    N_t &= M_t / (\sqrt{V_t} + \epsilon) \\
    W_t &= W_{t-1} - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
        \alpha\, N_t P - \eta\lambda W \quad\text{(project back, scale } \alpha)

so the optimizer state of an :math:`m\times n` matrix is two
:math:`m\times r` moments plus the :math:`r\times n` projector, instead of two
:math:`m\times n` moments. The moments are *not* rotated when the projector
changes (the paper's choice: they simply continue in the new basis).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from ._sharding import refuse_pieces
from .optimizer import evaluate
from ._validation import check_betas, check_integer, check_non_negative, invalid

PROJ_TYPES = ("std", "reverse_std", "right", "left", "full")


def orthogonal_matrix(grad: torch.Tensor, rank: int, side: str) -> Any:
    r"""The projector from the SVD :math:`G = U\Sigma V^\top`: ``right``
    :math:`V_r^\top` (r×n), ``left`` :math:`U_r` (m×r), ``full`` both.

    As galore-torch does, a tensor that is not float32 is decomposed in
    float32 and the factor cast back: a float64 run projects on float32
    singular vectors.
    """
    matrix = grad if grad.dtype == torch.float else grad.float()
    u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    if side == "right":
        return vh[:rank, :].to(grad.dtype)
    if side == "left":
        return u[:, :rank].to(grad.dtype)
    return [u[:, :rank].to(grad.dtype), vh[:rank, :].to(grad.dtype)]


def projection_side(proj_type: str, shape: Sequence[int]) -> str:
    """Which side a gradient of ``shape`` is projected on: ``std`` projects
    the longer side away (the moments are ``max(m, n) × rank``),
    ``reverse_std`` the shorter one."""
    tall = shape[0] >= shape[1]
    if proj_type == "std":
        return "right" if tall else "left"
    if proj_type == "reverse_std":
        return "left" if tall else "right"
    return proj_type


class GaLoreProjector:
    """The projector of one matrix: its attributes and methods are galore-
    torch's (``rank``, ``verbose``, ``update_proj_gap``, ``scale``,
    ``ortho_matrix``, ``proj_type``, ``project``, ``project_back``), so a
    checkpoint, which stores this object, moves between the two packages;
    ``svd_count`` (apollo-torch's copy of it counts its SVDs) too."""

    def __init__(self, rank: int, verbose: bool = False, update_proj_gap: int = 200,
                 scale: float = 1.0, proj_type: str = "std") -> None:
        self.rank = rank
        self.verbose = verbose
        self.update_proj_gap = update_proj_gap
        self.scale = scale
        self.ortho_matrix: Any = None
        self.proj_type = proj_type
        self.svd_count = 0

    def project(self, grad: torch.Tensor, step: int) -> torch.Tensor:
        """The low-rank gradient; a new projector first when ``step`` (steps
        taken before this one) is a multiple of ``update_proj_gap``."""
        side = projection_side(self.proj_type, grad.shape)
        if self.ortho_matrix is None or step % self.update_proj_gap == 0:
            self.ortho_matrix = orthogonal_matrix(grad, self.rank, side)
            self.svd_count += 1
        if side == "right":
            return grad @ self.ortho_matrix.t()                  # G Pᵀ   (m×r)
        if side == "left":
            return self.ortho_matrix.t() @ grad                  # Uᵀ G   (r×n)
        left, right = self.ortho_matrix
        return left.t() @ grad @ right.t()                       # Uᵀ G Vᵀ (r×r)

    def project_back(self, low: torch.Tensor) -> torch.Tensor:
        """``low`` back in the full space, times ``scale``. The side is
        read, as galore-torch reads it, from the *low-rank* shape (``std``:
        tall means right), which agrees with :meth:`project` whenever
        ``rank`` is below both sides."""
        if self.proj_type == "std":
            side = "right" if low.shape[0] >= low.shape[1] else "left"
        elif self.proj_type == "reverse_std":
            side = "left" if low.shape[0] <= low.shape[1] else "right"
        else:
            side = self.proj_type
        if side == "right":
            full = low @ self.ortho_matrix
        elif side == "left":
            full = self.ortho_matrix @ low
        else:
            full = self.ortho_matrix[0] @ low @ self.ortho_matrix[1]
        return full * self.scale


def state_shapes(shape: tuple[int, ...], group: dict[str, Any], *, random: bool = False
                 ) -> dict[str, tuple[int, ...]]:
    """The closed form of a parameter's state tensors (for the memory table): the moments in
    the projected shape and the projector (``random``: APOLLO's Gaussian, whose rank is not
    capped by the SVD's); without ``rank`` (or for a non-matrix) AdamW's two moments. The
    ``step`` is a Python int (no tensor)."""
    if "rank" not in group or len(shape) != 2:
        return {"exp_avg": shape, "exp_avg_sq": shape}
    m, n = shape
    r = group["rank"] if random else min(group["rank"], m, n)
    side = projection_side(group["proj_type"], shape)
    moments = {"right": (m, r), "left": (r, n), "full": (r, r)}[side]
    projector = {"right": (r, n), "left": (m, r), "full": (m * r + r * n,)}[side]
    return {"exp_avg": moments, "exp_avg_sq": moments, "projector": projector}


def check_low_rank_group(group: dict[str, Any], proj_types: Iterable[str] = PROJ_TYPES) -> None:
    """A group that sets ``rank`` must set the projector's keys, valid."""
    if "rank" not in group:
        return
    for key in ("update_proj_gap", "scale", "proj_type"):
        if key not in group:
            raise invalid(key, None, "set in every group that sets rank")
    check_integer("rank", group["rank"], 1)
    check_integer("update_proj_gap", group["update_proj_gap"], 1)
    check_non_negative("scale", group["scale"])
    if group["proj_type"] not in tuple(proj_types):
        raise invalid("proj_type", group["proj_type"], f"one of {tuple(proj_types)}")


def adamw_direction(grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
                    ) -> tuple[torch.Tensor, float]:
    """Hugging Face AdamW's moments on ``grad`` (created on first sight, in
    ``grad``'s shape) and its normalised direction :math:`m/(\\sqrt{v}+\\epsilon)`
    with the step size :math:`\\eta\\sqrt{1-\\beta_2^t}/(1-\\beta_1^t)`."""
    if "exp_avg" not in state:
        state["exp_avg"] = torch.zeros_like(grad)
        state["exp_avg_sq"] = torch.zeros_like(grad)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    beta1, beta2 = group["betas"]
    state["step"] += 1
    exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)              # m_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)  # v_t
    denom = exp_avg_sq.sqrt().add_(group["eps"])                   # √v_t + ε
    step_size = group["lr"]
    if group["correct_bias"]:
        step_size = (step_size * math.sqrt(1.0 - beta2 ** state["step"])
                     / (1.0 - beta1 ** state["step"]))
    return exp_avg / denom, step_size


def decay(param: torch.Tensor, group: dict[str, Any]) -> None:
    """Decoupled weight decay *after* the step, on the moved weights:
    :math:`W \\leftarrow W - \\eta\\lambda W` (Hugging Face AdamW's order)."""
    if group["weight_decay"] > 0.0:
        param.add_(param, alpha=-group["lr"] * group["weight_decay"])


class GaLoreAdamW(torch.optim.Optimizer):
    r"""AdamW with GaLore's gradient projection in the groups that set
    ``rank`` (Zhao et al., ICML 2024), as ``galore_torch.GaLoreAdamW``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups. A
            group with ``rank`` (an integer, the projection's rank) must also
            set ``update_proj_gap`` (steps between SVDs, the paper's T),
            ``scale`` (:math:`\alpha`, the factor on the projected-back
            update) and ``proj_type`` (``"std"``: project the longer side
            away; ``"reverse_std"``, ``"left"``, ``"right"``, ``"full"``:
            both sides). Its tensors must be matrices. Other groups are
            plain AdamW.
        lr: :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1,\beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, added to :math:`\sqrt{v}` (default ``1e-6``,
            Hugging Face's AdamW's, not torch's 1e-8).
        weight_decay: :math:`\lambda`, applied after the step (default 0).
        correct_bias: Adam's bias correction (default ``True``).

    State per parameter: ``step`` (a Python int), ``projector`` (a
    :class:`GaLoreProjector`, low-rank groups only), ``exp_avg`` and
    ``exp_avg_sq`` in the *projected* shape (``max(m, n) × rank`` for
    ``std``; the full shape in plain groups).

    Differences from ``galore-torch`` 1.0 (bit-identical, both dtypes):
    ``no_deprecation_warning`` is left out; bad arguments raise ``ValueError``
    in optedu's wording, and a low-rank group is checked when added (there
    a missing key is a ``KeyError`` at the first step). Quirks kept: the SVD
    of a float64 gradient runs in float32; the decay multiplies the weights
    *after* the step; a refresh does not rotate the moments.
    """

    # FSDP2 shards and ZeRO pieces (._sharding): refused, before any state moves
    element_wise = False
    couples_tensors = False
    refuses_shards = "its projection is a singular value decomposition of the whole matrix"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "correct_bias": correct_bias}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        check_low_rank_group(param_group)
        super().add_param_group(param_group)

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
                    raise RuntimeError("GaLoreAdamW does not support sparse gradients")
                state = self.state[param]
                state.setdefault("step", 0)
                grad = param.grad
                if "rank" in group:
                    if "projector" not in state:
                        state["projector"] = GaLoreProjector(
                            group["rank"], update_proj_gap=group["update_proj_gap"],
                            scale=group["scale"], proj_type=group["proj_type"])
                    grad = state["projector"].project(grad, state["step"])   # R_t
                direction, step_size = adamw_direction(grad, state, group)
                if "rank" in group:
                    direction = state["projector"].project_back(direction)   # α N_t P
                param.add_(direction, alpha=-step_size)
                decay(param, group)
        return loss
