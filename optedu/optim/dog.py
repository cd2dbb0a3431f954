r"""DoG and LDoG: SGD whose step size is the distance travelled from the start over the root of
the summed squared gradients -- no learning rate to tune."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._sharding import local, norms, sharded_sums
from ._validation import check_greater, check_non_negative
from .optimizer import Group, Optimizer, evaluate


def dog(param: torch.Tensor, grad: torch.Tensor, eta: torch.Tensor) -> None:
    r"""One DoG step on one tensor, in place (Ivgi, Hinder & Carmon, 2023, Algorithm 1), with
    the step size :math:`\eta_t` of its block (:func:`dog_step_size`):

    .. math::

        \bar r_t &= \max\bigl(\bar r_{t-1},\ \|x_t - x_0\|\bigr),
            \qquad \bar r_0 = r_\epsilon = \texttt{reps\_rel}\,(1 + \|x_0\|) \\
        G_t &= G_{t-1} + \|g_t\|^2, \qquad G_0 = \|g_0\|^2 + \epsilon \\
        \eta_t &= c\,\bar r_t / \sqrt{G_t} \\
        x_{t+1} &= x_t - \eta_t\, g_t

    :math:`\bar r_t` ("r-bar", DoG's distance estimate) is the farthest the iterates have
    moved from :math:`x_0`, and never less than :math:`r_\epsilon`; with :math:`c = 1` the
    first step moves by less than :math:`r_\epsilon` (:math:`\|g_0\|/\sqrt{G_0} < 1`).
    ``eta`` is a 0-dim tensor, passed as ``alpha`` as the reference passes it (torch reads its
    value as a Python number).
    """
    param.add_(grad, alpha=-eta)  # type: ignore[arg-type]  # x_{t+1} = x_t - η_t g_t


def dog_step_size(group: Group, params: list[torch.Tensor],
                  grads: list[torch.Tensor | None],
                  block: Callable[[torch.Tensor], torch.Tensor],
                  total: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    r"""Update the group's ``rbar`` (:math:`\bar r_t`) and ``G`` (:math:`G_t`); return
    :math:`\eta_t` (DoG: a 0-dim tensor for the whole group; LDoG: one entry per tensor).

    ``block`` turns the per-tensor norms into the blocks' norms and ``total`` the per-tensor
    squared norms into the blocks' sums: the norm and the sum over the group for DoG (the
    group is one long vector), the identity for LDoG (each tensor is a block). A tensor
    without a gradient adds 0 to :math:`G`. Nothing is stored until :math:`G > 0` is checked.
    """
    # sharded parameters (FSDP2): each sum is this rank's piece's, added over the mesh
    squares = [(local(g) ** 2).sum() if g is not None else local(p).new_zeros(())
               for p, g in zip(params, grads)]
    grad_sq = total(sharded_sums(torch.stack(squares), params))         # ‖g_t‖²
    if "init_buffer" not in group:                                      # t = 0
        init = [torch.clone(p).detach() for p in params]                # x_0
        x0_norm = block(norms(params))                                  # ‖x_0‖
        rbar = group["reps_rel"] * (1 + x0_norm)            # r̄_0 = r_ε = reps_rel (1 + ‖x_0‖)
        G = grad_sq + group["eps"]                                      # G_0 = ‖g_0‖² + ε
    else:
        init = group["init_buffer"]
        distance = block(norms([p - x0 for p, x0 in zip(params, init)])) # ‖x_t - x_0‖
        rbar = torch.maximum(group["rbar"], distance)       # r̄_t = max(r̄_{t-1}, ‖x_t - x_0‖)
        G = group["G"] + grad_sq                                        # G_t = G_{t-1} + ‖g_t‖²
    if not torch.all(G > 0).item():
        raise RuntimeError(f"DoG cannot work when G is not strictly positive. got: {G}")
    group["init_buffer"], group["rbar"], group["G"] = init, rbar, G
    return group["lr"] * rbar / torch.sqrt(G)                           # η_t = c r̄_t / √G_t


class DoG(Optimizer):
    r"""DoG, Distance over Gradients (Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule", ICML 2023), in torch.optim's style: SGD whose
    step size :math:`\eta_t = c\,\bar r_t/\sqrt{G_t}` (see :func:`dog`) is computed once per
    parameter group, the group's tensors taken as one long vector.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        reps_rel: :math:`r_\epsilon / (1 + \|x_0\|)`, the first distance estimate relative to
            the initial weights (default ``1e-6``; the authors suggest ``1e-4`` with batch
            normalisation).
        lr: :math:`c`, a factor on the step size (default ``1.0``; the authors advise
            against changing it).
        weight_decay: :math:`\lambda`, added to the gradient: :math:`g_t \leftarrow g_t +
            \lambda x_t` before everything else (default ``0``).
        eps: :math:`\epsilon`, added to :math:`G` at the first step only (default ``1e-8``).
        init_eta: if given, the first step size :math:`\eta_0` (then ``reps_rel`` is stored as
            ``0``, so :math:`\bar r_1 = \|x_1 - x_0\|`) (default ``None``).

    No state per parameter (``self.state`` stays empty): everything lives in the parameter
    group, where the reference keeps it: ``init_buffer`` (a copy :math:`x_0` of each tensor),
    ``rbar`` (:math:`\bar r_t`, the distance estimate, a 0-dim tensor), ``G`` (0-dim) and
    ``eta`` (:math:`\eta_t` once per tensor). The rule is meant to be used with iterate
    averaging (the paper's polynomial decay averaging), since its step size does not decay.

    Differences from ``dog-optimizer`` 1.0.3 (the reference the tests run): none in the
    numbers (bit-identical; checkpoints load both ways). Left out: its logging (a warning when
    ``lr != 1``). Where it fails or surprises:

    - it adds :math:`\lambda x` into ``p.grad`` in place; optedu leaves ``p.grad`` alone;
    - it fails on a parameter without a gradient; optedu counts that gradient as 0 (no
      decay, no move);
    - :math:`G \le 0` (``eps=0`` and a zero first gradient) is an ``AssertionError`` there, a
      ``RuntimeError`` here, raised before anything is stored; its argument errors have their
      own wording, optedu's have the one wording and refuse NaN and a negative ``eps`` too;
    - one flag marks its first step for every group (saved as
      ``state_dict()["state"]["_first_step"]``, which optedu writes and reads for it); optedu
      asks each group for its ``init_buffer``, so a group added later starts afresh instead
      of failing;
    - loading a checkpoint moves ``rbar``, ``G`` and ``eta`` to the CPU (and every
      ``init_buffer`` to the first parameter's device), so on a GPU it cannot resume even its
      own checkpoint ("Expected all tensors to be on the same device"); optedu moves them to
      their group's device;
    - it adds to ``G`` in place, so a ``state_dict()`` kept in memory (not saved) changes
      with later steps; optedu's does not.

    A second learning rate is not refused: each group's ``lr`` is its own :math:`c`, as there.
    """

    couples_tensors = True  # its step size sums over the group (see ._sharding)

    supports_complex = False  # ‖g‖² is summed as g ** 2: complex, not ordered

    def __init__(
        self,
        params: Iterable[Any],
        reps_rel: float = 1e-6,
        lr: float = 1.0,
        weight_decay: float = 0.0,
        eps: float = 1e-8,
        init_eta: float | None = None,
    ) -> None:
        check_greater("lr", lr)
        if init_eta is not None:
            check_greater("init_eta", init_eta)
            reps_rel = 0    # the reference's: r̄ starts at 0, the first step is init_eta
        else:
            check_greater("reps_rel", reps_rel)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("eps", eps)
        defaults = dict(reps_rel=reps_rel, lr=lr, weight_decay=weight_decay, eps=eps,
                        init_eta=init_eta)
        super().__init__(params, defaults)

    @staticmethod
    def _block(norms: torch.Tensor) -> torch.Tensor:
        return norms.norm()         # one block: ‖(‖x^1‖, ‖x^2‖, ...)‖ = ‖x‖ over the group

    @staticmethod
    def _total(squares: torch.Tensor) -> torch.Tensor:
        return squares.sum()        # one block: Σ_i ‖g^i‖² = ‖g‖² over the group

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        loss = evaluate(closure)
        for group in self.param_groups:
            params = group["params"]
            self.check_gradients([p for p in params if p.grad is not None])
            first = "init_buffer" not in group
            decay = group["weight_decay"]
            grads = [p.grad.add(p, alpha=decay)                        # g_t + λ x_t
                     if decay > 0 and p.grad is not None else p.grad for p in params]
            eta = dog_step_size(group, params, grads, self._block, self._total)
            if first and group["init_eta"] is not None:
                eta = eta * 0 + group["init_eta"]                  # η_0 = init_eta
            etas = [eta] * len(params) if eta.dim() == 0 else list(eta)
            group["eta"] = etas
            for p, g, eta_p in zip(params, grads, etas):
                if g is not None:
                    dog(p, g, eta_p)
        return loss

    def state_dict(self) -> dict[str, Any]:
        """torch's, plus the reference's ``_first_step`` flag, so that dog-optimizer loads it."""
        state_dict = super().state_dict()
        state_dict["state"]["_first_step"] = any(
            "init_buffer" not in group for group in self.param_groups)
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's, without the reference's ``_first_step`` flag (each group's
        ``init_buffer`` tells); the group's tensors go to its parameters' devices."""
        state = {k: v for k, v in state_dict["state"].items() if k != "_first_step"}
        super().load_state_dict({**state_dict, "state": state})
        for group in self.param_groups:
            if "init_buffer" in group:
                device = group["params"][0].device
                group["init_buffer"] = [x0.to(p.device) for x0, p
                                        in zip(group["init_buffer"], group["params"])]
                group["rbar"], group["G"] = group["rbar"].to(device), group["G"].to(device)
                group["eta"] = [eta.to(device) for eta in group["eta"]]


class LDoG(DoG):
    r"""Layer-wise DoG (L-DoG, the same paper): DoG's rule with each tensor of a group as its
    own block, so each has its own :math:`\bar r_t`, :math:`G_t` and :math:`\eta_t`.

    Arguments as :class:`DoG`'s. The group's ``rbar`` and ``G`` are 1-dimensional, one entry
    per tensor of the group (a tensor without a gradient keeps its :math:`r_\epsilon` and adds
    0 to its :math:`G`). Differences from ``dog-optimizer`` 1.0.3: as :class:`DoG`'s.
    """

    couples_tensors = False  # each tensor its own block

    @staticmethod
    def _block(norms: torch.Tensor) -> torch.Tensor:
        return norms                # each tensor its own block

    @staticmethod
    def _total(squares: torch.Tensor) -> torch.Tensor:
        return squares
