r"""Muon's Newton–Schulz iteration in another precision: a comparison
variant.

torch's Muon (and :func:`optedu.optim.muon.zeropower_via_newtonschulz`) always
iterates in bfloat16. The Muon chapter needs the same iteration in float32
(to time it on a CPU without fast bfloat16 matrix products) and in float64
without the Frobenius normalisation (to show why the normalisation is
there). :func:`newton_schulz` is that: the same steps, in a chosen dtype,
with the normalisation optional. Nothing in optedu's optimizers uses it.
"""

from __future__ import annotations

import torch

from optedu.optim.muon import NS_COEFFICIENTS


def newton_schulz(
    grad: torch.Tensor,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    ns_steps: int = 5,
    eps: float = 1e-7,
    *,
    dtype: torch.dtype = torch.float32,
    normalise: bool = True,
) -> torch.Tensor:
    r"""VARIANT, not torch's rule: Muon's iteration in ``dtype``.

    .. math::

        X_0 = G / \max(\lVert G\rVert_F, \epsilon)\ \text{(if normalise)},
        \quad X_{k+1} = aX_k + (bA_k + cA_k^2)X_k,\ A_k = X_kX_k^\top

    The steps of :func:`optedu.optim.muon.zeropower_via_newtonschulz` (a tall
    matrix transposed first), in ``dtype`` instead of bfloat16; with
    ``normalise=False`` the iteration starts from :math:`G` itself.
    """
    a, b, c = ns_coefficients
    x = grad.to(dtype)
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T
    if normalise:
        x = x / x.norm().clamp(min=eps)                    # X_0 = G/‖G‖_F
    for _ in range(ns_steps):
        gram = x @ x.T                                     # A = X Xᵀ
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # bA + cA²
        x = torch.addmm(x, poly, x, beta=a)                # aX + (bA + cA²)X
    return x.T if tall else x
