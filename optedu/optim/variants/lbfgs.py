r"""The BFGS inverse-Hessian estimate as a dense matrix: a variant of
:func:`optedu.optim.lbfgs.two_loop` for comparison.

Both functions are *variants*: ``torch.optim.LBFGS`` (and so
``optedu.LBFGS``) never forms a matrix. The L-BFGS chapter builds the
:math:`n \times n` matrix that the two-loop recursion applies implicitly,
and checks that the recursion's direction is this matrix times the negative
gradient (Nocedal & Wright, eqs. 6.17 and 7.19).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def bfgs_inverse_update(H: torch.Tensor, s: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
    r"""VARIANT (dense): one BFGS update of the inverse-Hessian estimate.

    .. math::

        H_{+} = (I - \rho\, s y^\top)\, H\, (I - \rho\, y s^\top)
                + \rho\, s s^\top, \qquad \rho = 1 / (y^\top s)

    The result satisfies the secant condition :math:`H_{+} y = s`, and is
    symmetric positive definite when :math:`H` is and :math:`y^\top s > 0`.
    :math:`O(n^2)` memory and work; returns a new matrix.
    """
    rho = 1.0 / y.dot(s)
    V = torch.eye(len(s), dtype=H.dtype, device=H.device) - rho * torch.outer(y, s)
    return V.T @ H @ V + rho * torch.outer(s, s)      # N&W eq. 6.17


def lbfgs_matrix(steps: Sequence[torch.Tensor], dirs: Sequence[torch.Tensor],
                 h_diag: float | torch.Tensor) -> torch.Tensor:
    r"""VARIANT (dense): the matrix :math:`H_k` that the two-loop recursion
    applies, built explicitly.

    Start from :math:`H^0 = \gamma I` (``h_diag``) and apply
    :func:`bfgs_inverse_update` for the pairs :math:`(s_i, y_i)` (``steps``,
    ``dirs``), oldest first. :func:`optedu.optim.lbfgs.two_loop` returns
    :math:`-H_k g` without forming it.
    """
    n = len(steps[0]) if steps else 0
    H = float(h_diag) * torch.eye(n, dtype=steps[0].dtype, device=steps[0].device)
    for s, y in zip(steps, dirs, strict=True):
        H = bfgs_inverse_update(H, s, y)
    return H
