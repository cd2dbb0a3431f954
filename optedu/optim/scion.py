r"""Scion: momentum sent through a linear minimisation oracle (LMO), one norm per layer.

Pethick et al., 2025, *Training Deep Learning Models with Norm-Constrained LMOs*. The step is
the point of a norm ball that best descends along the averaged gradient :math:`d`:
:math:`\operatorname{lmo}(d) = \arg\min_{\lVert s\rVert \le 1} \langle d, s\rangle`, scaled by
the radius :math:`\rho`. The norm decides the step: the spectral norm gives Muon's
:math:`-UV^\top` (through :func:`optedu.optim.muon.zeropower_via_newtonschulz`), the
:math:`\ell_\infty` norm the sign, a column norm each column rescaled. Unconstrained (uSCG)
it adds :math:`\gamma\rho\,\operatorname{lmo}(d)`; constrained (SCG, a conditional gradient
step) it first shrinks the weights by :math:`1-\gamma`, so they stay in the ball of radius
:math:`\rho`.

The interface is ``pytorch_optimizer.SCION`` 4.1.0's: its arguments, ``norm_type`` numbers
(:class:`LMONorm`), ``norm_kwargs``, and state key ``d``; the oracles return
:math:`-\operatorname{lmo}(d)`, the direction the weights move against, as it does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any

import torch

from ._validation import check_greater, check_interval, check_non_negative, invalid
from .muon import NS_COEFFICIENTS, zeropower_via_newtonschulz
from .optimizer import Group, Optimizer, State


class LMONorm(IntEnum):
    """The norms, numbered as pytorch_optimizer numbers them."""

    NONE = 0
    AUTO = 1
    SPECTRAL = 2
    SPECTRALCONV = 3
    SIGN = 4
    BIAS = 5
    COL = 6
    ROW = 7


# each norm's options (norm_kwargs) and their defaults, as the reference's classes take them
OPTIONS: dict[int, dict[str, Any]] = {
    LMONorm.NONE: {}, LMONorm.AUTO: {}, LMONorm.BIAS: {},
    LMONorm.SPECTRAL: dict(max_scale=False, normalize=True, num_steps=5),
    LMONorm.SPECTRALCONV: dict(num_steps=5),
    LMONorm.SIGN: dict(zero_init=False, normalize=True),
    LMONorm.COL: dict(normalized=False, transpose=False),
    LMONorm.ROW: dict(normalized=True, transpose=False),
}
EPS = 1e-8   # the floor of the RMS in the column, row and bias oracles


def resolved(norm: int, options: Mapping[str, Any], ndim: int
             ) -> tuple[int, Mapping[str, Any]]:
    """``AUTO`` made concrete for a tensor of ``ndim`` dimensions, with that norm's default
    options (bias for 0 or 1, spectral for 2, the convolution's for 3 or 4); any other norm
    as it is."""
    if norm != LMONorm.AUTO:
        return norm, options
    concrete = {0: LMONorm.BIAS, 1: LMONorm.BIAS, 2: LMONorm.SPECTRAL}.get(
        ndim, LMONorm.SPECTRALCONV if ndim in (3, 4) else -1)
    if concrete < 0:
        raise invalid("norm_type", "AUTO", f"a tensor of 0 to 4 dimensions, not {ndim}")
    return concrete, OPTIONS[concrete]


def polar(d: torch.Tensor, num_steps: int) -> torch.Tensor:
    """:math:`UV^\\top` of the matrix view (rows, the rest flattened), by Muon's Newton–Schulz
    iteration (bfloat16, Jordan's quintic), shaped as ``d``."""
    return zeropower_via_newtonschulz(d.reshape(len(d), -1), NS_COEFFICIENTS, num_steps,
                                      1e-7).view(d.shape)


def direction(d: torch.Tensor, norm: int, options: Mapping[str, Any]) -> torch.Tensor:
    r""":math:`-\operatorname{lmo}(d)` for the norm ``norm`` (a new tensor; bfloat16 for the
    spectral ones, as the iteration runs).

    * spectral (RMS→RMS): :math:`\sqrt{d_\text{out}/d_\text{in}}\,UV^\top` (``normalize``;
      else :math:`\sqrt{d_\text{out}}`; ``max_scale``: at least 1); per kernel element for a
      convolution, :math:`\sqrt{d_\text{out}/d_\text{in}}/k` with :math:`k` its size;
    * sign (:math:`\ell_\infty`, the head): :math:`\operatorname{sign}(d)/d_\text{in}`
      (``normalize``);
    * column (an embedding, ``transpose`` for a vocabulary × width table): each column to RMS
      1 (÷ :math:`d_\text{in}` with ``normalized``); row: each row to norm 1 (÷
      :math:`\sqrt{d_\text{in}}` with ``normalized``); bias: the vector to RMS 1;
    * none: :math:`d` itself; auto: bias, spectral or convolution by the number of dimensions.
    """
    norm, options = resolved(norm, options, d.ndim)
    if norm == LMONorm.SPECTRAL:
        d_out, d_in = d.shape
        scale = math.sqrt(d_out / d_in) if options["normalize"] else math.sqrt(d_out)
        out = polar(d, options["num_steps"])                  # U Vᵀ
        out *= max(1.0, scale) if options["max_scale"] else scale
        return out
    if norm == LMONorm.SPECTRALCONV:
        out = polar(d, options["num_steps"])
        out *= math.sqrt(d.shape[0] / d.shape[1]) / math.prod(d.shape[2:])
        return out
    if norm == LMONorm.SIGN:
        return torch.sign(d).div_(d.size(1)) if options["normalize"] else torch.sign(d)
    if norm == LMONorm.BIAS:                                  # d / RMS(d)
        return d / torch.sqrt(torch.mean(d.pow(2), dim=0, keepdim=True)).add_(EPS)
    if norm in (LMONorm.COL, LMONorm.ROW):
        m = d.transpose(0, 1) if options["transpose"] else d
        if norm == LMONorm.COL:                               # each column to RMS 1
            rms = torch.sqrt(torch.sum(m.pow(2), dim=0, keepdim=True)) / math.sqrt(m.size(0))
            if options["normalized"]:
                rms.mul_(m.size(1))
        else:                                                 # each row to norm 1
            rms = torch.sqrt(torch.sum(m.pow(2), dim=-1, keepdim=True))
            if options["normalized"]:
                rms.mul_(math.sqrt(m.size(-1)))
        m = m / rms.add_(EPS)
        return m.transpose(0, 1) if options["transpose"] else m
    return d.clone()                                          # NONE


def scion(param: torch.Tensor, grad: torch.Tensor, d: torch.Tensor, *, lr: float,
          momentum: float, constraint: bool, norm: int, options: Mapping[str, Any],
          scale: float, weight_decay: float, weight_decouple: bool) -> None:
    r"""One Scion step on one tensor, in place (Pethick et al., 2025, Algorithms 1 and 2).

    .. math::

        d_k &= (1-\alpha)\, d_{k-1} + \alpha\, g_k \\
        \theta_k &= \theta_{k-1} + \gamma\rho\,\operatorname{lmo}(d_k) \\
            &\quad\text{(uSCG)} \\
        \theta_k &= (1-\gamma)\,\theta_{k-1} + \gamma\rho\,\operatorname{lmo}(d_k) \\
            &\quad\text{(SCG, } \texttt{constraint=True})

    :math:`\alpha` is ``momentum`` (the new gradient's weight), :math:`\gamma` ``lr``,
    :math:`\rho` ``scale``. Weight decay, unconstrained only: :math:`\theta \leftarrow
    (1-\gamma\lambda)\theta` first, or :math:`g + \lambda\theta` (coupled).
    """
    if not constraint and weight_decay > 0.0:
        if weight_decouple:
            param.mul_(1.0 - weight_decay * lr)               # θ ← (1 - γλ) θ
        else:
            grad = grad.add(param, alpha=weight_decay)        # g + λθ
    d.lerp_(grad, momentum)                                   # d_k = (1-α) d + α g_k
    update = direction(d, norm, options).mul_(scale)          # -ρ lmo(d_k)
    if constraint:
        param.mul_(1.0 - lr)                                  # θ ← (1 - γ) θ
    param.add_(update, alpha=-lr)                             # θ + γρ lmo(d_k)


class Scion(Optimizer):
    r"""Scion (Pethick et al., 2025), pytorch_optimizer 4.1.0's ``SCION`` arguments and
    defaults.

    Args:
        params: tensors to optimise, or dicts defining parameter groups; give each kind of
            layer its group, with its ``norm_type`` and ``scale`` (the paper: spectral for
            hidden matrices, column norms for the embedding, sign for the head, a larger
            radius there).
        lr: :math:`\gamma` (default ``1e-3``).
        momentum: :math:`\alpha`, the weight of the new gradient, in (0, 1]
            (default ``0.1``, the usual momentum 0.9).
        constraint: the constrained form, SCG (default ``False``: uSCG).
        norm_type: an :class:`LMONorm` (default ``AUTO``).
        norm_kwargs: the norm's options (:data:`OPTIONS`; default none).
        scale: the radius :math:`\rho` (default ``1``).
        weight_decay: :math:`\lambda`, unconstrained only (default ``0``).
        weight_decouple: decay the weights (default) or add :math:`\lambda\theta` to the
            gradient.
        foreach: kept for the reference's signature and groups; optedu steps tensor by tensor,
            which is the reference's ``foreach=False`` path, bit for bit.
        maximize: ascend (default ``False``).

    State per parameter: ``d``. Group key ``step`` (a count, in the group).

    Differences from pytorch_optimizer 4.1.0: its default path (``foreach`` on CPU)
    multiplies the bfloat16 polar factors by :math:`\sqrt{d_\text{out}/d_\text{in}}` with
    ``torch._foreach_mul_``, which rounds that factor to bfloat16 first, so an entry of a
    spectral step can differ by one bfloat16 unit in the last place; optedu multiplies as its
    ``foreach=False`` path does (``tests/optim/test_scion.py`` measures the bound, and shows
    the rest of that path, the stacking of same-shape matrices included, bit-identical);
    ``p.grad`` is left alone (it negates it with ``maximize`` and adds the coupled
    decay to it); ``norm_type`` and ``norm_kwargs`` are checked when the optimizer is built.
    :meth:`init` re-draws the weights as the reference's ``init()`` does, bit for bit.
    """

    supports_complex = False
    # FSDP2 shards (._sharding): refused before any state moves
    refuses_shards = "its spectral, column and row oracles read whole matrices"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.1,
        constraint: bool = False,
        norm_type: int = LMONorm.AUTO,
        norm_kwargs: dict[str, Any] | None = None,
        scale: float = 1.0,
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_interval("momentum", momentum, 0.0, 1.0, open_low=True)
        check_greater("scale", scale)
        check_non_negative("weight_decay", weight_decay)
        self.foreach = foreach
        self.maximize = maximize
        defaults = dict(lr=lr, momentum=momentum, constraint=constraint, norm_type=norm_type,
                        norm_kwargs={} if norm_kwargs is None else norm_kwargs, scale=scale,
                        weight_decay=weight_decay, weight_decouple=weight_decouple,
                        foreach=foreach)
        super().__init__(params, defaults)
        for group in self.param_groups:
            norm_options(group)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"d": torch.zeros_like(param)}

    @torch.no_grad()
    def init(self) -> None:
        r"""Re-draw every parameter at a point of its norm's ball, times the group's
        ``scale`` :math:`\rho` (the paper's initialisation; :func:`init_like`)."""
        for group in self.param_groups:
            options = norm_options(group)
            for p in group["params"]:
                p.copy_(init_like(p, group["norm_type"], options)).mul_(group["scale"])

    def update_group(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        group["step"] = group.get("step", 0) + 1
        options = norm_options(group)
        for param, grad, state in zip(params, grads, states):
            scion(param, -grad if self.maximize else grad, state["d"], lr=group["lr"],
                  momentum=group["momentum"], constraint=group["constraint"],
                  norm=group["norm_type"], options=options, scale=group["scale"],
                  weight_decay=group["weight_decay"],
                  weight_decouple=group["weight_decouple"])


def init_like(p: torch.Tensor, norm: int, options: Mapping[str, Any]) -> torch.Tensor:
    r"""A random tensor shaped as ``p`` at unit size in the norm ``norm`` (a new tensor or
    ``p`` itself, re-drawn), in the reference's order of draws:

    * spectral: an orthogonal matrix (drawn in float64) times :math:`\sqrt{d_\text{out}/
      d_\text{in}}` (``normalize``; else :math:`\sqrt{d_\text{out}}`, at least 1 with
      ``max_scale``): its RMS→RMS norm is 1; a convolution kernel: each of its
      :math:`k` spatial taps orthogonal, all times :math:`\sqrt{d_\text{out}/d_\text{in}}/k`;
    * sign: :math:`\pm 1` entries (÷ :math:`d_\text{in}` with ``normalize``), or zeros
      (``zero_init``);
    * column: Gaussian columns scaled to RMS 1 (÷ :math:`d_\text{in}` with ``normalized``);
      row: Gaussian rows scaled to norm 1 (÷ :math:`\sqrt{d_\text{in}}` with
      ``normalized``); both on the transpose with ``transpose``;
    * bias: zeros; none: ``p`` unchanged; auto: bias for 0 or 1 dimensions, spectral for 2,
      the convolution's for 3 or 4, each with its default options (as in the step).
    """
    norm, options = resolved(norm, options, p.ndim)
    if norm == LMONorm.NONE:
        return p
    if norm == LMONorm.BIAS or (norm == LMONorm.SIGN and options["zero_init"]):
        return torch.zeros_like(p)
    if norm == LMONorm.SPECTRAL:
        x = p.double()
        torch.nn.init.orthogonal_(x)
        d_out, d_in = x.shape
        scale = math.sqrt(d_out / d_in) if options["normalize"] else math.sqrt(d_out)
        if options["max_scale"]:
            scale = max(1.0, scale)
        return x.mul_(scale).to(p.dtype)
    if norm == LMONorm.SPECTRALCONV:
        x = p.double().contiguous()
        d_out, d_in, *taps = x.shape
        k = math.prod(taps)
        kernels = x.view(d_out, d_in, k)
        for i in range(k):
            torch.nn.init.orthogonal_(kernels[:, :, i])
        return x.mul_(math.sqrt(d_out / d_in) / k).to(p.dtype)
    if norm == LMONorm.SIGN:
        x = 2 * torch.randint(0, 2, p.shape, dtype=p.dtype) - 1
        return x.div_(p.size(1)) if options["normalize"] else x
    x = p.transpose(0, 1) if options["transpose"] else p
    torch.nn.init.normal_(x)
    if norm == LMONorm.COL:                                   # each column to RMS 1
        x.div_(x.norm(dim=0, keepdim=True)).mul_(math.sqrt(x.size(0)))
        if options["normalized"]:
            x.div_(x.size(1))
    else:                                                     # each row to norm 1
        x.div_(x.norm(dim=-1, keepdim=True))
        if options["normalized"]:
            x.div_(math.sqrt(x.size(-1)))
    return p


def norm_options(group: Group) -> dict[str, Any]:
    """The group's norm options, its ``norm_kwargs`` over the norm's defaults; refuses an
    unknown norm or option."""
    norm, given = group["norm_type"], group["norm_kwargs"]
    if isinstance(norm, bool) or norm not in OPTIONS:
        raise invalid("norm_type", norm, f"an LMONorm, 0 to {len(OPTIONS) - 1}")
    unknown = set(given) - set(OPTIONS[norm])
    if unknown and norm not in (LMONorm.AUTO, LMONorm.BIAS, LMONorm.NONE):
        raise invalid("norm_kwargs", dict(given),
                      f"options of {LMONorm(norm).name}: {sorted(OPTIONS[norm]) or 'none'}")
    return {**OPTIONS[norm], **{k: v for k, v in given.items() if k in OPTIONS[norm]}}
