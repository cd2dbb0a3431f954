r"""Adam-mini: Adam with one second moment per *block* of parameters instead of
one per parameter (Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain
More", ICLR 2025), with the arguments, partition rules, groups and state of
the authors' package ``adam-mini`` 1.1.1.

For a block :math:`b` (a set of entries chosen from the model's structure)
with gradient entries :math:`g_{t,i}`, :math:`i \in b`:

.. math::

    v_{t,b} &= \beta_2 v_{t-1,b} + (1-\beta_2)\,\operatorname{mean}_{i\in b} g_{t,i}^2 \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
    \theta_t &= (1-\eta\lambda)\,\theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
        \frac{m_t}{\sqrt{v_{t,b}/(1-\beta_2^t)} + \epsilon}

Adam is the case of blocks of one entry. The partition (Sec. 2.3, the
"Hessian block" principle) follows the parameter's *name* (lower-cased,
substring match, first rule that applies):

1. a name containing ``bias``: Adam (one :math:`v` per entry);
2. queries and keys (``q_proj``, ``k_proj``, ``wq``, ``wk``, ``query``,
   ``key``): one :math:`v` per head, a head being ``dim * dim // n_heads``
   consecutive entries;
3. embeddings and output (``embed``, ``embd``, ``wte``; ``lm_head``,
   ``output``, ``final_layer``), values (``v_proj``, ``wv``, ``value``),
   attention projections (``o_proj``, ``wo``, ``attn.proj``) and MLPs
   (``feed_forward``, ``linear``, ``mlp``): one :math:`v` per row (per
   output neuron; per token for embeddings);
4. anything else (norms, by default): one :math:`v` for the whole tensor.

Weight decay is 0 for names containing ``norm``, ``ln`` or ``bias``.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterable
from typing import Any, cast

import torch
from torch import nn

from ._sharding import refuse_pieces
from .optimizer import evaluate
from ._validation import check_betas, check_integer, check_non_negative, invalid


def block_kind(name: str, rules: "AdamMini") -> str:
    """``"adam"``, ``"head"``, ``"row"`` or ``"tensor"``: how the parameter
    called ``name`` (lower-cased) is partitioned, by ``rules``' name sets."""
    def has(names: set[str]) -> bool:
        return any(key in name for key in names)
    if has(rules.adam_block_names):
        return "adam"
    if has(rules.wqk_names):
        return "head"
    if (has(rules.embd_names) or has(rules.output_names) or has(rules.wv_names)
            or has(rules.mlp_names) or has(rules.attn_proj_names)):
        return "row"
    return "tensor"


