r"""Per-layer statistics to log at every step, the ones that warn before a loss
spike.

* The update-to-weight ratio of each parameter tensor,
  :math:`\rho = \|\theta_t - \theta_{t-1}\|_2 / \|\theta_{t-1}\|_2`
  (:class:`UpdateRatios`): a ratio near 1 rewrites the tensor in one step;
  a jump by an order of magnitude over its recent values is worth a look.
* Adam's per-coordinate denominator :math:`\sqrt{\hat v_t}`,
  :math:`\hat v_t = v_t / (1 - \beta_2^t)`, its mean and maximum per tensor
  (:func:`adam_sqrt_v`): a tensor whose :math:`\sqrt{\hat v}` has decayed
  far below its gradient's usual size will take a step of about
  :math:`(1-\beta_1)/\sqrt{1-\beta_2}` learning rates per coordinate when
  the gradient returns.
* The largest attention logit :math:`\max_{i,j} |q_i\cdot k_j| / \sqrt{d_h}`
  per attention module and head (:class:`AttentionLogits`): its steady growth
  precedes attention entropy collapse (Dehghani et al., 2023; Wortsman et
  al., 2024) and is what MuonClip's QK-clip bounds (Kimi Team, 2025).

All three work on any ``torch.nn.Module`` and any optimizer that keeps
torch's Adam state keys (``torch.optim.Adam``/``AdamW`` and optedu's).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from optedu.optim._validation import check_integer


def _named(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


class UpdateRatios:
    r"""The update of each parameter tensor over one optimizer step:
    :math:`\|\Delta\theta\|_2` and :math:`\|\Delta\theta\|_2/\|\theta\|_2`.

    Call :meth:`before` just before ``optimizer.step()`` (it copies the
    parameters) and :meth:`after` just after. A tensor of zero norm gets a
    ratio of ``inf`` if it moved, ``0`` if not.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"Invalid model: {type(model).__name__} (expected an nn.Module)")
        self.params = _named(model)
        self._before: list[torch.Tensor] | None = None

    @torch.no_grad()
    def before(self) -> None:
        """Copy the parameters as they are before the step."""
        self._before = [p.detach().clone() for _, p in self.params]

    @torch.no_grad()
    def norms(self) -> dict[str, float]:
        r""":math:`\|\theta_t - \theta_{t-1}\|_2` per named parameter."""
        if self._before is None:
            raise RuntimeError("UpdateRatios.after() without before()")
        return {n: float((p - b).norm()) for (n, p), b in zip(self.params, self._before)}

    @torch.no_grad()
    def after(self) -> dict[str, float]:
        r""":math:`\|\Delta\theta\|_2/\|\theta_{t-1}\|_2` per named parameter."""
        out = {}
        norms = self.norms()                    # refuses a missing before()
        assert self._before is not None
        for (name, delta), b in zip(norms.items(), self._before):
            size = float(b.norm())
            out[name] = delta / size if size > 0 else (math.inf if delta > 0 else 0.0)
        return out


@dataclass(frozen=True)
class SqrtV:
    r"""Mean and maximum of :math:`\sqrt{\hat v}` over one tensor's
    coordinates, and the optimizer's step count."""

    mean: float
    max: float
    step: int


@torch.no_grad()
def adam_sqrt_v(optimizer: torch.optim.Optimizer,
                names: dict[torch.Tensor, str] | None = None) -> dict[str, SqrtV]:
    r"""Adam's bias-corrected denominator :math:`\sqrt{\hat v_t}`,
    :math:`\hat v_t = v_t/(1-\beta_2^t)`, per parameter tensor.

    Reads ``exp_avg_sq`` (``max_exp_avg_sq`` with ``amsgrad``) and ``step``
    from the optimizer's state and ``betas`` from its group, as
    ``torch.optim.Adam``/``AdamW`` and :class:`optedu.Adam` keep them.
    Tensors not stepped yet are left out. ``names`` maps a parameter to its
    name (e.g. ``{p: n for n, p in model.named_parameters()}``); without it the
    keys are ``"group.index"``.
    """
    out = {}
    for g, group in enumerate(optimizer.param_groups):
        if "betas" not in group:
            raise ValueError(f"Invalid optimizer: {type(optimizer).__name__} "
                             "(expected Adam's betas and exp_avg_sq state)")
        beta2 = float(group["betas"][1])
        for i, p in enumerate(group["params"]):
            state = optimizer.state.get(p, {})
            if not state:
                continue
            key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
            if key not in state:
                raise ValueError(f"Invalid optimizer: {type(optimizer).__name__} "
                                 f"(its state has no {key})")
            step = int(state["step"])
            v_hat = state[key] / (1 - beta2 ** step)                 # v̂ = v / (1-β₂ᵗ)
            root = v_hat.sqrt()
            label = names.get(p, f"{g}.{i}") if names else f"{g}.{i}"
            out[label] = SqrtV(float(root.mean()), float(root.max()), step)
    return out


