r"""L-BFGS: a quasi-Newton direction from the last few gradient differences,
with an optional strong-Wolfe line search.

The pieces are functions of their own, in the order a derivation meets them:
:func:`two_loop` (the product of the inverse-Hessian estimate with the
gradient), :func:`cubic_minimizer` and :func:`strong_wolfe` (the line
search), then :class:`LBFGS`, which drives them over a closure as
``torch.optim.LBFGS`` does (torch 2.13), operation for operation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._sharding import refuse_sharded
from ._validation import check_integer, check_non_negative, check_tensor_lr, invalid

Number = float | torch.Tensor  # torch keeps some scalars as 0-d tensors; so does optedu


def two_loop(grad: torch.Tensor, dirs: list[torch.Tensor],
             steps: list[torch.Tensor], rhos: list[Number], h_diag: Number,
             alphas: list[Any]) -> torch.Tensor:
    r"""The L-BFGS direction :math:`d = -H g` by the two-loop recursion.

    ``dirs`` are the gradient differences :math:`y_i`, ``steps`` the
    parameter differences :math:`s_i`, ``rhos`` the :math:`1/(y_i^\top s_i)`,
    oldest first; ``h_diag`` is :math:`\gamma = s^\top y / y^\top y` of the
    newest pair, the scale of the starting matrix :math:`H^0 = \gamma I`.
    ``alphas`` receives the first loop's coefficients (torch keeps them in
    the state as ``al``).

    .. math::

        q &\leftarrow -g;\quad \text{for } i = k{-}1, \dots, 0:\
            \alpha_i = \rho_i s_i^\top q,\ q \leftarrow q - \alpha_i y_i \\
        r &\leftarrow \gamma q;\quad \text{for } i = 0, \dots, k{-}1:\
            \beta_i = \rho_i y_i^\top r,\
            r \leftarrow r + (\alpha_i - \beta_i) s_i

    and :math:`d = r`. No matrix is formed: :math:`O(kn)` work and memory.
    """
    q = grad.neg()
    for i in reversed(range(len(dirs))):
        alphas[i] = steps[i].dot(q) * rhos[i]
        q.add_(dirs[i], alpha=-alphas[i])
    r = torch.mul(q, h_diag)
    for i in range(len(dirs)):
        beta = dirs[i].dot(r) * rhos[i]
        r.add_(steps[i], alpha=alphas[i] - beta)
    return r


def cubic_minimizer(x1: Number, f1: Number, g1: Number, x2: Number, f2: Number,
                    g2: Number, bounds: tuple[Number, Number] | None = None) -> Number:
    r"""The minimiser of the cubic through :math:`(x_1, f_1)` and
    :math:`(x_2, f_2)` with slopes :math:`g_1, g_2`, clamped to ``bounds``
    (default: between the two points); the midpoint of the bounds if the
    cubic has no minimum.

    With :math:`d_1 = g_1 + g_2 - 3\frac{f_1 - f_2}{x_1 - x_2}` and
    :math:`d_2 = \sqrt{d_1^2 - g_1 g_2}`, for :math:`x_1 \le x_2`:
    :math:`x^\star = x_2 - (x_2 - x_1)\frac{g_2 + d_2 - d_1}{g_2 - g_1 + 2 d_2}`
    (Nocedal & Wright, eq. 3.59).
    """
    low, high = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2.0
    d2 = (d2_square.sqrt() if isinstance(d2_square, torch.Tensor)
          else math.sqrt(d2_square))
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, low), high)


def _magnitude(x: Number) -> Number:
    """``abs(x)``, typed (mypy types ``abs`` of a float-or-tensor as ``object``)."""
    return x.abs() if isinstance(x, torch.Tensor) else abs(x)


Evaluate = Callable[[Number], tuple[float, torch.Tensor]]


def strong_wolfe(evaluate: Evaluate, t: Number, d: torch.Tensor, f: float, g: torch.Tensor,
                 gtd: torch.Tensor, c1: float = 1e-4, c2: float = 0.9,
                 tolerance_change: float = 1e-9,
                 max_ls: int = 25) -> tuple[float, torch.Tensor, Number, int]:
    r"""A step length :math:`t` along ``d`` meeting the strong Wolfe conditions

    .. math::

        f(x + t d) &\le f(x) + c_1 t\, g^\top d
            \quad\text{(sufficient decrease)} \\
        |\nabla f(x + t d)^\top d| &\le c_2\, |g^\top d|
            \quad\text{(curvature)}

    by bracketing, then zooming with cubic interpolation (Nocedal & Wright,
    algorithms 3.5 and 3.6). ``evaluate(t)`` returns the loss and flat
    gradient at :math:`x + t d` and leaves the parameters at :math:`x`.
    Returns the loss, gradient and step accepted, and the evaluations spent
    (at most ``max_ls``, or the best point so far when they run out).
    """
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = g_new.dot(d)

    # phase 1: grow t until [t_prev, t] brackets a point that satisfies both conditions
    t_prev: Number = 0
    f_prev, g_prev, gtd_prev = f, g, gtd
    bracket: list[Number]
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            # not a sufficient decrease (or worse than before): the minimum is behind t
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:  # both conditions hold: accept t
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:  # the slope turned up: the minimum is behind t
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        # still descending steeply: extrapolate, between 1.01 t and 10 t
        t_next = cubic_minimizer(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                 bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev = t, f_new
        g_prev = g_new.clone(memory_format=torch.contiguous_format)
        gtd_prev = gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:  # out of evaluations while extrapolating
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # phase 2 (zoom): shrink the bracket around a point meeting both conditions;
    # ``low`` indexes the end with the lower loss
    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if _magnitude(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break  # the bracket no longer moves the parameters
        t = cubic_minimizer(bracket[0], bracket_f[0], bracket_gtd[0],
                            bracket[1], bracket_f[1], bracket_gtd[1])
        # keep t at least 10 % of the bracket away from its ends (after a step
        # that made too little progress, or one that left the bracket)
        margin = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < margin:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                if _magnitude(t - max(bracket)) < _magnitude(t - min(bracket)):
                    t = max(bracket) - margin
                else:
                    t = min(bracket) + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False

        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low]:
            # no sufficient decrease: t becomes the high end
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[high] = gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                # the slope at t points away from the high end: the old low end becomes high
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[low] = gtd_new

    return bracket_f[low], bracket_g[low], bracket[low], evals


def _as_float(loss: Any) -> float:
    """The closure's loss as a Python float (torch warns on ``float`` of a tensor that
    requires grad; the value is the same)."""
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


class LBFGS(torch.optim.Optimizer):
    r"""L-BFGS (Liu & Nocedal, 1989), a drop-in for ``torch.optim.LBFGS``
    (torch 2.13).

    One call of ``step(closure)`` runs up to ``max_iter`` iterations, each a
    direction from :func:`two_loop` and a step along it: a fixed ``lr`` (the
    first iteration of a run takes ``min(1, 1/‖g‖₁)·lr``) or, with
    ``line_search_fn="strong_wolfe"``, one found by :func:`strong_wolfe`.

    Args:
        params: the tensors to optimise; one group only.
        lr: step length along the direction (default ``1``).
        max_iter: iterations per ``step`` (default ``20``).
        max_eval: closure evaluations per ``step`` (default
            ``max_iter * 5 // 4``).
        tolerance_grad: stop when every gradient entry is at most this in
            size (default ``1e-7``).
        tolerance_change: stop when the step moves no entry, or the loss, by
            more than this (default ``1e-9``).
        history_size: curvature pairs kept (default ``100``).
        line_search_fn: ``None`` or ``"strong_wolfe"``.

    State (on the first parameter, as torch keeps it): ``func_evals``,
    ``n_iter``, then ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
    ``H_diag``, ``prev_flat_grad``, ``prev_loss`` and, from the second
    iteration, ``al``. After each ``step``, :attr:`stop_reason` says which
    rule ended it (not part of the state).

    Differences from torch.optim.LBFGS: a ``line_search_fn`` other than
    ``None`` or ``"strong_wolfe"`` and a ``history_size`` below 1 are refused
    when the optimizer is made (torch raises in the first ``step``, or fails there
    with an ``IndexError``).
    """

    couples_tensors = True  # sums over every parameter (see ._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check_non_negative("lr", lr)
        check_integer("history_size", history_size, 1)
        if line_search_fn not in (None, "strong_wolfe"):
            raise invalid("line_search_fn", line_search_fn, "None or 'strong_wolfe'")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:  # torch's message
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params: list[torch.Tensor] = self.param_groups[0]["params"]
        for p in self._params:
            refuse_sharded("LBFGS", p, "it flattens all parameters into one vector "
                           "and takes dot products and norms of it (curvature pairs, "
                           "line search), which a piece reads only in part")
        self.stop_reason: str | None = None

    # the parameters as one flat vector: its gradient, a move along it, a copy. A complex
    # parameter enters as its real view (two real numbers per entry), as in torch
    def _flat_grad(self) -> torch.Tensor:
        views = []
        for p in self._params:
            if p.grad is None:
                view = p.new(p.numel()).zero_()
            elif p.grad.is_sparse:
                view = p.grad.to_dense().view(-1)
            else:
                view = p.grad.view(-1)
            views.append(torch.view_as_real(view).view(-1) if view.is_complex() else view)
        return torch.cat(views, 0)

    def _move(self, t: Number, d: torch.Tensor) -> None:
        """θ ← θ + t d, tensor by tensor."""
        offset = 0
        for p in self._params:
            if p.is_complex():
                p = torch.view_as_real(p)
            # torch takes a 0-d tensor where its stubs say a Python number
            p.add_(d[offset:offset + p.numel()].view_as(p), alpha=t)  # type: ignore[arg-type]
            offset += p.numel()

    def _evaluate_at(self, closure: Callable[[], Any], saved: list[torch.Tensor], t: Number,
                     d: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Loss and flat gradient at θ + t d; the parameters are put back to ``saved``."""
        self._move(t, d)
        loss = _as_float(closure())
        grad = self._flat_grad()
        for p, x in zip(self._params, saved, strict=True):
            p.copy_(x)
        return loss, grad

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Up to ``max_iter`` L-BFGS iterations; ``closure`` zeroes the
        gradients, recomputes the loss, calls ``backward`` and returns the
        loss. Returns the loss at the start."""
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = _as_float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        if g.abs().max() <= tolerance_grad:
            self.stop_reason = "tolerance_grad"  # already optimal: nothing moves
            return orig_loss

        # the run so far, carried from one step() to the next
        d, t = state.get("d"), state.get("t")
        dirs, steps, rhos = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag = state.get("H_diag")
        prev_g, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        self.stop_reason = "max_iter"
        for n_iter in range(1, max_iter + 1):
            state["n_iter"] += 1
            if state["n_iter"] == 1:  # the first direction: steepest descent
                d = g.neg()
                dirs, steps, rhos, h_diag = [], [], [], 1
            else:
                y = g.sub(prev_g)      # y = g_k - g_{k-1}
                s = d.mul(t)           # s = θ_k - θ_{k-1}
                ys = y.dot(s)
                if ys > 1e-10:         # keep only pairs of positive curvature
                    if len(dirs) == history_size:
                        dirs.pop(0)
                        steps.pop(0)
                        rhos.pop(0)
                    dirs.append(y)
                    steps.append(s)
                    rhos.append(1.0 / ys)
                    h_diag = ys / y.dot(y)
                if "al" not in state:
                    state["al"] = [None] * history_size
                d = two_loop(g, dirs, steps, rhos, h_diag, state["al"])

            if prev_g is None:
                prev_g = g.clone(memory_format=torch.contiguous_format)
            else:
                prev_g.copy_(g)
            prev_loss = loss

            # the first step of a run is capped at length lr in the 1-norm of g
            t = min(1.0, 1.0 / g.abs().sum()) * lr if state["n_iter"] == 1 else lr
            gtd = g.dot(d)
            if gtd > -tolerance_change:  # not a descent direction
                self.stop_reason = "no descent"
                break

            spent = 0
            if line_search_fn is not None:
                saved = [p.clone(memory_format=torch.contiguous_format) for p in self._params]
                loss, g, t, spent = strong_wolfe(
                    functools.partial(self._evaluate_at, closure, saved, d=d),
                    t, d, loss, g, gtd, max_ls=max_eval - evals)
                self._move(t, d)
                optimal = g.abs().max() <= tolerance_grad
            else:
                self._move(t, d)
                optimal = False
                if n_iter != max_iter:  # the last iteration's loss is left to the next step
                    with torch.enable_grad():
                        loss = _as_float(closure())
                    g = self._flat_grad()
                    optimal = g.abs().max() <= tolerance_grad
                    spent = 1
            evals += spent
            state["func_evals"] += spent

            if n_iter == max_iter:
                self.stop_reason = "max_iter"
            elif evals >= max_eval:
                self.stop_reason = "max_eval"
            elif optimal:
                self.stop_reason = "tolerance_grad"
            elif d.mul(t).abs().max() <= tolerance_change:
                self.stop_reason = "tolerance_change (step)"
            elif abs(loss - prev_loss) < tolerance_change:
                self.stop_reason = "tolerance_change (loss)"
            else:
                continue
            break

        state["d"], state["t"] = d, t
        state["old_dirs"], state["old_stps"], state["ro"] = dirs, steps, rhos
        state["H_diag"] = h_diag
        state["prev_flat_grad"], state["prev_loss"] = prev_g, prev_loss
        return orig_loss
