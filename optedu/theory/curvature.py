r"""Curvature of a loss at the current parameters, from Hessian-vector products.

The Hessian :math:`H = \nabla^2 L(\theta)` of a network is never formed: every function here
reaches it through products :math:`Hv`, each one more backward pass through the graph of the
gradient (Pearlmutter, 1994). The gradient's graph is built once per call and reused, so a
call costs one gradient plus one product per iteration, and reports how many it used.

* :func:`hvp`: :math:`Hv` for a list of tensors :math:`v` shaped like the parameters;
* :func:`top_eigenvalue` (and :func:`sharpness`, its value alone): the largest eigenvalue of
  :math:`H`, by Lanczos's method (the default; the largest *algebraic* eigenvalue) or by power
  iteration (the eigenvalue of largest *magnitude*), stopped when the estimate changes by less
  than ``tol`` relative between two iterations;
* the same of the *preconditioned* Hessian :math:`P^{-1}H` for a diagonal preconditioner
  :math:`P` (Adam's :math:`\sqrt{\hat v} + \epsilon`): its eigenvalues are those of the
  symmetric :math:`P^{-1/2} H P^{-1/2}`, which is what is iterated. Gradient descent on a
  quadratic is stable while the sharpness is below :math:`2/\eta`; Adam with :math:`\beta_1`,
  while the preconditioned sharpness is below :math:`(2 + 2\beta_1)/((1-\beta_1)\eta)`
  (Cohen et al., 2021 and 2022);
* :func:`hutchinson_trace`: :math:`\operatorname{tr} H \approx \frac1n \sum_i z_i^\top H z_i`
  over Rademacher vectors :math:`z_i` (Hutchinson, 1989), with its standard error.

``closure()`` returns the loss as a tensor that depends on ``params`` (a full batch, or one
fixed batch: the Hessian of a different batch at each call is not one matrix).

References: B. A. Pearlmutter, *Fast exact multiplication by the Hessian*, Neural
Computation 1994; C. Lanczos, 1950; J. Cohen et al., *Gradient descent on neural networks
typically occurs at the edge of stability*, ICLR 2021, and *Adaptive gradient methods at the
edge of stability*, 2022; M. F. Hutchinson, 1989.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch

__all__ = ["hvp", "Eigen", "top_eigenvalue", "sharpness", "hutchinson_trace"]

Closure = Callable[[], torch.Tensor]


def _params(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    params = list(params)
    if not params:
        raise ValueError("Invalid params: an empty list")
    for p in params:
        if not p.requires_grad:
            raise ValueError(f"Invalid params: a tensor of shape {tuple(p.shape)} does not "
                             "require grad")
    return params


class _Products:
    """Products :math:`Hv` from one graph of the gradient (built on creation)."""

    def __init__(self, closure: Closure, params: Sequence[torch.Tensor]) -> None:
        self.params = _params(params)
        loss = closure()
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"Invalid closure: it must return the loss as a one-element "
                             f"tensor, got {type(loss).__name__}")
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True)
        self.count = 0

    def __call__(self, vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        dot = cast(torch.Tensor, sum((g * v).sum() for g, v in zip(self.grads, vectors)))
        out = torch.autograd.grad(dot, self.params, retain_graph=True, allow_unused=True)
        self.count += 1
        return [torch.zeros_like(p) if h is None else h.detach()
                for p, h in zip(self.params, out)]


def hvp(closure: Closure, params: Sequence[torch.Tensor],
        vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """:math:`Hv`: the Hessian of ``closure()`` with respect to ``params`` times ``vectors``
    (one tensor per parameter, of its shape). Costs one gradient and one product."""
    params = _params(params)
    vectors = list(vectors)
    if [tuple(v.shape) for v in vectors] != [tuple(p.shape) for p in params]:
        raise ValueError(f"Invalid vectors: shapes {[tuple(v.shape) for v in vectors]} for "
                         f"params of shapes {[tuple(p.shape) for p in params]}")
    return _Products(closure, params)(vectors)


@dataclass(frozen=True)
class Eigen:
    """What :func:`top_eigenvalue` found.

    Attributes:
        value: the eigenvalue.
        iterations: iterations run (each one product :math:`Hv`).
        hvps: Hessian-vector products computed (the gradient itself is one more backward).
        converged: whether the estimate changed by less than ``tol`` (relative) in the last
            iteration, or the Krylov space was exhausted.
        vector: the eigenvector estimate, one tensor per parameter, unit norm (for a
            preconditioned call: of :math:`P^{-1/2} H P^{-1/2}`).
    """

    value: float
    iterations: int
    hvps: int
    converged: bool
    vector: list[torch.Tensor]


def _flat(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in ts])


def _unflat(x: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(x[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out


def top_eigenvalue(closure: Closure, params: Sequence[torch.Tensor], *,
                   method: str = "lanczos", preconditioner: Sequence[torch.Tensor] | None = None,
                   max_iter: int = 100, tol: float = 1e-6, seed: int = 0) -> Eigen:
    r"""The largest eigenvalue of the Hessian of ``closure()`` in ``params`` (of
    :math:`P^{-1}H` with ``preconditioner`` :math:`P`, positive tensors shaped like the
    parameters), with the iterations and products it took.

    ``method="lanczos"``: Lanczos's iteration with full reorthogonalisation; the largest
    Ritz value of the tridiagonal matrix, the largest algebraic eigenvalue. ``"power"``: power
    iteration, :math:`v \leftarrow Hv/\lVert Hv\rVert`, the Rayleigh quotient
    :math:`v^\top H v` of the eigenvalue of largest magnitude (which is the sharpness when it
    is positive, as it is at the top of training curves). Both start from a Gaussian vector
    (``seed``) and stop when the estimate moves by at most ``tol`` times its size, or after
    ``max_iter`` products. Arithmetic on the Krylov vectors is in float64.
    """
    if method not in ("lanczos", "power"):
        raise ValueError(f"Invalid method: {method!r} (expected 'lanczos' or 'power')")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"Invalid max_iter: {max_iter!r}")
    if not tol > 0:
        raise ValueError(f"Invalid tol: {tol!r}")
    products = _Products(closure, params)
    params = products.params
    scale = None
    if preconditioner is not None:
        preconditioner = list(preconditioner)
        if [tuple(d.shape) for d in preconditioner] != [tuple(p.shape) for p in params]:
            raise ValueError(f"Invalid preconditioner: shapes "
                             f"{[tuple(d.shape) for d in preconditioner]} for params of shapes "
                             f"{[tuple(p.shape) for p in params]}")
        flat = _flat([d.detach() for d in preconditioner]).double()
        if not bool(torch.all(flat > 0)):
            raise ValueError("Invalid preconditioner: every entry must be positive")
        scale = flat.rsqrt()                                    # P^{-1/2}

    def apply(x: torch.Tensor) -> torch.Tensor:                # x ↦ P^{-1/2} H P^{-1/2} x
        y = x if scale is None else scale * x
        hy = _flat(products(_unflat(y.to(params[0].dtype), params))).double()
        return hy if scale is None else scale * hy

    n = sum(p.numel() for p in params)
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=gen, dtype=torch.float64)
    v /= v.norm()
    if method == "power":
        value, converged, it = math.nan, False, 0
        for it in range(1, max_iter + 1):
            w = apply(v)
            new = float(v @ w)                                  # Rayleigh quotient vᵀHv
            norm = w.norm()
            if norm == 0:
                value, converged = 0.0, True
                break
            v = w / norm
            if math.isfinite(value) and abs(new - value) <= tol * abs(new):
                value, converged = new, True
                break
            value = new
        return Eigen(value, it, products.count, converged, _unflat(v, params))
    basis, alphas, betas = [v], list[float](), list[float]()
    value, converged, ritz_vec = math.nan, False, v
    for it in range(1, min(max_iter, n) + 1):
        w = apply(basis[-1])
        alpha = float(basis[-1] @ w)
        alphas.append(alpha)
        for b in basis:                                         # full reorthogonalisation
            w -= (b @ w) * b
        beta = float(w.norm())
        t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            t += torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(t)
        new = float(evals[-1])
        ritz_vec = torch.stack(basis, 1) @ evecs[:, -1]
        done = beta <= 1e-12 * max(1.0, abs(new)) or len(basis) == n
        if done or (math.isfinite(value) and abs(new - value) <= tol * abs(new)):
            value, converged = new, True
            break
        value = new
        betas.append(beta)
        basis.append(w / beta)
    return Eigen(value, it, products.count, converged,
                 _unflat(ritz_vec / ritz_vec.norm(), params))


def sharpness(closure: Closure, params: Sequence[torch.Tensor], **kwargs) -> float:
    """The top eigenvalue of the Hessian (:func:`top_eigenvalue`'s value; same arguments)."""
    return top_eigenvalue(closure, params, **kwargs).value


def hutchinson_trace(closure: Closure, params: Sequence[torch.Tensor], *, samples: int = 100,
                     seed: int = 0) -> tuple[float, float]:
    """``(estimate, standard error)`` of :math:`\\operatorname{tr} H` from ``samples``
    Rademacher probes :math:`z` (entries ±1): the mean of :math:`z^\\top H z` and its
    sample standard deviation over :math:`\\sqrt{n}`. Exact for a diagonal Hessian (every
    probe gives the trace). Costs one gradient and ``samples`` products."""
    if not isinstance(samples, int) or samples < 2:
        raise ValueError(f"Invalid samples: {samples!r} (at least 2)")
    products = _Products(closure, params)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        z = [(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(p.dtype)
             for p in products.params]
        hz = products(z)
        values.append(float(sum((a.double() * b.double()).sum() for a, b in zip(z, hz))))
    x = torch.tensor(values, dtype=torch.float64)
    return float(x.mean()), float(x.std(unbiased=True) / math.sqrt(samples))
