r"""PSGD-Kron: a Kronecker-factored preconditioner fitted by Li's criterion
(Li 2018, "Preconditioned stochastic gradient descent", IEEE TNNLS), in the
gradient-whitening Kron form of Li's psgd-torch as Evan Walters' kron-torch
reworks it (kron-torch's arguments, schedule, damping, debiased momentum and
step clip; tests/optim/test_kron.py), and equal to Li's own psgd-torch 0.6.1
to rounding where the two define the same thing (tests/optim/test_kron_psgd.py)."""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable, Iterable
from typing import Any, cast

import torch

from ._validation import check_integer, check_interval, check_non_negative, invalid
from .optimizer import Optimizer, State, evaluate

LETTERS = string.ascii_lowercase + string.ascii_uppercase
MEMORY_SAVE_MODES = (None, "smart_one_diag", "one_diag", "all_diag")
Exprs = tuple[str, tuple[str, ...], str]


class UpdateProbability:
    r"""The preconditioner update probability as a function of the step
    :math:`n` (a float32 tensor): :math:`p_n = \operatorname{clip}(p_{\max}
    e^{-d\,(n - n_0)}, p_{\min}, p_{\max})`, flat at :math:`p_{\max}` for
    :math:`n_0` steps, then decaying (kron-torch's ``ProbScheduler``,
    computed in float32 as it does)."""

    def __init__(self, max_prob: float = 1.0, min_prob: float = 0.03,
                 decay: float = 0.001, flat_start: float = 500) -> None:
        self.args = (max_prob, min_prob, decay, flat_start)
        self.max_prob, self.min_prob, self.decay, self.flat_start = (
            torch.tensor(a, dtype=torch.float32) for a in self.args)

    def __call__(self, n: torch.Tensor) -> torch.Tensor:
        prob = self.max_prob * torch.exp(-self.decay * (n - self.flat_start))
        return prob.clamp_(min=self.min_prob, max=self.max_prob)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)


def precond_update_prob_schedule(max_prob: float = 1.0, min_prob: float = 0.03,
                                 decay: float = 0.001,
                                 flat_start: float = 500) -> UpdateProbability:
    """The default schedule: probability 1 for 500 steps, then down to 0.03
    by about step 4000."""
    return UpdateProbability(max_prob, min_prob, decay, flat_start)


def diagonal_dims(shape: tuple[int, ...], max_size: int, min_ndim: int,
                  memory_save_mode: str | None) -> list[bool]:
    """Which dimensions get a diagonal factor (the rest a triangular one)."""
    diag = [memory_save_mode == "all_diag"] * len(shape)
    largest = max(range(len(shape)), key=lambda i: (shape[i], i), default=None)
    if largest is not None and (memory_save_mode == "one_diag" or (
            memory_save_mode == "smart_one_diag" and len(shape) > 1
            and sorted(shape)[-1] > sorted(shape)[-2])):
        diag[largest] = True  # the largest dimension (the last one of a tie)
    return [d or size == 1 or size > max_size or len(shape) < min_ndim
            for size, d in zip(shape, diag)]


def einsum_exprs(diag: list[bool]) -> Exprs:
    """The einsum strings for :math:`A = Q\\,G`, the factor statistics and
    :math:`Q^\\top Q\\,G` (letters: ``a``.. the tensor's axes, ``n``.. and
    ``A``.. the factors' other axis), as kron-torch builds them."""
    order = len(diag)
    q_a, g_a, out_a, stats, q_p, q_p2, g_p, out_p = [], "", "", [], [], [], "", ""
    for i, d in enumerate(diag):
        a, b, c = LETTERS[i], LETTERS[i + 13], LETTERS[i + 26]
        swap = lambda x: "".join(x if j == i else LETTERS[j] for j in range(order))
        q_a.append(a if d else a + b)                  # A = Q_i along axis i
        g_a, out_a = g_a + (a if d else b), out_a + a
        stats.append(f"{swap(b)},{swap(b)}->{b}" if d    # diag(A A^T)
                     else f"{swap(b)},{swap(c)}->{b}{c}")  # A A^T over axis i
        q_p.append(b if d else a + b)                  # Q_i^T
        q_p2.append(b if d else a + c)                 # Q_i
        g_p, out_p = g_p + (b if d else c), out_p + b
    return (",".join(q_a) + "," + g_a + "->" + out_a, tuple(stats),
            ",".join(q_p) + "," + ",".join(q_p2) + "," + g_p + "->" + out_p)


