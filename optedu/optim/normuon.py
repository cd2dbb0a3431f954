r"""NorMuon: Muon's orthogonalised momentum, then each row (neuron) divided by
the root of its own running mean square, for matrices; AdamW for the rest.

Li et al., 2025, *NorMuon: Making Muon more efficient and scalable*
(Algorithm 1). After Newton–Schulz the rows of :math:`O_t` can still have
very different norms (the polar factor equalises singular values, not
rows); NorMuon keeps one second moment per row, :math:`m` numbers for an
:math:`m\times n` matrix, and normalises each row by it, as Adam does per
coordinate. Then the whole update is rescaled: back to the Frobenius norm
:math:`O_t` had (``"preserve_norm"``, as the authors' code does), or to RMS
0.2 (``"match_rms"``, the paper's Algorithm 1, which matches AdamW's
update RMS as Moonlight's rule does).

The interface is ``pytorch_optimizer.NorMuon`` 4.1.0's: groups carry
``use_muon`` (``True`` for hidden matrices, ``False`` for embeddings,
heads, biases and gains, which get its AdamW), and the Newton–Schulz
coefficients may change per step (:data:`optedu.optim.muon.POLAR_EXPRESS`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ._validation import check_betas, check_non_negative, invalid
from .muon import NS_COEFFICIENTS, POLAR_EXPRESS, zeropower_via_newtonschulz
from .optimizer import Group, Optimizer, State

# pytorch_optimizer 4.1.0's presets, as it names them: Keller Jordan's
# quintic, and its own Polar Express schedule ("safety 1e-2": not the
# paper's Algorithm 1 table, which is optedu.optim.muon.POLAR_EXPRESS)
PRESETS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "original": (NS_COEFFICIENTS,),
    "polar_express": (
        (8.237312490495555, -23.157747414558198, 16.680568411445915),
        (4.082441999064835, -2.893047735332586, 0.5252849256975648),
        (3.9263479922546582, -2.8547468034765298, 0.5318022422894988),
        (3.2982187133085143, -2.424541981026706, 0.48632008358844075),
        (2.2970369434552573, -1.63662558125903, 0.4002628455953627),
        (1.8763805351440397, -1.2347896577722228, 0.35891887501668385),
        (1.8564423485617974, -1.2132449880935525, 0.3568003487825883),
        (1.8749994008682747, -1.2499988017229169, 0.3749994008546422),
    ),
    "polar_express_paper": POLAR_EXPRESS,
}


def coefficients(ns_coeffs: Any) -> list[tuple[float, float, float]]:
    """A preset name, one :math:`(a, b, c)` or one per step, as a list of
    triples of floats (the form both libraries store in the group)."""
    if isinstance(ns_coeffs, str):
        if ns_coeffs.lower() not in PRESETS:
            raise invalid("ns_coeffs", ns_coeffs, f"one of {tuple(PRESETS)}")
        return [(a, b, c) for a, b, c in PRESETS[ns_coeffs.lower()]]
    if isinstance(ns_coeffs, tuple) and len(ns_coeffs) == 3 and all(
            isinstance(w, (int, float)) for w in ns_coeffs):
        a, b, c = ns_coeffs
        return [(float(a), float(b), float(c))]
    if len(ns_coeffs) == 0 or any(not isinstance(t, tuple) or len(t) != 3
                                  for t in ns_coeffs):
        raise invalid("ns_coeffs", ns_coeffs,
                      "a preset, an (a, b, c) or a list of them")
    return [(float(a), float(b), float(c)) for a, b, c in ns_coeffs]


def shape_lr(lr: float, shape: Sequence[int], use_adjusted_lr: bool) -> float:
    r"""The step size for a matrix of ``shape`` (rows first, the rest
    flattened): Moonlight's :math:`0.2\,\eta\sqrt{\max(A, B)}` or Keller
    Jordan's :math:`\eta\sqrt{\max(1, A/B)}` (pytorch_optimizer's
    ``get_adjusted_lr``, which reads every dimension, unlike
    :func:`optedu.optim.muon.adjusted_lr`)."""
    rows, cols = shape[0], math.prod(shape[1:])
    ratio = 0.2 * math.sqrt(max(rows, cols)) if use_adjusted_lr \
        else math.pow(max(1.0, rows / cols), 0.5)
    return lr * ratio


def orthogonalise(update: torch.Tensor, group: Group) -> torch.Tensor:
    """Newton–Schulz on the matrix view (rows, the rest flattened), in
    bfloat16, with the group's coefficients (one triple per step)."""
    matrix = update.reshape(len(update), -1)
    return zeropower_via_newtonschulz(matrix, group["ns_coeffs"],
                                      group["ns_steps"])


