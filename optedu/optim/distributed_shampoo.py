r"""Distributed Shampoo (Anil et al., 2020) on one process: Shampoo's Kronecker factors on
blocks of at most ``block_size``, their inverse roots by a coupled Newton iteration with an ε
relative to the largest eigenvalue, refreshed every few steps, and the step's length grafted
from a diagonal rule (the rule of the submission that won AlgoPerf's external-tuning track,
run there by Shi et al.'s PyTorch implementation)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import torch

from ._validation import check_integer, check_interval, check_non_negative, invalid
from .optimizer import Group, Optimizer, State, new_step_counter

GRAFTS = ("sgd", "adagrad", "rmsprop", "rmsprop_normalized", "sqrt_n", "adagrad_normalized")
PRECONDITIONER_TYPES = ("all", "input")


def merge_small_dims(shape: Sequence[int], max_dim: int) -> list[int]:
    """Neighbouring dimensions multiplied together while the product stays within ``max_dim``;
    dimensions of size 1 vanish (a tensor of ones only becomes ``[1]``).

    >>> merge_small_dims([1, 2, 512, 1, 2048, 1, 3, 4], 1024)
    [1024, 2048, 12]
    """
    if shape and all(d == 1 for d in shape):
        return [1]
    merged, product = [], 1
    for d in shape:
        if product * d <= max_dim:
            product *= d
        else:
            if product > 1:
                merged.append(product)
            product = d
    return merged + [product] if product > 1 else merged


def block_sizes(shape: Sequence[int], block_size: int) -> list[list[int]]:
    """Each dimension cut into pieces of ``block_size``, the last one shorter.

    >>> block_sizes([9, 4], 4)
    [[4, 4, 1], [4]]
    """
    return [[block_size] * ((d - 1) // block_size) + [d - (d - 1) // block_size * block_size]
            if 0 < block_size < d else [d] for d in shape]


def partition(tensor: torch.Tensor, sizes: list[list[int]]) -> list[torch.Tensor]:
    """The blocks of ``tensor``, the first dimension's pieces outermost."""
    blocks = [tensor]
    for axis, pieces in enumerate(sizes):
        blocks = [b for block in blocks for b in torch.split(block, pieces, dim=axis)]
    return blocks


def merge_partitions(blocks: list[torch.Tensor], sizes: list[list[int]]) -> torch.Tensor:
    """The tensor :func:`partition` cut, from its blocks."""
    for axis in reversed(range(len(sizes))):
        n = len(sizes[axis])
        blocks = [torch.cat(blocks[i:i + n], dim=axis) for i in range(0, len(blocks), n)]
    return blocks[0]


@lru_cache(maxsize=64)
def _start_vector(n: int) -> tuple[float, ...]:
    """``numpy.random.RandomState(1729).uniform(-1, 1, n)``, the reference's start for the
    power iteration: MT19937 seeded as numpy seeds it (CPython's generator is the same
    MT19937), two 32-bit draws per double as numpy makes them."""
    mt = [1729]
    for i in range(1, 624):
        mt.append((1812433253 * (mt[-1] ^ (mt[-1] >> 30)) + i) & 0xFFFFFFFF)
    rng = random.Random()
    rng.setstate((3, (*mt, 624), None))
    return tuple(-1.0 + 2.0 * ((rng.getrandbits(32) >> 5) * 67108864.0
                                + (rng.getrandbits(32) >> 6)) / 9007199254740992.0
                 for _ in range(n))


def power_iteration(matrix: torch.Tensor, num_iters: int = 100,
                    error_tolerance: float = 1e-6) -> torch.Tensor:
    r"""The largest eigenvalue of a symmetric PSD matrix: :math:`v \leftarrow Av/\|Av\|`
    until :math:`v^\top A v` moves by at most ``error_tolerance``."""
    v = torch.tensor(_start_vector(matrix.shape[0]), dtype=torch.float64).to(matrix)
    s = matrix.new_zeros(())
    for _ in range(num_iters):
        v = v / torch.linalg.vector_norm(v)
        s_v = matrix @ v                                         # A v
        s_new = v @ s_v                                          # vᵀ A v
        converged = not bool((s_new - s).abs() > error_tolerance)
        v, s = s_v, s_new
        if converged:
            break
    return s