class AttentionLogits:
    r"""Record the largest pre-softmax attention logit
    :math:`\max_{b,i,j} |q_i\cdot k_j|/\sqrt{d_h}` per module and head, by
    forward hooks.

    Supported modules (others raise ``TypeError``):

    * ``torch.nn.MultiheadAttention`` used as self- or cross-attention (its
      packed ``in_proj_weight``; not with separate ``kdim``/``vdim``);
    * packed-QKV modules: an ``nn.Linear`` attribute ``qkv`` whose output is
      :math:`[q\,|\,k\,|\,v]` with heads contiguous in each, an integer
      ``heads``, and optional ``q_norm``/``k_norm`` modules applied to each
      head's :math:`q` and :math:`k` (QK-normalisation) — as
      :class:`optedu.choosing.workloads.Block` and the chapter's models are.

    The logit is measured *before* any soft cap and over every pair
    :math:`(i, j)`, or only :math:`j \le i` with ``causal=True``. After each
    forward, :attr:`last` maps a module's name to a tensor of per-head maxima;
    :meth:`maxima` gives the largest over heads.
    """

    def __init__(self, model: nn.Module, modules: Iterable[str] | None = None,
                 causal: bool = False) -> None:
        named = dict(model.named_modules())
        if modules is None:
            modules = [n for n, m in named.items() if _supported(m)]
            if not modules:
                raise TypeError(f"{type(model).__name__} has no supported attention "
                                "module (nn.MultiheadAttention or packed qkv + heads)")
        self.causal = causal
        self.last: dict[str, torch.Tensor] = {}
        self._handles = []
        for name in modules:
            if name not in named:
                raise ValueError(f"Invalid modules: {name!r} is not a submodule")
            module = named[name]
            if isinstance(module, nn.MultiheadAttention) and _supported(module):
                hook = self._mha_hook(name)
                self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
            elif _supported(module):
                self._handles.append(module.qkv.register_forward_hook(
                    self._qkv_hook(name, module)))
            else:
                raise TypeError(f"Unsupported attention module {name!r}: "
                                f"{type(module).__name__} (expected nn.MultiheadAttention"
                                " or a module with a packed qkv nn.Linear and heads)")

    def _store(self, name: str, q: torch.Tensor, k: torch.Tensor) -> None:
        """``q``, ``k``: (batch, heads, tokens, head dim)."""
        s = (q @ k.transpose(-1, -2)).abs() / math.sqrt(q.shape[-1])
        if self.causal:
            t_q, t_k = s.shape[-2:]
            s = s.masked_fill(torch.ones(t_q, t_k, dtype=torch.bool).triu(1), 0.0)
        self.last[name] = s.amax(dim=(0, 2, 3)).detach()

    def _qkv_hook(self, name: str, module: nn.Module):
        def hook(_linear, _inputs, out):
            with torch.no_grad():
                *lead, width = out.shape
                d = width // 3
                h = module.heads
                x = out.reshape(-1, out.shape[-2], 3, h, d // h).permute(2, 0, 3, 1, 4)
                q, k = x[0], x[1]
                if getattr(module, "q_norm", None) is not None:
                    q, k = module.q_norm(q), module.k_norm(k)
                self._store(name, q, k)
        return hook

    def _mha_hook(self, name: str):
        def hook(module, args, kwargs):
            with torch.no_grad():
                query = args[0] if args else kwargs["query"]
                key = args[1] if len(args) > 1 else kwargs["key"]
                if not module.batch_first:
                    query, key = query.transpose(0, 1), key.transpose(0, 1)
                if query.dim() == 2:
                    query, key = query[None], key[None]
                w, b = module.in_proj_weight, module.in_proj_bias
                e, h = module.embed_dim, module.num_heads
                w_q, w_k = w[:e], w[e:2 * e]
                b_q, b_k = (b[:e], b[e:2 * e]) if b is not None else (None, None)
                q = nn.functional.linear(query, w_q, b_q)
                k = nn.functional.linear(key, w_k, b_k)
                n, t_q, t_k = q.shape[0], q.shape[1], k.shape[1]
                q = q.view(n, t_q, h, e // h).transpose(1, 2)
                k = k.view(n, t_k, h, e // h).transpose(1, 2)
                self._store(name, q, k)
        return hook

    def maxima(self) -> dict[str, float]:
        """The largest logit over heads, per module, of the last forward."""
        return {n: float(v.max()) for n, v in self.last.items()}

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles.clear()


def _supported(module: nn.Module) -> bool:
    if isinstance(module, nn.MultiheadAttention):
        return module._qkv_same_embed_dim
    return (isinstance(getattr(module, "qkv", None), nn.Linear)
            and isinstance(getattr(module, "heads", None), int))


def summarise(values: dict[str, float], top: int = 3) -> list[tuple[str, float]]:
    """The ``top`` largest entries of a per-layer dict, largest first (what to
    print in a log line)."""
    check_integer("top", top, 1)
    return sorted(values.items(), key=lambda kv: -kv[1])[:top]