def adamw_update(param: torch.Tensor, grad: torch.Tensor, state: State,
                 group: Group) -> None:
    r"""The AdamW of the non-matrix groups, pytorch_optimizer's form:
    :math:`\theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,
    m_t / (\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon)` (after the decay)."""
    beta1, beta2 = group["betas"]
    step = group["step"]
    bias_correction1 = 1.0 - math.pow(beta1, step)
    bias_correction2_sq = math.sqrt(1.0 - math.pow(beta2, step))
    state["exp_avg"].lerp_(grad, weight=1.0 - beta1)
    state["exp_avg_sq"].lerp_(grad.square(), weight=1.0 - beta2)
    de_nom = state["exp_avg_sq"].sqrt().div_(bias_correction2_sq) \
        .add_(group["eps"])
    param.addcdiv_(state["exp_avg"], de_nom, value=-group["lr"] / bias_correction1)


def decay(param: torch.Tensor, grad: torch.Tensor, group: Group) -> torch.Tensor:
    r"""Weight decay, before the rule: decoupled, :math:`\theta \leftarrow
    (1-\eta\lambda)\theta` with the unadjusted :math:`\eta`; or coupled,
    :math:`G + \lambda\theta` (returned, ``param.grad`` left alone)."""
    weight_decay = group["weight_decay"]
    if weight_decay == 0.0:
        return grad
    if group["weight_decouple"]:
        param.mul_(1.0 - weight_decay * group["lr"])
        return grad
    return grad.add(param, alpha=weight_decay)


def normuon(param: torch.Tensor, grad: torch.Tensor, state: State,
            group: Group) -> None:
    r"""One NorMuon step on one matrix (after the decay), in place.

    .. math::

        B_t &\leftarrow \mu B_{t-1} + (1-\mu) G_t, \qquad
        \tilde B_t = G_t + \mu (B_t - G_t)\ \text{(Nesterov; else } B_t) \\
        O_t &\leftarrow \mathrm{NS}(\tilde B_t) \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\,
            \mathrm{mean}_j (O_t)_{ij}^2 \quad\text{(one per row } i) \\
        \hat O_t &\leftarrow O_t / (\sqrt{v_t} + \epsilon) \\
        \theta_t &\leftarrow \theta - \eta'\, s\, \hat O_t

    with :math:`s = \lVert O_t\rVert_F / (\lVert\hat O_t\rVert_F+\epsilon)`
    and :math:`\eta'` the shape-adjusted rate (``"preserve_norm"``), or
    :math:`s = 0.2\sqrt{mn} / (\lVert\hat O_t\rVert_F+\epsilon)` and
    :math:`\eta' = \eta` (``"match_rms"``). No bias correction of
    :math:`v` (it cancels in the rescaling but for :math:`\epsilon`).
    """
    buf = state["momentum_buffer"]
    buf.lerp_(grad, weight=1.0 - group["momentum"])        # B_t
    update = grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf
    update = orthogonalise(update, group).to(grad.dtype)  # O_t
    original_norm = update.norm()                          # ‖O_t‖_F
    row_mean = update.square().mean(dim=-1, keepdim=True)  # mean_j O_ij²
    second = state["second_momentum_buffer"]
    second.lerp_(row_mean, weight=1.0 - group["beta2"])    # v_t, one per row
    update.div_(second.sqrt().add_(group["eps"]))          # Ô_t
    if group["update_scale"] == "preserve_norm":
        update.mul_(original_norm / update.norm().add_(group["eps"]))
        lr = shape_lr(group["lr"], param.size(), group["use_adjusted_lr"])
    else:                                                  # RMS 0.2
        update.mul_(0.2 * math.sqrt(update.numel())
                    / update.norm().add_(group["eps"]))
        lr = group["lr"]
    param.add_(update.reshape(param.shape), alpha=-lr)