def merged_shape(shape: tuple[int, ...]) -> list[int]:
    """The matrix a tensor of 3+ axes is viewed as: ``[prod(shape[:-1]),
    shape[-1]]`` or ``[shape[0], prod(shape[1:])]``, whichever has the
    smaller *signed* difference of its sides (kron-torch's test)."""
    first = [math.prod(shape[:-1]), shape[-1]]
    last = [shape[0], math.prod(shape[1:])]
    return first if first[1] - first[0] <= last[1] - last[0] else last


def factor_shapes(shape: tuple[int, ...], merge_dims: bool = True,
                  max_size_triangular: int = 8192, min_ndim_triangular: int = 2,
                  memory_save_mode: str | None = None) -> list[tuple[int, ...]]:
    """The shapes of the factors ``Q`` for a parameter of ``shape``:
    ``(d, d)`` triangular (stored dense) or ``(d,)`` diagonal per axis.

    >>> factor_shapes((768, 3072)), factor_shapes((768, 3072), memory_save_mode="one_diag")
    ([(768, 768), (3072, 3072)], [(768, 768), (3072,)])
    """
    if len(shape) > 2 and merge_dims:
        shape = tuple(merged_shape(shape))
    diag = diagonal_dims(shape, max_size_triangular, min_ndim_triangular, memory_save_mode)
    return [(n,) if d else (n, n) for n, d in zip(shape, diag)]


def init_preconditioner(grad: torch.Tensor, scale: float, max_size: int, min_ndim: int,
                        memory_save_mode: str | None,
                        dtype: torch.dtype) -> tuple[list[torch.Tensor], Exprs]:
    r"""Factors :math:`Q_i = s^{1/k} I` (or :math:`s^{1/k}\mathbf 1`, diagonal)
    for the :math:`k` axes of ``grad``, and their einsum strings."""
    if grad.dim() > 13:
        raise invalid("grad.dim()", grad.dim(), "at most 13 axes")
    diag = diagonal_dims(tuple(grad.shape), max_size, min_ndim, memory_save_mode)
    scale = scale ** (1 / grad.dim())
    Q = [scale * (torch.ones(n, dtype=dtype, device=grad.device) if d
                   else torch.eye(n, dtype=dtype, device=grad.device))
         for n, d in zip(grad.shape, diag)]
    return Q, einsum_exprs(diag)


def _norm_lower_bound(A: torch.Tensor, max_abs: torch.Tensor) -> torch.Tensor:
    """A cheap lower bound on the spectral norm of the symmetric ``A`` (one
    power step from its largest column); ``A`` is scaled in place."""
    A /= max_abs
    j = torch.argmax(torch.einsum("ij,ij->j", A, A))
    x = torch.index_select(A, 1, j).flatten().contiguous()
    x = torch.einsum("i,ij->j", x, A)
    x /= x.norm()
    return torch.einsum("j,kj->k", x, A).norm() * max_abs


