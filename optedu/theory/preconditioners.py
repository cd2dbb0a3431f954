r"""Every optimizer as :math:`\theta \leftarrow \theta - \eta P g`: the matrices :math:`P`, built.

For a network small enough that an :math:`n \times n` matrix is cheap (the chapter's has a few
hundred parameters, so :math:`P` and the Hessian are dense), each function builds the
preconditioner :math:`P` a method applies, from the gradient statistics the method accumulates:

* :func:`identity`: SGD, :math:`P = I`;
* :func:`diagonal`: AdaGrad, RMSProp, Adam: :math:`P = \operatorname{diag}(v)^{-1/2}`,
  :math:`v` the mean of the squared gradients (a sum or an EMA differs by a scalar);
* :func:`adafactor`: :math:`v` of each matrix replaced by its rank-one factorisation
  :math:`r c^\top / \mathbf{1}^\top r` from the row sums :math:`r` and column sums :math:`c`
  (Shazeer & Stern, 2018);
* :func:`full_matrix`: full-matrix AdaGrad, :math:`P = (\sum g g^\top)^{-1/2}`;
* :func:`shampoo`: per matrix gradient :math:`G` (``out × in``), :math:`L = \sum G G^\top`,
  :math:`R = \sum G^\top G` and :math:`P = L^{-1/4} \otimes R^{-1/4}` (Gupta et al., 2018);
* :func:`muon`: Shampoo from one gradient (no accumulation): :math:`P g = UV^\top`
  (Bernstein & Newhouse, 2024);
* :func:`kfac`: :math:`P = S^{-1} \otimes A^{-1}` per layer, from the covariance :math:`A` of
  the layer's inputs and :math:`S` of the back-propagated output gradients
  (Martens & Grosse, 2015), see :func:`kfac_factors`;
* :func:`gauss_newton` (the Fisher matrix for softmax cross-entropy, hence natural gradient,
  Amari 1998) and :func:`newton`: :math:`P` the inverse of a damped curvature matrix.

**Convention.** Parameters are flattened as torch flattens them: row-major, layer after layer.
With ``vec(G) = G.reshape(-1)``, :math:`(A \otimes B)\,\mathrm{vec}(G) = \mathrm{vec}(A G
B^\top)` (``torch.kron``), so a Kronecker factor on the left acts on the rows (outputs) of a
weight matrix and one on the right on its columns (inputs): :func:`kron_apply`.

**Damping.** A factor :math:`F` raised to a negative power is first damped to :math:`F +
\delta\,\lambda_{\max}(F)\,I`: ``delta`` is relative to the factor's own scale, so the result
does not depend on the units of the loss. Eigenvalues below zero (rounding) are clipped to zero
first. The same rule for every method makes them comparable.

**The measure.** :func:`preconditioned_spectrum` returns the eigenvalues :math:`\mu_1 \ge \dots
\ge \mu_n` of :math:`P^{1/2} H P^{1/2}` (those of :math:`PH`). By Sylvester's law of inertia they
have as many negative and zero values as :math:`H` has, whatever :math:`P` (positive
definite): a preconditioner rescales curvature, it cannot remove negative curvature or a null
space. :func:`condition` is :math:`\kappa_k = \mu_1/\mu_k`, the spread over the top :math:`k`
eigenvalues, which must be positive.

References: S. Amari, *Natural gradient works efficiently in learning*, Neural Computation
1998; J. Martens and R. Grosse, *Optimizing neural networks with Kronecker-factored
approximate curvature*, ICML 2015; V. Gupta, T. Koren and Y. Singer, *Shampoo: preconditioned
stochastic tensor optimization*, ICML 2018; J. Bernstein and L. Newhouse, *Old optimizer, new
norm: an anthology*, 2024; N. Shazeer and M. Stern, *Adafactor*, ICML 2018.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "kron_apply", "psd_power", "block_diag", "identity", "diagonal", "adafactor",
    "full_matrix", "shampoo", "muon", "kfac", "gauss_newton", "newton",
    "preconditioned_spectrum", "condition", "mlp_forward", "mlp_loss", "unflatten",
    "per_example_grads", "dense_hessian", "gauss_newton_matrix", "kfac_factors",
    "softmax_output_hessian", "mlp_jacobian",
]

Shapes = Sequence[tuple[int, int]]


def _check_delta(delta: float) -> None:
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta >= 0):
        raise ValueError(f"Invalid delta: {delta!r}")


def _check_square(name: str, a: torch.Tensor) -> None:
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"Invalid {name}: a square matrix expected, got shape "
                         f"{tuple(a.shape)}")


def kron_apply(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    r""":math:`(A \otimes B)\,\mathrm{vec}(G) = \mathrm{vec}(A G B^\top)` without forming
    :math:`A \otimes B`; ``vec`` is torch's row-major ``reshape(-1)``."""
    if g.ndim != 2 or a.shape[1] != g.shape[0] or b.shape[1] != g.shape[1]:
        raise ValueError(f"Invalid g: shape {tuple(g.shape)} for factors "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return (a @ g @ b.T).reshape(-1)


def psd_power(a: torch.Tensor, power: float, delta: float = 0.0) -> torch.Tensor:
    r""":math:`(A + \delta\lambda_{\max}(A) I)^{p}` of a symmetric positive semi-definite
    :math:`A`, by eigendecomposition (eigenvalues below zero clipped to zero)."""
    _check_square("a", a)
    _check_delta(delta)
    w, q = torch.linalg.eigh((a + a.T) / 2)
    w = w.clamp(min=0)
    w = w + delta * w.max()
    if power < 0 and not bool(torch.all(w > 0)):
        raise ValueError(f"Invalid delta: {delta!r} leaves a zero eigenvalue, which a "
                         f"negative power ({power}) cannot raise")
    return (q * w.pow(power)) @ q.T


def block_diag(blocks: Sequence[torch.Tensor]) -> torch.Tensor:
    """One matrix from the per-layer blocks (a layer-wise preconditioner)."""
    return torch.block_diag(*blocks)


def _sizes(shapes: Shapes) -> list[int]:
    return [o * i for o, i in shapes]


def _check_grads(grads: torch.Tensor, shapes: Shapes | None = None) -> None:
    if grads.ndim != 2 or grads.shape[0] < 1:
        raise ValueError(f"Invalid grads: a (samples, parameters) matrix expected, got shape "
                         f"{tuple(grads.shape)}")
    if shapes is not None and sum(_sizes(shapes)) != grads.shape[1]:
        raise ValueError(f"Invalid shapes: {list(shapes)} hold {sum(_sizes(shapes))} "
                         f"parameters, grads {grads.shape[1]}")


def _layers(grads: torch.Tensor, shapes: Shapes) -> list[torch.Tensor]:
    """The gradient samples of each layer, shaped (samples, out, in)."""
    return [part.reshape(-1, *s) for part, s in
            zip(torch.split(grads, _sizes(shapes), dim=1), shapes)]


def identity(n: int) -> torch.Tensor:
    """SGD: :math:`P = I`. Memory: none."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"Invalid n: {n!r}")
    return torch.eye(n, dtype=torch.float64)


def diagonal(grads: torch.Tensor, delta: float = 1e-4) -> torch.Tensor:
    r"""AdaGrad / RMSProp / Adam: :math:`P = \operatorname{diag}(v + \delta\max v)^{-1/2}`,
    :math:`v = \frac1K\sum_k g_k^2`. Memory: :math:`n`."""
    _check_grads(grads)
    _check_delta(delta)
    v = grads.pow(2).mean(0)                                    # v = E[g²]
    return torch.diag((v + delta * v.max()).rsqrt())


def adafactor(grads: torch.Tensor, shapes: Shapes, delta: float = 1e-4) -> torch.Tensor:
    r"""Adafactor's factored second moment per matrix: :math:`\hat v = r c^\top/\mathbf
    1^\top r` with :math:`r = v\mathbf 1`, :math:`c = v^\top \mathbf 1`, then
    :math:`P = \operatorname{diag}(\hat v + \delta \max \hat v)^{-1/2}`. Memory: out + in."""
    _check_grads(grads, shapes)
    _check_delta(delta)
    blocks = []
    for g in _layers(grads, shapes):
        v = g.pow(2).mean(0)                                    # out × in
        r, c = v.sum(1), v.sum(0)                               # row and column sums
        v_hat = torch.outer(r, c) / r.sum()                     # rank-one fit of v
        blocks.append(torch.diag((v_hat + delta * v_hat.max()).rsqrt().reshape(-1)))
    return block_diag(blocks)


def full_matrix(grads: torch.Tensor, delta: float = 1e-4) -> torch.Tensor:
    r"""Full-matrix AdaGrad: :math:`P = (\frac1K\sum_k g_k g_k^\top)_\delta^{-1/2}`.
    Memory: :math:`n^2`."""
    _check_grads(grads)
    return psd_power(grads.T @ grads / grads.shape[0], -0.5, delta)


def shampoo(grads: torch.Tensor, shapes: Shapes, delta: float = 1e-4) -> torch.Tensor:
    r"""Shampoo per matrix: :math:`L = \sum_k G_k G_k^\top`, :math:`R = \sum_k G_k^\top G_k`,
    :math:`P = L_\delta^{-1/4} \otimes R_\delta^{-1/4}`, so :math:`P\,\mathrm{vec}(G) =
    \mathrm{vec}(L^{-1/4} G R^{-1/4})`. Memory: out² + in²."""
    _check_grads(grads, shapes)
    blocks = []
    for g in _layers(grads, shapes):
        left = torch.einsum("koi,kpi->op", g, g) / g.shape[0]    # L = Σ G Gᵀ
        right = torch.einsum("koi,koj->ij", g, g) / g.shape[0]   # R = Σ Gᵀ G
        blocks.append(torch.kron(psd_power(left, -0.25, delta),
                                 psd_power(right, -0.25, delta)))
    return block_diag(blocks)


def muon(grad: torch.Tensor, shapes: Shapes, delta: float = 1e-4) -> torch.Tensor:
    r"""Muon as a preconditioner: Shampoo built from the one gradient (or momentum)
    :math:`G` it is applied to, :math:`(GG^\top)^{-1/4} G (G^\top G)^{-1/4} = UV^\top`.
    Memory: the momentum only."""
    if grad.ndim != 1:
        raise ValueError(f"Invalid grad: one flat gradient expected, got shape "
                         f"{tuple(grad.shape)}")
    return shampoo(grad[None], shapes, delta)


def kfac(inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor],
         delta: float = 1e-4) -> torch.Tensor:
    r"""K-FAC: per layer :math:`P = S_\delta^{-1} \otimes A_\delta^{-1}`, from the input
    covariances :math:`A` (in × in) and output-gradient covariances :math:`S` (out × out)
    of :func:`kfac_factors`. Memory: out² + in²."""
    if len(inputs) != len(outputs) or not inputs:
        raise ValueError(f"Invalid inputs: {len(inputs)} factors for {len(outputs)} outputs")
    return block_diag([torch.kron(psd_power(s, -1.0, delta), psd_power(a, -1.0, delta))
                       for a, s in zip(inputs, outputs)])


def gauss_newton(gn: torch.Tensor, delta: float = 1e-4) -> torch.Tensor:
    r"""Natural gradient / Gauss–Newton: :math:`P = (G + \delta\lambda_{\max} I)^{-1}`.
    Memory: :math:`n^2`."""
    return psd_power(gn, -1.0, delta)


def newton(hessian: torch.Tensor, delta: float = 1e-4) -> torch.Tensor:
    r"""Newton's preconditioner made positive definite: :math:`P = (|H| + \delta
    \lambda_{\max}(|H|) I)^{-1}`, :math:`|H| = Q|\Lambda|Q^\top` (the absolute values of the
    eigenvalues; on a convex quadratic and with ``delta=0``, :math:`P = H^{-1}`)."""
    _check_square("hessian", hessian)
    w, q = torch.linalg.eigh((hessian + hessian.T) / 2)
    return psd_power((q * w.abs()) @ q.T, -1.0, delta)


def preconditioned_spectrum(hessian: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    r"""Eigenvalues of :math:`P^{1/2} H P^{1/2}`, largest first (float64)."""
    _check_square("hessian", hessian)
    _check_square("p", p)
    if p.shape != hessian.shape:
        raise ValueError(f"Invalid p: shape {tuple(p.shape)} for a Hessian of shape "
                         f"{tuple(hessian.shape)}")
    root = psd_power(p.double(), 0.5)
    m = root @ hessian.double() @ root
    return torch.linalg.eigvalsh((m + m.T) / 2).flip(0)


def condition(spectrum: torch.Tensor, k: int) -> float:
    r""":math:`\kappa_k = \mu_1/\mu_k` over the top ``k`` of a spectrum sorted largest first;
    ``k`` must stay within the positive eigenvalues (above :math:`10^{-10}\mu_1`: a zero
    eigenvalue computes as a rounding error of either sign)."""
    if not isinstance(k, int) or not 2 <= k <= spectrum.numel():
        raise ValueError(f"Invalid k: {k!r}")
    if not spectrum[k - 1] > 1e-10 * spectrum[0]:
        raise ValueError(f"Invalid k: {k} reaches a non-positive eigenvalue "
                         f"({float(spectrum[k - 1]):.3g})")
    return float(spectrum[0] / spectrum[k - 1])


# ---- the small network: a bias-free tanh MLP, softmax cross-entropy -------------------------

def unflatten(flat: torch.Tensor, shapes: Shapes) -> list[torch.Tensor]:
    """The weight matrices from the flat vector (row-major, layer after layer)."""
    if flat.shape[-1] != sum(_sizes(shapes)):
        raise ValueError(f"Invalid flat: {flat.shape[-1]} entries for shapes {list(shapes)}")
    return [part.reshape(*flat.shape[:-1], *s)
            for part, s in zip(torch.split(flat, _sizes(shapes), dim=-1), shapes)]


def mlp_forward(weights: Sequence[torch.Tensor], x: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    r"""Logits of :math:`x \mapsto W_L \tanh(\cdots \tanh(W_1 x))`, with each layer's input
    :math:`a_\ell` and pre-activation :math:`s_\ell = W_\ell a_\ell` (rows are examples)."""
    inputs, pre = [], []
    a = x
    for i, w in enumerate(weights):
        inputs.append(a)
        s = a @ w.T
        pre.append(s)
        a = torch.tanh(s) if i < len(weights) - 1 else s
    return a, inputs, pre


def mlp_loss(flat: torch.Tensor, shapes: Shapes, x: torch.Tensor,
             y: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy of the MLP with the flat weights ``flat``."""
    logits = mlp_forward(unflatten(flat, shapes), x)[0]
    return torch.nn.functional.cross_entropy(logits, y)


def _backward(weights: Sequence[torch.Tensor], x: torch.Tensor):
    r"""Logits, each layer's inputs :math:`a_\ell` (N, in) and :math:`B_\ell`, the Jacobian of
    each example's logits in the layer's pre-activation (N, classes, out), by back-propagation:
    :math:`B_L = I`, :math:`B_{\ell-1} = B_\ell W_\ell \operatorname{diag}(\tanh'(s_{\ell-1}))`."""
    logits, inputs, pre = mlp_forward(weights, x)
    back = torch.eye(logits.shape[1], dtype=x.dtype).repeat(x.shape[0], 1, 1)
    backs = [back]
    for layer in range(len(weights) - 1, 0, -1):
        back = back @ weights[layer] * (1 - torch.tanh(pre[layer - 1]) ** 2)[:, None, :]
        backs.append(back)
    return logits, inputs, backs[::-1]


def per_example_grads(flat: torch.Tensor, shapes: Shapes, x: torch.Tensor,
                      y: torch.Tensor) -> torch.Tensor:
    r"""The gradient of each example's loss, one row per example: per layer
    :math:`\delta_\ell a_\ell^\top` with :math:`\delta_\ell = B_\ell^\top (p - e_y)`."""
    logits, inputs, backs = _backward(unflatten(flat.detach(), shapes), x)
    dz = torch.softmax(logits, -1) - torch.nn.functional.one_hot(y, logits.shape[1])
    return torch.cat([torch.einsum("nco,nc,ni->noi", b, dz.to(b.dtype), a).flatten(1)
                      for a, b in zip(inputs, backs)], 1)


def dense_hessian(flat: torch.Tensor, shapes: Shapes, x: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
    """The full-batch Hessian, :math:`n \\times n`."""
    return torch.autograd.functional.hessian(lambda f: mlp_loss(f, shapes, x, y),
                                             flat.detach())


def softmax_output_hessian(logits: torch.Tensor) -> torch.Tensor:
    r"""The Hessian of the mean cross-entropy in each example's logits,
    :math:`(\operatorname{diag} p - pp^\top)/N`, shaped (N, classes, classes). It does not
    depend on the labels: the Gauss–Newton matrix is the Fisher matrix."""
    p = torch.softmax(logits, -1)
    return (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) / logits.shape[0]


def gauss_newton_matrix(jacobian: torch.Tensor, output_hessian: torch.Tensor) -> torch.Tensor:
    r""":math:`G = \sum_i J_i^\top H_i J_i`, from the Jacobians of the outputs in the
    parameters (N, outputs, n) and the loss's Hessians in the outputs (N, outputs, outputs)."""
    if jacobian.ndim != 3 or output_hessian.shape != (jacobian.shape[0], jacobian.shape[1],
                                                      jacobian.shape[1]):
        raise ValueError(f"Invalid output_hessian: shape {tuple(output_hessian.shape)} for "
                         f"Jacobians of shape {tuple(jacobian.shape)}")
    return torch.einsum("nci,ncd,ndj->ij", jacobian, output_hessian, jacobian)


def mlp_jacobian(flat: torch.Tensor, shapes: Shapes, x: torch.Tensor) -> torch.Tensor:
    """Jacobian of each example's logits in the flat weights, (N, classes, n)."""
    _, inputs, backs = _backward(unflatten(flat.detach(), shapes), x)
    return torch.cat([torch.einsum("nco,ni->ncoi", b, a).flatten(2)
                      for a, b in zip(inputs, backs)], 2)


def kfac_factors(flat: torch.Tensor, shapes: Shapes, x: torch.Tensor
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    r"""K-FAC's factors of the Fisher matrix per layer: :math:`A_\ell = \frac1N\sum_i a_i
    a_i^\top` and :math:`S_\ell = \sum_i B_i^\top H_i B_i`, :math:`B_i` the Jacobian of the
    logits in :math:`s_\ell` (back-propagated through the layers above), :math:`H_i` of
    :func:`softmax_output_hessian` (the exact expectation over labels drawn from the model,
    which K-FAC estimates by sampling). The Fisher block of layer :math:`\ell` is
    :math:`\sum_i (B_i^\top H_i B_i) \otimes a_i a_i^\top`; K-FAC replaces it by
    :math:`S_\ell \otimes A_\ell`, as if the back-propagated gradients and the inputs were
    independent (exact for one example)."""
    logits, inputs, backs = _backward(unflatten(flat.detach(), shapes), x)
    h_out = softmax_output_hessian(logits)
    a_factors = [(a.T @ a / x.shape[0]).contiguous() for a in inputs]     # A = E[a aᵀ]
    s_factors = [torch.einsum("nco,ncd,ndp->op", b, h_out, b).contiguous()  # S = Σ Bᵀ H B
                 for b in backs]
    return a_factors, s_factors