def mat_power(matrix: torch.Tensor, p: int) -> torch.Tensor:
    """:math:`M^p` by repeated squaring, in the reference's order of products."""
    power = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    while p > 0:
        if p % 2 == 1:
            power = matrix @ power
        p //= 2
        matrix = matrix @ matrix
    return power


def matrix_inverse_pth_root(matrix: torch.Tensor, p: int, *, ridge_epsilon: float,
                            relative_epsilon: bool = True, num_iters: int = 100,
                            error_tolerance: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`(A + \epsilon I)^{-1/p}` by the coupled Newton iteration (Higham, *Functions
    of Matrices*, eq. 7.18), in ``matrix``'s dtype, with :math:`\epsilon` = ``ridge_epsilon``
    times the largest eigenvalue (``relative_epsilon``; at least :math:`10^{-6}`), and the
    iteration's error :math:`\max|M - I|` (float32) by which a root is judged.

    .. math::

        z = \frac{1 + p}{2\|A_\epsilon\|_F},\quad M_0 = z A_\epsilon,\quad H_0 = z^{1/p} I,
        \qquad M_{k+1} = \Bigl(\tfrac{(p+1)I - M_k}{p}\Bigr)^p M_k,\quad
        H_{k+1} = H_k\,\tfrac{(p+1)I - M_k}{p}

    :math:`M_k \to I` and :math:`H_k \to A_\epsilon^{-1/p}`; it stops at 100 iterations, at
    an error of ``error_tolerance``, or when the error grows by 1.2 times, keeping then the
    :math:`H` before the last step."""
    identity = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    max_ev = power_iteration(matrix) if relative_epsilon else matrix.new_tensor(1.0)
    ridge = ridge_epsilon * torch.clamp(max_ev, min=1e-6)
    damped = matrix + ridge * identity                           # A + εI
    alpha = -1.0 / p
    z = (1 + p) / (2 * torch.linalg.matrix_norm(damped))
    mat_m = damped * z                                           # M_0
    error = (mat_m - identity).abs().max()
    mat_h = identity * z ** (1.0 / p)                            # H_0
    old_mat_h, ratio = mat_h, 1.0
    for _ in range(num_iters):
        if not (error > error_tolerance and ratio < 1.2):
            break
        mat_m_i = (1 - alpha) * identity + alpha * mat_m         # ((p+1)I - M)/p
        mat_m = mat_power(mat_m_i, p) @ mat_m
        old_mat_h, mat_h = mat_h, mat_h @ mat_m_i
        new_error = (mat_m - identity).abs().max()
        ratio, error = float(new_error / error), new_error
    error = (mat_m - identity).abs().max().to(torch.float32)
    return (mat_h if ratio < 1.2 else old_mat_h), error


def distributed_shampoo(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: State,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    diagonal_epsilon: float,
    matrix_epsilon: float,
    weight_decay: float,
    graft_type: str,
    nesterov: bool,
    exponent_override: int,
    moving_average_for_momentum: bool,
    decoupled_weight_decay: bool,
    decoupled_learning_rate: bool,
    inverse_failure_threshold: float,
    relative_matrix_epsilon: bool,
    clip_by_scaled_gradient_norm: float | None,
    shape: list[int],
    sizes: list[list[int]] | None,
    axes: int,
    update_statistics: bool,
    refresh: bool,
    precondition: bool,
) -> None:
    r"""One Distributed Shampoo step on one tensor, in place (the formulas in
    :class:`DistributedShampoo`). ``shape`` is the tensor as preconditioned (small dimensions
    merged), ``sizes`` its blocks' sizes (``None``: the tensor takes the grafted step), ``axes`` the dimensions with a factor (all, or all
    but the last); ``update_statistics``, ``refresh`` and ``precondition`` say whether this
    step adds to the factors, recomputes their roots, and takes Shampoo's direction."""
    # the grafted rule: its step gives the length
    scaled = grad
    if graft_type.endswith("_normalized"):
        scaled = grad / (torch.linalg.vector_norm(grad) + 1e-16)     # g / ‖g‖
    if graft_type.startswith("adagrad"):
        state["diagonal_statistics"] = state["diagonal_statistics"] + scaled.square()
        graft = scaled / (state["diagonal_statistics"].sqrt() + diagonal_epsilon)
    elif graft_type.startswith("rmsprop"):
        w2 = beta2 if beta2 == 1.0 else 1.0 - beta2
        state["diagonal_statistics"] = beta2 * state["diagonal_statistics"] + w2 * scaled.square()
        graft = scaled / (state["diagonal_statistics"].sqrt() + diagonal_epsilon)
        if clip_by_scaled_gradient_norm:
            rms = torch.linalg.vector_norm(graft) / float(graft.numel()) ** 0.5
            graft = graft / torch.clamp(rms / clip_by_scaled_gradient_norm, min=1.0)
    elif graft_type == "sgd":
        graft = grad
    else:                                                        # sqrt_n: ‖sign g‖ = √n
        graft = grad.sign()
    if not decoupled_learning_rate:
        graft = graft * lr
    # Shampoo's direction: each block's factors updated, their roots refreshed, applied
    if sizes is not None:
        statistics, roots = state["statistics"], state["preconditioners"]
        blocks = partition(grad.reshape(shape), sizes)
        if update_statistics:
            w2 = beta2 if beta2 == 1.0 else 1.0 - beta2
            for k, block in enumerate(blocks):
                for axis in range(axes):
                    g = block.movedim(axis, 0).reshape(block.shape[axis], -1)
                    i = k * axes + axis                          # L ← β₂ L + (1-β₂) G Gᵀ
                    statistics[i] = beta2 * statistics[i] + w2 * (g @ g.t())
        if refresh and statistics:
            p = exponent_override or 2 * axes
            for i, stat in enumerate(statistics):
                root, error = matrix_inverse_pth_root(
                    stat.to(torch.float64), p, ridge_epsilon=matrix_epsilon,
                    relative_epsilon=relative_matrix_epsilon)
                if not (error.isnan() or error >= inverse_failure_threshold):
                    roots[i] = root.to(stat.dtype)               # else keep the last root
        preconditioned = []
        for k, block in enumerate(blocks):
            for axis in range(len(sizes)):                       # G ×₀ P₀ ×₁ P₁ ...
                block = (torch.tensordot(block, roots[k * axes + axis], dims=([0], [0]))
                         if axis < axes else block.movedim(0, -1))
            preconditioned.append(block)
        direction = merge_partitions(preconditioned, sizes).reshape(param.shape)
    else:
        direction = graft
    # grafting: Shampoo's direction, the grafted step's length
    shampoo = direction * (torch.linalg.vector_norm(graft)
                           / (torch.linalg.vector_norm(direction) + 1e-16))
    if weight_decay != 0 and not decoupled_weight_decay:
        shampoo = shampoo + weight_decay * param                 # + λθ
        graft = graft + weight_decay * param
    w = 1.0 - beta1 if moving_average_for_momentum else 1.0
    state["momentum"] = state["momentum"] * beta1 + w * shampoo  # m ← β₁ m + w u
    state["diagonal_momentum"] = state["diagonal_momentum"] * beta1 + w * graft
    momentum, update = ((state["momentum"], shampoo) if precondition
                        else (state["diagonal_momentum"], graft))
    if nesterov:
        momentum = w * update + beta1 * momentum                 # w u + β₁ m
    if weight_decay != 0 and decoupled_weight_decay:
        momentum = momentum + lr * weight_decay * param
    param.add_(momentum * (-1.0 * (lr if decoupled_learning_rate else 1.0)))