def state_shapes(shape: tuple[int, ...], name: str, head_numel: int = 2048 * 2048 // 32
                 ) -> dict[str, tuple[int, ...]]:
    """The closed form of the state tensors of the parameter called ``name`` (default name
    rules; ``head_numel`` is ``dim * dim // n_heads``, the reference's default): ``m`` the
    parameter's size (a query/key's as ``(heads, head_numel)``) and ``v`` (Adam blocks) or
    ``vmean``: one number per head, per row, or for the whole tensor."""
    kind = block_kind(name.lower(), AdamMini.default_rules())
    numel = math.prod(shape)
    if kind == "adam":
        return {"m": shape, "v": shape}
    if kind == "head":
        return {"m": (numel // head_numel, head_numel), "vmean": (numel // head_numel, 1)}
    if kind == "row":
        return {"m": shape, "vmean": (shape[0], 1)}
    return {"m": shape, "vmean": ()}


def correct(v: torch.Tensor, step: int, beta1: float, beta2: float, eps: float
            ) -> tuple[torch.Tensor, float]:
    r""":math:`h = \sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon` and :math:`1-\beta_1^t`."""
    h = (v.sqrt() / math.sqrt(1 - beta2 ** step)).add_(eps)
    return h, 1 - beta1 ** step


class AdamMini(torch.optim.Optimizer):
    r"""Adam-mini (Zhang et al., ICLR 2025), as ``adam_mini.Adam_mini`` 1.1.1.

    Args:
        named_parameters: ``model.named_parameters()`` (names decide the
            blocks; see the module docstring). Each parameter becomes its own
            group with keys ``name``, ``params``, ``weight_decay``.
        lr: :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1,\beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).
        weight_decay: :math:`\lambda`, decoupled (default 0; 0 for norms and
            biases).
        dim: the model width (default 2048); ``n_heads`` (default 32): a
            query/key head is ``dim * dim // n_heads`` entries;
            ``n_kv_heads``: grouped-query attention's key/value heads
            (default ``n_heads``; must divide it).

    The name sets are attributes (``embd_names``, ``output_names``,
    ``wqk_names``, ``wv_names``, ``attn_proj_names``, ``mlp_names``,
    ``adam_block_names``): add a keyword to one before the first step, as
    with the reference. Groups carry ``beta1``, ``beta2`` (not ``betas``).

    State per parameter: ``m`` (the parameter's size; a ``(heads,
    head_numel)`` view for queries and keys), ``step`` (a Python int) and
    ``v`` (Adam blocks) or ``vmean`` (``(heads, 1)``, ``(rows, 1)`` or a
    scalar), plus ``head_per_gpu``, ``neuron_per_gpu`` or ``reduced`` and
    ``block_numel`` as the reference stores them.

    Supported partitions: the reference's single-process rules above (its
    ``model_sharding``, DTensor and multi-GPU all-reduce paths are left out:
    ``reduced`` is always False, as the reference sets it without CUDA).

    Differences from ``adam-mini`` 1.1.1 (bit-identical, both dtypes): the
    framework flags ``model_sharding`` and ``verbose`` are left out (no
    printing); ``lr`` is a float; bad arguments raise ``ValueError`` in
    optedu's wording (the reference asserts ``n_heads % n_kv_heads == 0``).
    Quirks kept: a whole-tensor block creates its state, and is counted,
    even at a step where it has no gradient (it then does not move); the
    weight decay is skipped for any name containing ``ln`` (so also e.g.
    ``kiln``).
    """

    # FSDP2 shards and ZeRO pieces (._sharding): refused, before any state moves
    element_wise = False
    couples_tensors = False
    refuses_shards = ("its second moment is a mean over blocks (heads, rows, tensors) "
                      "that a cut divides")
    # the keyword sets that decide the blocks, set by ``_name_rules``
    embd_names: set[str]
    output_names: set[str]
    wqk_names: set[str]
    wv_names: set[str]
    attn_proj_names: set[str]
    mlp_names: set[str]
    adam_block_names: set[str]

    def __init__(
        self,
        named_parameters: Iterable[tuple[str, nn.Parameter]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        dim: int = 2048,
        n_heads: int = 32,
        n_kv_heads: int | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        beta1, beta2 = check_betas(betas)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        check_integer("dim", dim, 1)
        check_integer("n_heads", n_heads, 1)
        if n_kv_heads is not None:
            check_integer("n_kv_heads", n_kv_heads, 1)
            if n_heads % n_kv_heads:
                raise invalid("n_kv_heads", n_kv_heads, f"a divisor of n_heads={n_heads}")
        self.dim, self.n_heads = dim, n_heads
        self.n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        self.head_numel = dim * dim // n_heads
        self._name_rules(self)
        groups = []
        for name, param in named_parameters:
            name = name.lower()
            if not param.requires_grad:
                continue
            no_decay = "norm" in name or "ln" in name or "bias" in name
            groups.append({"name": name, "params": param,
                           "weight_decay": 0.0 if no_decay else weight_decay})
        super().__init__(groups, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps))

    @staticmethod
    def _name_rules(rules: Any) -> Any:
        """The reference's keyword sets, set on ``rules``."""
        rules.embd_names = {"embed", "embd", "wte"}
        rules.output_names = {"lm_head", "output", "final_layer"}
        rules.wqk_names = {"k_proj", "q_proj", "wq", "wk", "query", "key"}
        rules.wv_names = {"v_proj", "wv", "value"}
        rules.attn_proj_names = {"o_proj", "wo", "attn.proj"}
        rules.mlp_names = {"feed_forward", "linear", "mlp"}
        rules.adam_block_names = {"bias"}
        return rules

    @classmethod
    def default_rules(cls) -> Any:
        """An object holding the reference's keyword sets (for :func:`block_kind`)."""
        return cls._name_rules(types.SimpleNamespace())

    @torch.no_grad()
    def step(  # type: ignore[override]  # torch's stub: None without a closure
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """One step; ``closure`` re-runs the model and returns the loss."""
        loss = evaluate(closure)
        refuse_pieces(self)
        for group in self.param_groups:
            kind = block_kind(group["name"], self)
            for param in group["params"]:
                state = self.state[param]
                if kind == "tensor":
                    self._tensor_block(param, state, group)
                elif param.grad is not None:
                    self._split_block(param, state, group, kind)
        return loss

    def _split_block(self, param: torch.Tensor, state: dict[str, Any], group: dict[str, Any],
                     kind: str) -> None:
        """Adam (one v per entry), or one v per head or per row."""
        beta1, beta2, lr = group["beta1"], group["beta2"], group["lr"]
        grad = cast(torch.Tensor, param.grad)             # step calls it with a gradient
        if kind == "adam":
            if not state:
                state["m"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] = 0
                state["v"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["v"].mul_(beta2).addcmul_(grad, grad.conj(), value=1 - beta2)
            state["step"] += 1
            if group["weight_decay"] > 0.0:
                param.mul_(1 - lr * group["weight_decay"])
            state["m"].lerp_(grad, 1 - beta1)
            h, c1 = correct(state["v"], state["step"], beta1, beta2, group["eps"])
            param.addcdiv_(state["m"], h, value=-(lr / c1))
            return
        count = "head_per_gpu" if kind == "head" else "neuron_per_gpu"
        if not state:
            m = torch.zeros_like(param if kind == "head" else grad,
                                 memory_format=torch.preserve_format)
            state["m"] = m.view(-1, self.head_numel) if kind == "head" else m
            if kind == "head":
                state[count] = state["m"].size(0)
            state["step"] = 0
            if kind == "row":
                state[count] = state["m"].size(0)
            state["vmean"] = torch.zeros_like(state["m"][0:state[count], 0:1],
                                              memory_format=torch.preserve_format)
        blocks = state[count]
        if kind == "head":
            grad = grad.view(blocks, self.head_numel)
        block_mean = torch.mean(grad * grad, dim=1, keepdim=True)   # mean g² per block
        state["vmean"].mul_(beta2).add_(block_mean, alpha=1 - beta2)
        state["step"] += 1
        if group["weight_decay"] > 0.0:
            param.mul_(1 - lr * group["weight_decay"])
        state["m"].lerp_(grad, 1 - beta1)
        h, c1 = correct(state["vmean"], state["step"], beta1, beta2, group["eps"])
        update = (state["m"] * ((1 / c1) / h).view(blocks, 1)).view(param.size())
        update.mul_(lr)
        param.add_(-update)

    @staticmethod
    def _tensor_block(param: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """One v for the whole tensor (norms, and every name no rule matches)."""
        beta1, beta2, lr = group["beta1"], group["beta2"], group["lr"]
        if not state:
            state["m"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] = 0
            state["reduced"] = False
            state["vmean"] = torch.zeros_like(torch.sum(param * param),
                                              memory_format=torch.preserve_format)
            state["block_numel"] = float(torch.tensor(param.numel()).to(torch.float32))
        if param.grad is None:
            return
        grad = param.grad
        block_mean = torch.sum(grad * grad) / state["block_numel"]  # mean g² over the tensor
        if group["weight_decay"] > 0.0:
            param.mul_(1 - lr * group["weight_decay"])
        state["step"] += 1
        state["m"].lerp_(grad, 1 - beta1)
        state["vmean"].mul_(beta2).add_(block_mean, alpha=1 - beta2)
        h, c1 = correct(state["vmean"], state["step"], beta1, beta2, group["eps"])
        update = state["m"] * ((1 / c1) / h)
        update.mul_(lr)
        param.add_(-update)