def check_unit(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= value < 1.0:
        raise invalid(name, value, "a number in [0, 1)")


def check_use_muon(params: Iterable[Any]) -> list[dict[str, Any]]:
    """The groups as new dicts, each with its ``use_muon`` flag."""
    groups = [dict(group) if isinstance(group, dict) else group for group in params]
    for group in groups:
        if not isinstance(group, dict) or "use_muon" not in group:
            raise ValueError("Invalid params: every group must be a dict with "
                             "use_muon set")
    return groups


class _MuonAdamW(Optimizer):
    """What NorMuon and MuonClip share: ``use_muon`` groups, a ``step``
    count per group (pytorch_optimizer keeps it in the group), the decay
    first, and AdamW on the groups with ``use_muon=False``."""

    supports_complex = False
    couples_tensors = True
    # FSDP2 shards (._sharding): refused before any state moves
    refuses_shards = "it orthogonalises whole matrices (Newton–Schulz)"

    def update_group(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        group["step"] = group.get("step", 0) + 1
        for param, grad, state in zip(params, grads, states):
            if self.defaults["maximize"]:
                grad = -grad
            grad = decay(param, grad, group)
            if group["use_muon"]:
                self.matrix_update(param, grad, state, group)
            else:
                adamw_update(param, grad, state, group)

    def matrix_update(self, param: torch.Tensor, grad: torch.Tensor,
                      state: State, group: Group) -> None:
        raise NotImplementedError


class NorMuon(_MuonAdamW):
    r"""NorMuon (Li et al., 2025) with AdamW for the non-matrix groups,
    pytorch_optimizer 4.1.0's arguments, names and defaults.

    Args:
        params: dicts, each with ``use_muon`` (``True``: NorMuon; ``False``:
            AdamW with ``adamw_*`` defaults).
        lr: :math:`\eta` of the matrices (default ``2e-2``).
        momentum: :math:`\mu` (default ``0.95``).
        beta2: decay of the per-row second moment (default ``0.95``).
        weight_decay: :math:`\lambda` of the matrices (default ``0``).
        weight_decouple: decay the weights (default) or add
            :math:`\lambda\theta` to the gradient.
        nesterov: orthogonalise :math:`G + \mu(B - G)` (default ``True``).
        ns_steps: Newton–Schulz steps (default ``5``).
        ns_coeffs: ``"original"``, ``"polar_express"`` (pytorch_optimizer's
            schedule), ``"polar_express_paper"`` (optedu's name for the
            paper's table), an :math:`(a,b,c)` or a list, one per step.
        update_scale: ``"preserve_norm"`` (default) or ``"match_rms"``.
        use_adjusted_lr: Moonlight's :math:`0.2\sqrt{\max(A,B)}` instead of
            :math:`\sqrt{\max(1, A/B)}`, in ``"preserve_norm"`` only.
        adamw_lr, adamw_betas, adamw_wd, adamw_eps: the AdamW groups'
            defaults (``3e-4``, ``(0.9, 0.95)``, ``0``, ``1e-10``).
        eps: :math:`\epsilon` of the row normalisation (default ``1e-10``).
        maximize: ascend (default ``False``).

    State per matrix: ``momentum_buffer`` (its shape) and
    ``second_momentum_buffer`` (rows × 1); per AdamW tensor ``exp_avg``,
    ``exp_avg_sq``. Group key ``step`` (a count, in the group).

    Differences from pytorch_optimizer 4.1.0: no ``foreach`` (its default
    batches same-shape matrices into one ``bmm``; on CPU that gives the
    same bits, tested); ``p.grad`` is left alone (the reference negates it
    with ``maximize``, adds the coupled decay to it and, with Nesterov,
    overwrites it with the look-ahead); the presets ``"quintic"`` and
    ``"polar_express_safer"`` are not named (pass their triples); fewer than
    100 Newton–Schulz steps (torch's limit, from
    :func:`~optedu.optim.muon.zeropower_via_newtonschulz`).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-2,
        momentum: float = 0.95,
        beta2: float = 0.95,
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        nesterov: bool = True,
        ns_steps: int = 5,
        ns_coeffs: Any = "original",
        update_scale: str = "preserve_norm",
        use_adjusted_lr: bool = False,
        adamw_lr: float = 3e-4,
        adamw_betas: tuple[float, float] = (0.9, 0.95),
        adamw_wd: float = 0.0,
        adamw_eps: float = 1e-10,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("lr", adamw_lr)
        check_non_negative("weight_decay", weight_decay)
        check_unit("momentum", momentum)
        check_unit("beta2", beta2)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) \
                or not 0 < ns_steps < 100:
            raise invalid("ns_steps", ns_steps, "an integer in [1, 99]")
        if update_scale not in ("preserve_norm", "match_rms"):
            raise invalid("update_scale", update_scale,
                          "'preserve_norm' or 'match_rms'")
        check_betas(adamw_betas)
        check_non_negative("adamw_wd", adamw_wd)
        check_non_negative("adamw_eps", adamw_eps)
        check_non_negative("eps", eps)
        ns_coeffs = coefficients(ns_coeffs)
        groups = check_use_muon(params)
        for group in groups:
            if group["use_muon"]:
                for key, value in (("lr", lr), ("momentum", momentum),
                                   ("beta2", beta2), ("nesterov", nesterov),
                                   ("weight_decay", weight_decay),
                                   ("ns_steps", ns_steps),
                                   ("ns_coeffs", ns_coeffs),
                                   ("update_scale", update_scale),
                                   ("use_adjusted_lr", use_adjusted_lr),
                                   ("eps", eps)):
                    group.setdefault(key, value)
                group["ns_coeffs"] = coefficients(group["ns_coeffs"])
            else:
                for key, value in (("lr", adamw_lr), ("betas", adamw_betas),
                                   ("eps", adamw_eps),
                                   ("weight_decay", adamw_wd)):
                    group.setdefault(key, value)
            group.setdefault("weight_decouple", weight_decouple)
        super().__init__(groups, dict(maximize=maximize))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        if group["use_muon"]:
            return {"momentum_buffer": torch.zeros_like(param),
                    "second_momentum_buffer": param.new_zeros(param.size(0), 1)}
        return {"exp_avg": torch.zeros_like(param),
                "exp_avg_sq": torch.zeros_like(param)}

    def matrix_update(self, param: torch.Tensor, grad: torch.Tensor,
                      state: State, group: Group) -> None:
        normuon(param, grad, state, group)