class DistributedShampoo(Optimizer):
    r"""Distributed Shampoo (Anil, Gupta, Koren, Regan and Singer, "Scalable second order
    optimization for deep learning", 2020), as Google's ``optax_shampoo.distributed_shampoo``
    (0.0.6, the authors' package) runs it on one process; its PyTorch counterpart, the
    implementation that won AlgoPerf, is Shi et al.'s ("A distributed data-parallel PyTorch
    implementation of the distributed Shampoo optimizer for training neural networks at
    scale", 2023).

    Each tensor is reshaped (dimensions merged while their product stays within
    ``merge_small_dims_block_size``) and cut into blocks of at most ``block_size`` per
    dimension. Each block :math:`G` of order :math:`k` keeps one factor per dimension, and
    at step :math:`t` (counted from 0):

    .. math::

        L^{(i)} &\leftarrow \beta_2 L^{(i)} + (1-\beta_2)\, G_{(i)} G_{(i)}^\top
            \ \ (\text{every } S \text{ steps; sums if } \beta_2 = 1;\ L^{(i)}_0 = \epsilon I) \\
        P^{(i)} &\leftarrow \bigl(L^{(i)} + \epsilon\,\lambda_{\max}(L^{(i)})\, I
            \bigr)^{-1/p},\ p = 2k
            \ \ (\text{every } T \text{ steps, Newton; kept if it fails; } P_0 = I) \\
        D &= G \times_1 P^{(1)} \cdots \times_k P^{(k)},
            \qquad u = D\,\frac{\|a\|}{\|D\| + 10^{-16}} \\
        a &= \text{the grafted rule's step: } g \ (\text{SGD}),\
            g / (\sqrt{\textstyle\sum g^2} + \epsilon_d) \ (\text{AdaGrad}),\
            \operatorname{sign} g \ (\text{SQRT\_N}), \dots \\
        m &\leftarrow \beta_1 m + w\,(u + \lambda\theta),
            \quad m_a \leftarrow \beta_1 m_a + w\,(a + \lambda\theta)
            \quad (w = 1 - \beta_1 \text{ or } 1) \\
        \theta &\leftarrow \theta - \eta\,\bigl(w\,(u + \lambda\theta) + \beta_1 m\bigr)
            \ \ (\text{Nesterov; else } \eta m)

    with :math:`u, m` replaced by :math:`a, m_a` while :math:`t <` ``start_preconditioning_step``:
    the diagonal rule runs alone until the factors hold enough. ``decoupled_weight_decay``
    moves :math:`\lambda\theta` out of the momenta, to :math:`\theta \leftarrow \theta -
    \eta(\dots + \eta\lambda\theta)` (the reference's :math:`\eta^2\lambda`); without
    ``decoupled_learning_rate``, :math:`\eta` scales :math:`a` instead of the step.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta` (default ``1e-3``; the reference has no default).
        block_size: the largest factor's side (default ``128``, the reference's advice).
        beta1: :math:`\beta_1`, the momentum (default ``0.9``).
        beta2: :math:`\beta_2`, the statistics' and RMSProp's average; ``1`` sums (default
            ``0.999``).
        diagonal_epsilon: :math:`\epsilon_d` of the AdaGrad and RMSProp grafts (``1e-10``).
        matrix_epsilon: :math:`\epsilon` (default ``1e-6``).
        weight_decay: :math:`\lambda` (default ``0``).
        start_preconditioning_step: the first step (from 0) that takes Shampoo's direction
            (default ``5``).
        preconditioning_compute_steps: :math:`T` (default ``1``); between refreshes the roots
            are stale.
        statistics_compute_steps: :math:`S` (default ``1``).
        best_effort_shape_interpretation: merge small dimensions (default ``True``).
        graft_type: ``"sgd"`` (default), ``"adagrad"``, ``"rmsprop"``,
            ``"rmsprop_normalized"``, ``"sqrt_n"`` or ``"adagrad_normalized"`` (the
            reference's ``GraftingType``; normalised: :math:`g/(\|g\| + 10^{-16})` first).
        nesterov: Nesterov's momentum (default ``True``).
        exponent_override: :math:`p` for every factor instead of :math:`2k` (default ``0``:
            none).
        moving_average_for_momentum: :math:`w = 1-\beta_1` (default ``False``: :math:`w=1`).
        inverse_failure_threshold: a root whose Newton error :math:`\max|M - I|` reaches this
            (or is NaN) is dropped and the last one kept (default ``0.1``).
        skip_preconditioning_dim_size_gt: a tensor with a dimension above this takes the
            grafted step (default ``4096``).
        skip_preconditioning_rank_lt: so does a tensor of lower order (default ``1``: scalars).
        clip_by_scaled_gradient_norm: RMSProp grafts: the step's RMS clipped to this
            (default ``None``).
        relative_matrix_epsilon: :math:`\epsilon` relative to :math:`\lambda_{\max}` (default
            ``True``; else absolute).
        merge_small_dims_block_size: the largest merged dimension (default ``4096``).
        preconditioner_type: ``"all"`` (default) or ``"input"``: no factor for the last
            dimension (one-sided Shampoo); the reference's ``precondtioner_type``.
        decoupled_learning_rate: :math:`\eta` on the step, not on :math:`a` (default ``True``).
        decoupled_weight_decay: default ``False``.

    State per tensor: ``step`` (steps taken), ``momentum`` and ``diagonal_momentum``
    (:math:`m`, :math:`m_a`, the tensor's shape), ``diagonal_statistics`` (AdaGrad and RMSProp
    grafts), ``statistics`` and ``preconditioners`` (lists of the blocks' factors and roots, in
    the reference's order: block by block, the first dimension's pieces outermost, a factor per
    dimension), named as the reference's ``ParameterStats``. Roots are computed in float64
    (the reference's ``_MAT_INV_PTH_ROOT_DTYPE``) and kept in the tensor's dtype.

    Differences from optax-shampoo 0.0.6: the learning rate is the group's (torch's
    schedulers set it), not a schedule of the step; each tensor counts its own steps (one
    without a gradient does not step); state is kept in the tensor's dtype (the reference
    keeps its factors in float32 and fails on float64 tensors). The reference pads every
    factor of the model to one size and takes a root in closed form only when all are 1 × 1;
    here the Newton iteration always runs, as it does there in any model with a larger factor.
    The numbers: float32 within 4 × the measured 3e-7 to 9e-6 (relative; XLA fuses
    :math:`ab + c` into one rounding, torch rounds twice), float64 within 3e-13
    (``tests/optim/test_distributed_shampoo.py``). Left out: the arguments of its
    multi-device modes (``batch_axis_name``, ``statistics_partition_spec``,
    ``preconditioner_partition_spec``, ``num_devices_for_pjit``, ``shard_optimizer_states``:
    one process holds every tensor here; with torch.distributed, average the gradients
    before ``step()``); XLA's ``precision`` and
    ``tensordot_precision`` (torch's CPU matmuls are full precision);
    ``best_effort_memory_usage_reduction`` (int8 and int16 quantised state);
    ``lobpcg_topk_precondition`` and ``lobpcg_max_iter`` (a deflation of the top eigenvectors
    before the root); ``generate_training_metrics`` (the Newton errors as diagnostics).
    """

    supports_complex = False
    refuses_shards = "its factors and their roots need whole blocks of the tensor"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        block_size: int = 128,
        beta1: float = 0.9,
        beta2: float = 0.999,
        diagonal_epsilon: float = 1e-10,
        matrix_epsilon: float = 1e-6,
        weight_decay: float = 0.0,
        start_preconditioning_step: int = 5,
        preconditioning_compute_steps: int = 1,
        statistics_compute_steps: int = 1,
        best_effort_shape_interpretation: bool = True,
        graft_type: str = "sgd",
        nesterov: bool = True,
        exponent_override: int = 0,
        moving_average_for_momentum: bool = False,
        inverse_failure_threshold: float = 0.1,
        skip_preconditioning_dim_size_gt: int = 4096,
        skip_preconditioning_rank_lt: int = 1,
        clip_by_scaled_gradient_norm: float | None = None,
        relative_matrix_epsilon: bool = True,
        merge_small_dims_block_size: int = 4096,
        preconditioner_type: str = "all",
        decoupled_learning_rate: bool = True,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_integer("block_size", block_size, 1)
        check_interval("beta1", beta1, 0.0, 1.0)
        check_interval("beta2", beta2, 0.0, 1.0)
        check_non_negative("diagonal_epsilon", diagonal_epsilon)
        check_non_negative("matrix_epsilon", matrix_epsilon)
        check_non_negative("weight_decay", weight_decay)
        check_integer("start_preconditioning_step", start_preconditioning_step, 0)
        check_integer("preconditioning_compute_steps", preconditioning_compute_steps, 1)
        check_integer("statistics_compute_steps", statistics_compute_steps, 1)
        if graft_type not in GRAFTS:
            raise invalid("graft_type", graft_type, f"one of {', '.join(GRAFTS)}")
        check_integer("exponent_override", exponent_override, 0)
        check_non_negative("inverse_failure_threshold", inverse_failure_threshold)
        check_integer("skip_preconditioning_dim_size_gt", skip_preconditioning_dim_size_gt, 1)
        check_integer("skip_preconditioning_rank_lt", skip_preconditioning_rank_lt, 0)
        if clip_by_scaled_gradient_norm is not None:
            check_non_negative("clip_by_scaled_gradient_norm", clip_by_scaled_gradient_norm)
        check_integer("merge_small_dims_block_size", merge_small_dims_block_size, 1)
        if preconditioner_type not in PRECONDITIONER_TYPES:
            raise invalid("preconditioner_type", preconditioner_type, "'all' or 'input'")
        defaults = dict(
            lr=lr, block_size=block_size, beta1=beta1, beta2=beta2,
            diagonal_epsilon=diagonal_epsilon, matrix_epsilon=matrix_epsilon,
            weight_decay=weight_decay, start_preconditioning_step=start_preconditioning_step,
            preconditioning_compute_steps=preconditioning_compute_steps,
            statistics_compute_steps=statistics_compute_steps,
            best_effort_shape_interpretation=best_effort_shape_interpretation,
            graft_type=graft_type, nesterov=nesterov, exponent_override=exponent_override,
            moving_average_for_momentum=moving_average_for_momentum,
            inverse_failure_threshold=inverse_failure_threshold,
            skip_preconditioning_dim_size_gt=skip_preconditioning_dim_size_gt,
            skip_preconditioning_rank_lt=skip_preconditioning_rank_lt,
            clip_by_scaled_gradient_norm=clip_by_scaled_gradient_norm,
            relative_matrix_epsilon=relative_matrix_epsilon,
            merge_small_dims_block_size=merge_small_dims_block_size,
            preconditioner_type=preconditioner_type,
            decoupled_learning_rate=decoupled_learning_rate,
            decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    @staticmethod
    def layout(param: torch.Tensor,
               group: Group) -> tuple[list[int], list[list[int]] | None, int]:
        """The shape ``param`` is preconditioned in, its blocks' sizes (``None``: it takes
        the grafted step), and the number of its dimensions with a factor."""
        shape = list(param.shape)
        if (len(shape) < group["skip_preconditioning_rank_lt"]
                or any(d > group["skip_preconditioning_dim_size_gt"] for d in shape)):
            return shape, None, 0
        if group["best_effort_shape_interpretation"]:
            shape = merge_small_dims(shape, group["merge_small_dims_block_size"])
        sizes = block_sizes(shape, group["block_size"])
        one_sided = group["preconditioner_type"] == "input" and len(shape) > 1
        return shape, sizes, len(shape) - one_sided

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        state: State = {"step": new_step_counter(),
                        "momentum": torch.zeros_like(param),
                        "diagonal_momentum": torch.zeros_like(param)}
        if group["graft_type"] not in ("sgd", "sqrt_n"):
            state["diagonal_statistics"] = torch.zeros_like(param)
        _, sizes, axes = self.layout(param, group)
        if sizes is not None:
            eye = [torch.eye(d, dtype=param.dtype, device=param.device)
                   for block in _product(sizes) for d in block[:axes]]
            state["statistics"] = [group["matrix_epsilon"] * e for e in eye]   # εI
            state["preconditioners"] = [e.clone() for e in eye]               # I
        return state

    def update_group(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        for param, grad, state in zip(params, grads, states):
            t = int(state["step"])                         # steps before this one
            state["step"] += 1
            shape, sizes, axes = self.layout(param, group)
            distributed_shampoo(
                param, grad, state, lr=group["lr"], beta1=group["beta1"],
                beta2=group["beta2"], diagonal_epsilon=group["diagonal_epsilon"],
                matrix_epsilon=group["matrix_epsilon"], weight_decay=group["weight_decay"],
                graft_type=group["graft_type"], nesterov=group["nesterov"],
                exponent_override=group["exponent_override"],
                moving_average_for_momentum=group["moving_average_for_momentum"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                decoupled_learning_rate=group["decoupled_learning_rate"],
                inverse_failure_threshold=group["inverse_failure_threshold"],
                relative_matrix_epsilon=group["relative_matrix_epsilon"],
                clip_by_scaled_gradient_norm=group["clip_by_scaled_gradient_norm"],
                shape=shape, sizes=sizes, axes=axes,
                update_statistics=t % group["statistics_compute_steps"] == 0,
                refresh=t % group["preconditioning_compute_steps"] == 0,
                precondition=t >= group["start_preconditioning_step"])


def _product(sizes: list[list[int]]) -> list[tuple[int, ...]]:
    """The blocks' shapes, in :func:`partition`'s order."""
    shapes: list[tuple[int, ...]] = [()]
    for pieces in sizes:
        shapes = [s + (d,) for s in shapes for d in pieces]
    return shapes