def _right_solve_upper(X: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """:math:`X Q^{-1}` along the last axis, in the factors' dtype, at least float32
    (torch has no half-precision triangular solve). kron-torch 0.3.3 solves in float32
    whatever the dtype, so float64 factors lose half their digits there; Li's psgd-torch
    solves in the factors' dtype, and optedu follows Li."""
    work = torch.promote_types(Q.dtype, torch.float32)
    out = torch.linalg.solve_triangular(Q.to(work), X.reshape(-1, X.size(-1)).to(work),
                                        upper=True, left=False, unitriangular=False)
    return out.to(dtype=Q.dtype).reshape_as(X)


def update_preconditioner(Q: list[torch.Tensor], exprs: Exprs, G: torch.Tensor,
                          precond_lr: torch.Tensor, tiny: torch.Tensor,
                          V: torch.Tensor | None = None) -> None:
    r"""One fit of the factors to the pair :math:`(v, h)`, in place: draws
    :math:`v \sim \mathcal N(0, I)` from torch's global generator (or takes
    ``V``: Li's Hessian form passes :math:`v` with :math:`h = Hv`) and adds
    :math:`\sqrt{\epsilon}\,\overline{|G|}\,v` to ``G`` in place (damping),
    then, with :math:`A = Q G` and :math:`B = Q^{-\top} v` per axis,

    .. math::

        Q_i &\leftarrow Q_i - \frac{\eta_P}{\lVert A A^\top + B B^\top\rVert} \\
            &\qquad \operatorname{triu}(A A^\top - B B^\top)\, Q_i

    (the norm a lower bound of the spectral norm; for a diagonal factor the
    largest entry and the diagonal of the statistics).
    """
    exprA, exprGs, _ = exprs
    order = G.dim()
    V = torch.randn_like(G) if V is None else V                 # v ~ N(0, I)
    eps = torch.tensor(torch.finfo(torch.float32).eps, dtype=G.dtype)
    G += eps.sqrt() * G.abs().mean() * V                        # h = g + damping
    conjB = V.permute(*range(1, order), 0)
    for i, q in enumerate(Q):                                   # B = Q^{-T} v
        conjB = conjB / q if q.dim() < 2 else _right_solve_upper(conjB, q)
        if i < order - 1:
            conjB = torch.transpose(conjB, i, order - 1)
    A = torch.einsum(exprA, *Q, G)                              # A = Q h
    for q, exprG in zip(Q, exprGs):
        AA = torch.einsum(exprG, A, A)
        BB = torch.einsum(exprG, conjB, conjB)
        grad_q, norm_src = AA - BB, AA + BB
        grad_q *= precond_lr
        norm = norm_src.norm(float("inf"))
        if q.dim() < 2:
            grad_q *= q / norm.clamp_(min=tiny)
        else:
            torch.triu(grad_q, out=grad_q)
            grad_q /= torch.where(norm > 0, _norm_lower_bound(norm_src, norm),
                                  norm).clamp_(min=tiny)
            grad_q = torch.mm(grad_q, q)
        q.sub_(grad_q)                             # Q ← Q - η_P ∇Q / ‖·‖


def balance_factors(Q: list[torch.Tensor]) -> None:
    """Rescale the factors to equal largest entries (their product unchanged)."""
    norms = torch.stack([q.norm(float("inf")) for q in Q])
    norms = norms.log().mean().exp() / norms
    torch._foreach_mul_(Q, list(norms))


def kron(param: torch.Tensor, grad: torch.Tensor, state: State, *, lr: float,
         b1: float, weight_decay: float, precond_lr: float, do_update: bool,
         balance: bool, momentum_into_precond_update: bool,
         precond_dtype: torch.dtype) -> None:
    r"""One PSGD-Kron step on one tensor, in place.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \\
        \hat m_t &= m_t / (1-\beta_1^t) \\
        Q &\leftarrow \text{fit}(Q;\ \hat m_t) \\
            &\quad\text{(when it updates)} \\
        u_t &= Q^\top Q\, \hat m_t \quad (\textstyle\bigotimes_i Q_i^\top Q_i) \\
        u_t &\leftarrow u_t \min(1, 1.1/\operatorname{rms}(u_t)) \\
            &\quad + \lambda\theta \ \text{(decay on matrices only)} \\
        \theta_t &= \theta_{t-1} - \eta\, u_t
    """
    state["step"] += 1
    if "merged_shape" in state:
        grad = grad.view(*state["merged_shape"])
    m = state["momentum_buffer"]
    m.mul_(b1).add_(grad, alpha=1 - b1)                 # m_t = β1 m + (1-β1) g
    m_hat = (m / (1 - b1 ** state["step"])).to(dtype=precond_dtype)
    Q, exprs = state["Q"], state["exprs"]
    if grad.dim() > 1 and balance:
        balance_factors(Q)
    if do_update:
        h = m_hat if momentum_into_precond_update else grad.to(precond_dtype, copy=True)
        update_preconditioner(Q, exprs, h,
                              torch.tensor(precond_lr, dtype=precond_dtype, device=h.device),
                              torch.tensor(torch.finfo(precond_dtype).tiny,
                                           dtype=precond_dtype, device=h.device))
    u = torch.einsum(exprs[-1], *Q, *Q, m_hat)          # u = Q^T Q m̂
    u.mul_(torch.minimum(torch.tensor(1.0, dtype=u.dtype, device=u.device),  # rms ≤ 1.1
                         1.1 / u.square().mean().sqrt().add(1e-12)))
    u = u.view(param.shape)
    if weight_decay != 0 and param.dim() >= 2:
        u.add_(param, alpha=weight_decay)               # u += λ θ
    param.add_(u.to(dtype=param.dtype), alpha=-lr)      # θ_t = θ - η u


class Kron(Optimizer):
    r"""PSGD with a Kronecker-factored preconditioner :math:`P = Q^\top Q`,
    :math:`Q = \bigotimes_i Q_i` with each :math:`Q_i` upper triangular (or
    diagonal), fitted to minimise Li's criterion
    :math:`\mathbb E[h^\top P h + v^\top P^{-1} v]` by steps on the group of
    triangular matrices (Li 2018; kron-torch 0.3.3's ``Kron``).

    Args (kron-torch's names and defaults):
        lr: :math:`\eta` (0.0003); b1: momentum :math:`\beta_1` (0.9, debiased);
        weight_decay: :math:`\lambda`, added to the clipped step of tensors
        with two or more axes (0); preconditioner_update_probability: a
        number in (0, 1] or a callable of the step (None: the schedule of
        :func:`precond_update_prob_schedule`), read from the first group;
        max_size_triangular: larger axes get a diagonal factor (8192);
        min_ndim_triangular: tensors with fewer axes get diagonal factors (2);
        memory_save_mode: None, 'smart_one_diag', 'one_diag' or 'all_diag';
        momentum_into_precond_update: fit to :math:`\hat m` rather than
        :math:`g` (True); precond_lr: :math:`\eta_P` (0.1);
        precond_init_scale: :math:`Q_0` scale (1.0); merge_dims: view a
        tensor of 3+ axes as a matrix (True); mu_dtype, precond_dtype
        (None: the parameter's dtype; float32).

    State per parameter: ``step`` (an int), ``momentum_buffer``, ``Q`` (the
    factors), ``exprs`` (einsum strings), ``merged_shape`` (merged tensors).
    The optimizer holds ``_prob_step``, ``_update_counter`` and ``rng``.

    Differences from kron-torch 0.3.3 (the reference the tests run, bit for
    bit against its functions without ``torch.compile``): no
    ``torch.compile`` (compiled, kron-torch's probes come from inductor's
    generator, not the global one: 25 float32 steps end 0.047 apart; with
    inductor's ``fallback_random`` 3e-8, the rounding of fused kernels);
    no printing; a 0-d parameter, which
    kron-torch cannot step, raises; the gradient's probe noise goes into a
    copy, not into ``p.grad``; ``load_state_dict`` rebuilds ``exprs`` from
    the factors (torch's loader turns strings into generator reprs, so
    kron-torch cannot resume even from its own checkpoint). As in kron-torch,
    the schedule position and ``rng`` are not in ``state_dict``. Arguments
    are checked. The triangular solves run in the factors' dtype (at least
    float32), as Li's psgd-torch runs them; kron-torch runs them in float32
    even for float64 factors (``precond_dtype=torch.float64``: 25 steps end
    8.4e-9 apart).

    Differences from Li's psgd-torch 0.6.1 ``Kron`` (whitening form; the
    tests map the arguments and compare within a measured rounding bound):
    the fits fall every :math:`\lceil 1/p \rceil` steps and the factors are
    balanced on a coin of ``rng``, where Li draws both coins from torch's
    global generator; :math:`h` is damped; the momentum is debiased and the
    step clipped to an RMS of 1.1 (Li: neither; his optional clip is on one
    norm over all tensors); the factors default to float32 (Li: the
    parameter's dtype); no Newton form (Hessian-vector products), no
    ``step_normalizer="1st"``, no scale set from the first gradient.
    """

    supports_complex = False
    tensor_step = False   # state["step"] is a Python int, as in kron-torch
    refuses_shards = "its factors span whole axes of a tensor"
    couples_tensors = True  # one update schedule and one draw order for all

    def __init__(self, params: Iterable[Any], lr: float = 0.0003, b1: float = 0.9,
                 weight_decay: float = 0.0,
                 preconditioner_update_probability: float | Callable[..., Any] | None = None,
                 max_size_triangular: int = 8192, min_ndim_triangular: int = 2,
                 memory_save_mode: str | None = None,
                 momentum_into_precond_update: bool = True, precond_lr: float = 0.1,
                 precond_init_scale: float = 1.0, merge_dims: bool = True,
                 mu_dtype: torch.dtype | None = None,
                 precond_dtype: torch.dtype | None = None) -> None:
        check_non_negative("lr", lr)
        if not 0.0 <= b1 < 1.0:
            raise invalid("b1", b1, "a number in [0, 1)")
        check_non_negative("weight_decay", weight_decay)
        if preconditioner_update_probability is None:
            preconditioner_update_probability = precond_update_prob_schedule()
        if not callable(preconditioner_update_probability):
            check_interval("preconditioner_update_probability",
                           preconditioner_update_probability, 0.0, 1.0, open_low=True)
        check_integer("max_size_triangular", max_size_triangular, 1)
        check_integer("min_ndim_triangular", min_ndim_triangular, 0)
        if memory_save_mode not in MEMORY_SAVE_MODES:
            raise invalid("memory_save_mode", memory_save_mode, f"one of {MEMORY_SAVE_MODES}")
        check_non_negative("precond_lr", precond_lr)
        check_interval("precond_init_scale", precond_init_scale, 0.0, float("inf"),
                       open_low=True)
        for name, dtype in (("mu_dtype", mu_dtype), ("precond_dtype", precond_dtype)):
            if dtype is not None and not (isinstance(dtype, torch.dtype)
                                          and dtype.is_floating_point):
                raise invalid(name, dtype, "None or a floating dtype")
        defaults = dict(lr=lr, b1=b1, weight_decay=weight_decay,
                        preconditioner_update_probability=preconditioner_update_probability,
                        max_size_triangular=max_size_triangular,
                        min_ndim_triangular=min_ndim_triangular,
                        memory_save_mode=memory_save_mode,
                        momentum_into_precond_update=momentum_into_precond_update,
                        precond_lr=precond_lr, precond_init_scale=precond_init_scale,
                        merge_dims=merge_dims, mu_dtype=mu_dtype, precond_dtype=precond_dtype)
        super().__init__(params, defaults)
        self._prob_step = torch.tensor(0, dtype=torch.int32)
        self._update_counter = torch.tensor(0, dtype=torch.int32)
        self.rng = random.Random(42)   # draws when to balance the factors

    def __setstate__(self, state: dict[str, Any]) -> None:
        """torch's loader casts every state tensor to its parameter's dtype and
        turns strings into generator reprs: restore the dtypes and ``exprs``."""
        super().__setstate__(state)
        for group in self.param_groups:
            precond_dtype = group["precond_dtype"] or torch.float32
            for p in group["params"]:
                s = self.state.get(p)
                if s and "Q" in s:
                    s["Q"] = [q.to(dtype=precond_dtype) for q in s["Q"]]
                    s["momentum_buffer"] = s["momentum_buffer"].to(
                        dtype=group["mu_dtype"] or p.dtype)
                    s["exprs"] = einsum_exprs([q.dim() < 2 for q in s["Q"]])

    def init_state(self, param: torch.Tensor, group: dict[str, Any]) -> State:
        if param.dim() == 0:
            raise invalid("param.dim()", 0, "a tensor with at least one axis")
        grad = cast(torch.Tensor, param.grad)          # a stepped parameter has one
        state: State = {"step": 0}
        if grad.dim() > 2 and group["merge_dims"]:
            state["merged_shape"] = merged_shape(tuple(grad.shape))
            grad = grad.view(*state["merged_shape"])
        state["momentum_buffer"] = torch.zeros_like(grad, dtype=group["mu_dtype"] or param.dtype)
        state["Q"], state["exprs"] = init_preconditioner(
            grad, group["precond_init_scale"], group["max_size_triangular"],
            group["min_ndim_triangular"], group["memory_save_mode"],
            group["precond_dtype"] or torch.float32)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = evaluate(closure)
        self.refuse_pieces()
        prob = self.param_groups[0]["preconditioner_update_probability"]
        if callable(prob):
            prob = prob(self._prob_step.to(dtype=torch.float32))
        self._update_counter += 1                 # update every ⌈1/p⌉ steps
        do_update = bool(self._update_counter >= 1 / prob)
        if do_update:
            self._update_counter = torch.tensor(0, dtype=torch.int32)
        self._prob_step += 1
        balance = self.rng.random() < 0.01 and do_update
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            self.check_gradients(params)
            for p in params:
                if not self.state[p]:
                    self.state[p] = self.init_state(p, group)
                kron(p, p.grad, self.state[p], lr=group["lr"], b1=group["b1"],
                     weight_decay=group["weight_decay"], precond_lr=group["precond_lr"],
                     do_update=do_update, balance=balance,
                     momentum_into_precond_update=group["momentum_into_precond_update"],
                     precond_dtype=group["precond_dtype"] or torch.float32)
        return loss
