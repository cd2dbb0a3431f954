r"""MuonClip: Muon, then QK-clip: the query and key weights of any attention
head whose largest logit passed a threshold are shrunk back.

Kimi Team, 2025, *Kimi K2: Open Agentic Intelligence* (section 2.1,
Algorithm 1). With Muon, K2's attention logits grew without bound and the
loss spiked; QK-clip caps them at the source, per head :math:`h`, after
each optimizer step:

.. math::

    \gamma_h = \min\Bigl(1, \frac{\tau}{S^{\max}_h}\Bigr), \qquad
    W_q^h \leftarrow \gamma_h^{\alpha}\, W_q^h, \qquad
    W_k^h \leftarrow \gamma_h^{1-\alpha}\, W_k^h

so the next forward pass has :math:`q^\top k` scaled by :math:`\gamma_h`:
a head at :math:`S^{\max}_h = 2\tau` comes back to :math:`\tau`; a head
under :math:`\tau` is untouched. :math:`S^{\max}_h` is the largest
pre-softmax logit of head :math:`h` in the batch just seen: the model
measures it, the optimizer cannot (``step(attention_max_logits=...)``).
In multi-head latent attention the rotary query part takes the whole
:math:`\gamma_h` (``"query_rotary"``) and the shared rotary key none.

The interface is ``pytorch_optimizer.MuonClip`` 4.1.0's: ``use_muon``
groups; a group holding a head's query (or key) projection says so with
``qk_clip`` (``"query"``, ``"key"``, ``"query_rotary"``, ``"key_rotary"``)
and ``attention_name``; its rows are the heads' blocks, head after head.

:func:`optedu.training.spikes.qk_clip_` is the same clip for a packed
``qkv`` layer, with :math:`\alpha = 1/2` only, computed as
:math:`\sqrt{\gamma_h}` in float64; this one is
:math:`\gamma_h^{\alpha}` in float32, the reference's arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_betas, check_greater, check_interval, check_non_negative, invalid
from .cautious import cautious_mask
from .normuon import (_MuonAdamW, check_unit, check_use_muon, coefficients, orthogonalise,
                      shape_lr)
from .optimizer import Group, State

ROLES = ("query", "key", "query_rotary", "key_rotary")
METHODS = ("newton_schulz", "gram_newton_schulz")


def clip_scales(max_logits: torch.Tensor, threshold: float, alpha: float,
                role: str) -> torch.Tensor:
    r"""Per head, the factor of one projection's rows: :math:`\gamma_h^{e}`
    with :math:`\gamma_h = \tau / \max(S_h, \tau)` in float32 and
    :math:`e = \alpha` (query), :math:`1-\alpha` (key), 1 (rotary query),
    0 (shared rotary key: left alone)."""
    logits = max_logits.detach().float()
    if logits.ndim != 1 or logits.numel() == 0:
        raise invalid("attention_max_logits", tuple(logits.shape),
                      "a non-empty 1-D tensor, one per head")
    exponent = {"query": alpha, "key": 1.0 - alpha, "query_rotary": 1.0,
                "key_rotary": 0.0}[role]
    return (threshold / logits.clamp_min(threshold)).pow_(exponent)


def gram_newton_schulz(grad: torch.Tensor, ns_coeffs: list, ns_steps: int,
                       reset_steps: tuple[int, ...] = (2,),
                       eps: float = 1e-7) -> torch.Tensor:
    r"""The same quintic steps run on the small Gram matrix (Dao AI Lab's
    "Gram Newton–Schulz", pytorch_optimizer's ``ns_method=
    "gram_newton_schulz"``), in float16. With :math:`A_0 = X_0X_0^\top`
    and :math:`P_k = a_kI + b_kA_k + c_kA_k^2`, :math:`X_{k+1} = P_kX_k`
    gives :math:`A_{k+1} = P_kA_kP_k`: only the factor
    :math:`F = P_k\cdots P_0` is kept and :math:`X_T = FX_0` is formed at
    the end; at each step of ``reset_steps`` :math:`X = FX_0` and
    :math:`A` are rebuilt, against the drift of float16 round-off."""
    tall = grad.size(0) > grad.size(1)
    matrix = (grad.mT if tall else grad).float()
    x = (matrix / matrix.norm(2, dim=(-2, -1), keepdim=True).clamp_min(eps)) \
        .to(torch.float16)                                   # X_0, float16
    gram = x @ x.mT                                          # A_0
    factor = None                                            # F
    for index in range(ns_steps):
        if index in reset_steps and factor is not None:      # rebuild X, A
            x = factor @ x
            gram = x @ x.mT
            factor = None
        a, b, c = ns_coeffs[min(index, len(ns_coeffs) - 1)]
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)    # bA + cA²
        if factor is not None:
            factor = torch.addmm(factor, factor, poly, beta=a)   # F P_k
        if index + 1 < ns_steps and index + 1 not in reset_steps:
            scratch = torch.addmm(gram, gram, poly, beta=a)      # A P_k
            gram = torch.addmm(scratch, poly, scratch, beta=a)   # P_k A P_k
        if factor is None:
            factor = poly
            factor.diagonal().add_(a)                            # P_k = aI + ...
    x = factor @ x                                               # X_T = F X_0
    return x.mT if tall else x


@torch.no_grad()
def qk_clip(param: torch.Tensor, scales: torch.Tensor) -> None:
    """Multiply each head's block of rows of ``param`` by its factor."""
    heads = scales.numel()
    if param.ndim == 0 or param.size(0) % heads != 0:
        raise invalid("param", tuple(param.shape),
                      f"rows divisible by the {heads} heads")
    rows = scales.to(param.dtype).repeat_interleave(param.size(0) // heads)
    param.mul_(rows.view(-1, *([1] * (param.ndim - 1))))


class MuonClip(_MuonAdamW):
    r"""MuonClip (Kimi K2): Muon with the heavy-ball momentum
    :math:`B_t = \mu B_{t-1} + G_t` (no Nesterov), Moonlight's shape
    factor by default, AdamW for ``use_muon=False`` groups, and QK-clip
    after the step. pytorch_optimizer 4.1.0's arguments and defaults.

    .. math::

        \theta_t = (1-\eta\lambda)\theta_{t-1}
            - 0.2\sqrt{\max(A, B)}\,\eta\; \mathrm{NS}(B_t)

    Args:
        params: dicts with ``use_muon``; attention groups add ``qk_clip``
            and ``attention_name``.
        lr, momentum, weight_decay: :math:`\eta` (``2e-2``), :math:`\mu`
            (``0.95``), :math:`\lambda` (``0``) of the matrices.
        qk_clip_threshold: :math:`\tau` (default ``100``).
        qk_clip_alpha: :math:`\alpha`, the query's share (default ``0.5``).
        ns_steps, ns_coeffs: as :class:`~optedu.optim.normuon.NorMuon`.
        ns_method: ``"newton_schulz"`` (bfloat16, as Muon) or
            ``"gram_newton_schulz"`` (:func:`gram_newton_schulz`, float16).
        ns_reset_steps: the Gram iteration's restarts (default ``(2,)``).
        adamw_lr, adamw_betas, adamw_wd, adamw_eps: the AdamW groups'.
        maximize: ascend (default ``False``).
        use_adjusted_lr: :math:`0.2\sqrt{\max(A,B)}` (default ``True``) or
            :math:`\sqrt{\max(1, A/B)}`.
        weight_decouple: decay the weights (default) or add
            :math:`\lambda\theta` to the gradient, in every group
            (the reference's ``**kwargs``).
        cautious: multiply each matrix's orthogonalised update by the
            cautious mask :math:`\phi(\mathrm{NS}(B_t), G_t)`
            (:func:`~optedu.optim.cautious.cautious_mask`; default ``False``).

    ``step(closure=None, attention_max_logits=None)``: the mapping from
    each ``attention_name`` to its heads' largest logits, reduced over
    micro-batches and ranks; names left out are not clipped.

    State per matrix: ``momentum_buffer``; per AdamW tensor ``exp_avg``,
    ``exp_avg_sq``. Group keys as the reference's, ``step`` included.

    Differences from pytorch_optimizer 4.1.0: with ``"gram_newton_schulz"``
    the float16 products are addmm's own results where the reference writes
    them into preallocated ``out=`` buffers, which on CPU round apart now and
    then (one float16 ulp; after 20 steps at most 8.1e-5 in the weights,
    tested); no ``foreach`` argument; the group key ``cautious`` is always
    set (the reference sets it only when passed); sharded (DTensor) parameters are not clipped; ``p.grad`` is left alone.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-2,
        momentum: float = 0.95,
        weight_decay: float = 0.0,
        qk_clip_threshold: float = 100.0,
        qk_clip_alpha: float = 0.5,
        ns_steps: int = 5,
        ns_coeffs: Any = "original",
        ns_method: str = "newton_schulz",
        ns_reset_steps: tuple[int, ...] = (2,),
        adamw_lr: float = 3e-4,
        adamw_betas: tuple[float, float] = (0.9, 0.95),
        adamw_wd: float = 0.0,
        adamw_eps: float = 1e-10,
        maximize: bool = False,
        use_adjusted_lr: bool = True,
        weight_decouple: bool = True,
        cautious: bool = False,
    ) -> None:
        check_greater("qk_clip_threshold", qk_clip_threshold)
        check_interval("qk_clip_alpha", qk_clip_alpha, 0.0, 1.0)
        check_non_negative("lr", lr)
        check_non_negative("lr", adamw_lr)
        check_non_negative("weight_decay", weight_decay)
        check_unit("momentum", momentum)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) \
                or not 0 < ns_steps < 100:
            raise invalid("ns_steps", ns_steps, "an integer in [1, 99]")
        if ns_method not in METHODS:
            raise invalid("ns_method", ns_method, f"one of {METHODS}")
        check_betas(adamw_betas)
        check_non_negative("adamw_wd", adamw_wd)
        check_non_negative("adamw_eps", adamw_eps)
        ns_coeffs = coefficients(ns_coeffs)
        groups = check_use_muon(params)
        for group in groups:
            if group["use_muon"]:
                for key, value in (("lr", lr), ("momentum", momentum),
                                   ("nesterov", False),
                                   ("weight_decay", weight_decay),
                                   ("ns_steps", ns_steps),
                                   ("ns_coeffs", ns_coeffs),
                                   ("ns_method", ns_method),
                                   ("ns_reset_steps", ns_reset_steps),
                                   ("use_adjusted_lr", use_adjusted_lr)):
                    group.setdefault(key, value)
                group["ns_coeffs"] = coefficients(group["ns_coeffs"])
                if group["ns_method"] not in METHODS:
                    raise invalid("ns_method", group["ns_method"],
                                  f"one of {METHODS}")
            else:
                for key, value in (("lr", adamw_lr), ("betas", adamw_betas),
                                   ("eps", adamw_eps),
                                   ("weight_decay", adamw_wd)):
                    group.setdefault(key, value)
            group.setdefault("weight_decouple", weight_decouple)
        super().__init__(groups, dict(maximize=maximize, cautious=cautious,
                                      qk_clip_threshold=qk_clip_threshold,
                                      qk_clip_alpha=qk_clip_alpha))
        for group in self.param_groups:
            check_greater("qk_clip_threshold", group["qk_clip_threshold"])
            check_interval("qk_clip_alpha", group["qk_clip_alpha"], 0.0, 1.0)
            role = group.get("qk_clip")
            if role is not None:
                if role not in ROLES:
                    raise invalid("qk_clip", role, f"one of {ROLES}")
                if "attention_name" not in group:
                    raise invalid("qk_clip", role, "a group with an "
                                  "attention_name")

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        if group["use_muon"]:
            return {"momentum_buffer": torch.zeros_like(param)}
        return {"exp_avg": torch.zeros_like(param),
                "exp_avg_sq": torch.zeros_like(param)}

    def matrix_update(self, param: torch.Tensor, grad: torch.Tensor,
                      state: State, group: Group) -> None:
        buf = state["momentum_buffer"]
        buf.mul_(group["momentum"]).add_(grad)             # B_t = μB + G_t
        if group["ns_method"] == "gram_newton_schulz":
            update = gram_newton_schulz(buf.reshape(len(buf), -1),
                                        group["ns_coeffs"], group["ns_steps"],
                                        tuple(group["ns_reset_steps"]))
        else:
            update = orthogonalise(buf, group)             # NS(B_t), bfloat16
        update = update.reshape(param.shape)
        if group.get("cautious", False):   # absent in the reference's groups
            update.mul_(cautious_mask(update, grad))       # U ⊙ φ(U, G_t)
        lr = shape_lr(group["lr"], param.size(), group["use_adjusted_lr"])
        param.add_(update, alpha=-lr)

    @torch.no_grad()
    def step(self, closure: Any = None,
             attention_max_logits: dict[str, torch.Tensor] | None = None) -> Any:
        """The Muon/AdamW step, then QK-clip of the labelled groups with
        this batch's per-head largest logits."""
        loss = super().step(closure)
        if attention_max_logits is None:
            return loss
        for group in self.param_groups:
            role = group.get("qk_clip")
            if role is None or role == "key_rotary" \
                    or group["attention_name"] not in attention_max_logits:
                continue
            scales = clip_scales(attention_max_logits[group["attention_name"]],
                                 group["qk_clip_threshold"],
                                 group["qk_clip_alpha"], role)
            for param in group["params"]:
                qk_clip(param, scales)
        return loss
