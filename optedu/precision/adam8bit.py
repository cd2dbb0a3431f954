r"""8-bit Adam and AdamW: the two moments stored block-wise quantised.

Each step dequantises :math:`m` and :math:`v`, takes the ordinary Adam step
(:func:`optedu.optim.adam.adam`, unchanged), and quantises the new moments again
(Dettmers, Lewis, Shleifer & Zettlemoyer, *8-bit Optimizers via Block-wise
Quantization*, ICLR 2022):

.. math::

    m_{t-1} = Q_1^{-1}(\bar m_{t-1}),\quad
    v_{t-1} = Q_2^{-1}(\bar v_{t-1}),\quad
    (\theta_t, m_t, v_t) = \mathrm{Adam}(\theta_{t-1}, g_t, m_{t-1}, v_{t-1}),\quad
    \bar m_t = Q_1(m_t),\quad \bar v_t = Q_2(v_t),

with :math:`Q` the block-wise quantiser of :mod:`optedu.precision.quantize`: a signed
code for :math:`m` (it changes sign), an unsigned one for :math:`v \ge 0`.
Between steps a quantised parameter's state holds one byte per element for
each moment plus one absmax per block: about 2 bytes per parameter instead
of 8 (float32 Adam). During the step, the parameter being updated also has
its two moments in full precision (this implementation's peak, not its
resting state).
"""

from __future__ import annotations

import functools
from itertools import chain
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from optedu.optim._sharding import refuse_sharded
from optedu.optim._validation import check_adam_arguments, check_integer, invalid
from optedu.optim.adam import adam
from optedu.optim.optimizer import Group, Optimizer, State, new_step_counter, step_and_buffers
from .quantize import (dequantize_blockwise, dynamic_code, linear_code, no_zero_code,
                       quantize_blockwise)

CODES: dict[str, Callable[[bool], torch.Tensor]] = {
    "dynamic": dynamic_code, "no_zero": no_zero_code, "linear": linear_code}
MOMENTS = ("exp_avg", "exp_avg_sq")     # signed, unsigned


def check_codes(code: str | Sequence[str]) -> tuple[str, str]:
    """``code`` as a pair of code names, one for each moment: a name of
    :data:`CODES`, or a pair of them for (``exp_avg``, ``exp_avg_sq``)."""
    pair: tuple[Any, ...] = ()
    if isinstance(code, str):
        pair = (code, code)
    elif isinstance(code, (tuple, list)):
        pair = tuple(code)
    if len(pair) != 2 or any(not isinstance(name, str) or name not in CODES
                             for name in pair):
        raise invalid("code", code, f"one of {sorted(CODES)} or a pair of them")
    return pair


@functools.lru_cache(maxsize=None)
def _code(name: str, signed: bool) -> torch.Tensor:
    return CODES[name](signed)


def moment_codes(group: Group) -> tuple[torch.Tensor, torch.Tensor]:
    """The codes of a group's two moments: signed for ``exp_avg``,
    unsigned for ``exp_avg_sq``."""
    first, second = group["code"]
    return _code(first, True), _code(second, False)


def is_quantized(state: State) -> bool:
    """Whether a parameter's state is stored 8-bit (a parameter with fewer
    than ``min_8bit_size`` elements keeps torch's float state)."""
    return "exp_avg_indices" in state


class Adam8bit(Optimizer):
    r"""Adam with 8-bit block-wise quantised moments; the arguments of
    ``torch.optim.Adam`` (torch 2.13) plus three.

    Args:
        params, lr, betas, eps, weight_decay, maximize,
        decoupled_weight_decay: as :class:`optedu.Adam`.
        amsgrad: must be ``False`` (there is no 8-bit ``max_exp_avg_sq``).
        block_size: elements per quantisation block, each with its own
            absmax (default ``2048``, the paper's; bitsandbytes 0.50 uses
            256).
        min_8bit_size: parameters with fewer elements keep float state
            ``exp_avg``/``exp_avg_sq`` as torch's Adam (default ``4096``, as
            bitsandbytes).
        code: ``"dynamic"`` (:func:`optedu.precision.quantize.dynamic_code`,
            default), ``"no_zero"`` (:func:`optedu.precision.quantize.no_zero_code`:
            no 0 for :math:`v`) or ``"linear"``
            (:func:`optedu.precision.quantize.linear_code`), or a pair of them for
            (``exp_avg``, ``exp_avg_sq``).

    State of a quantised parameter: ``step``; ``exp_avg_indices`` and
    ``exp_avg_sq_indices`` (uint8, shaped like the parameter);
    ``exp_avg_absmax`` and ``exp_avg_sq_absmax`` (one per block, in the
    parameter's dtype promoted to at least float32).

    Differences from bitsandbytes' ``Adam8bit`` (0.50.2, CPU): it uses
    blocks of 256; it updates :math:`m` as ``mul_(β1).add_(g, 1-β1)``,
    optedu as torch (a lerp); its rounding to the code is a fast
    approximate search that, near a midpoint between two code values,
    sometimes picks the farther one, and sends every :math:`v` below about
    :math:`2 \cdot 10^{-5} a_b`, 0 included, to :math:`1.5625 \cdot 10^{-5}
    a_b` (measured; optedu rounds exactly; use
    ``code="no_zero"`` to keep :math:`v` off 0); its Adam always decays
    the weights decoupled.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        block_size: int = 2048,
        min_8bit_size: int = 4096,
        code: str | Sequence[str] = "dynamic",
    ) -> None:
        betas = check_adam_arguments(lr, eps, betas, weight_decay)
        if amsgrad:
            raise invalid("amsgrad", amsgrad,
                          "False: 8-bit Adam keeps no max_exp_avg_sq")
        check_integer("block_size", block_size, 1)
        check_integer("min_8bit_size", min_8bit_size, 0)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            amsgrad=False, maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
            block_size=block_size, min_8bit_size=min_8bit_size,
            code=check_codes(code))
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        if param.numel() < group["min_8bit_size"]:
            return step_and_buffers(param, *MOMENTS)
        refuse_sharded(type(self).__name__, param, "its quantisation blocks of "
                       "block_size elements, each with its own absmax, are cut from the "
                       "whole flattened tensor; a piece's blocks are other blocks")
        state: State = {"step": new_step_counter()}
        zeros = torch.zeros_like(param)
        for name, code in zip(MOMENTS, moment_codes(group)):
            store_moment(state, name, zeros, code, group["block_size"])
        return state

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        quantized = is_quantized(state)
        codes = moment_codes(group)
        if quantized:       # m_{t-1} = Q⁻¹(m̄_{t-1}), v_{t-1} = Q⁻¹(v̄_{t-1})
            m, v = (load_moment(state, name, code, group["block_size"])
                    for name, code in zip(MOMENTS, codes))
        else:
            m, v = state["exp_avg"], state["exp_avg_sq"]
        adam(param, grad, m, v, None, int(state["step"].item()),
             lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
             weight_decay=group["weight_decay"],
             decoupled_weight_decay=group["decoupled_weight_decay"],
             maximize=group["maximize"])
        if quantized:       # m̄_t = Q(m_t), v̄_t = Q(v_t)
            for name, moment, code in zip(MOMENTS, (m, v), codes):
                store_moment(state, name, moment, code, group["block_size"])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict``, then the quantised entries again as
        saved: torch casts every state tensor of a floating parameter to the
        parameter's dtype (uint8 indices would come back as floats)."""
        super().load_state_dict(state_dict)
        ids = chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = chain.from_iterable(g["params"] for g in self.param_groups)
        for param_id, param in zip(ids, params):
            for key, value in state_dict["state"].get(param_id, {}).items():
                if key.endswith(("_indices", "_absmax")):
                    self.state[param][key] = value.to(device=param.device, copy=True)


def load_moment(state: State, name: str, code: torch.Tensor,
                block_size: int) -> torch.Tensor:
    """The moment ``name`` of a quantised state, dequantised."""
    return dequantize_blockwise(state[f"{name}_indices"],
                                state[f"{name}_absmax"], code, block_size)


def store_moment(state: State, name: str, moment: torch.Tensor,
                 code: torch.Tensor, block_size: int) -> None:
    """Quantise ``moment`` into ``state`` as ``<name>_indices`` and
    ``<name>_absmax``."""
    state[f"{name}_indices"], state[f"{name}_absmax"] = quantize_blockwise(
        moment, code, block_size)


class AdamW8bit(Adam8bit):
    r"""AdamW with 8-bit moments: :class:`Adam8bit` with
    ``decoupled_weight_decay=True`` and ``weight_decay=1e-2``, the arguments
    of ``torch.optim.AdamW`` plus ``block_size``, ``min_8bit_size`` and
    ``code``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        block_size: int = 2048,
        min_8bit_size: int = 4096,
        code: str | Sequence[str] = "dynamic",
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         maximize=maximize, decoupled_weight_decay=True,
                         block_size=block_size, min_8bit_size=min_8bit_size,
                         code=code)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            # a checkpoint from Adam8bit stays AdamW8bit (as optedu.AdamW)
            group["decoupled_weight_decay"] = True


# --- measuring 8-bit Adam: memory against drift ------------------------------

def digits_mlp(seed: int = 0, hidden: int = 64) -> tuple[torch.nn.Module,
                                                          torch.Tensor, torch.Tensor]:
    """A float32 MLP 64-hidden-hidden-10 and scikit-learn's digits (1797
    images of 8x8 pixels scaled to [0, 1], 10 classes), seeded."""
    from sklearn.datasets import load_digits  # only the measurement needs it

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32) / 16
    y = torch.tensor(labels)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.Tanh(),
        torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
        torch.nn.Linear(hidden, 10)).to(torch.float32)
    return model, x, y


def train_losses(make_optimizer: Callable[[Iterable[torch.nn.Parameter]],
                                          torch.optim.Optimizer],
                 steps: int = 300, batch_size: int = 256, seed: int = 0
                 ) -> tuple[list[float], torch.optim.Optimizer]:
    """Train :func:`digits_mlp` on mini-batches (cross-entropy; one seeded
    shuffle of the 1797 images, cycled): the loss of each step's batch, and
    the optimizer after the last step."""
    model, x, y = digits_mlp(seed)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    optimizer = make_optimizer(model.parameters())
    losses = []
    for step in range(steps):
        start = step * batch_size % len(y)
        batch = order[start:start + batch_size]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, optimizer


def memory_and_drift(settings: Iterable[tuple[str | Sequence[str], int]] = (
                         ("dynamic", 256), ("dynamic", 2048), ("no_zero", 2048),
                         ("linear", 2048), (("dynamic", "linear"), 2048),
                         (("linear", "dynamic"), 2048)),
                     steps: int = 300, lr: float = 3e-3, min_8bit_size: int = 4096,
                     seed: int = 0) -> list[dict[str, Any]]:
    """Train :func:`digits_mlp` with float32 Adam and with :class:`Adam8bit`
    for each ``(code, block_size)`` setting, same seed and data; one row per
    run: state bytes per parameter (measured with
    :func:`optedu.precision.memory.state_bytes`), final loss, the loss gap to float32
    Adam (largest over the steps, and at the end), and the losses."""
    from .memory import state_bytes

    def row(name: Any, block_size: int | None, losses: list[float],
            optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        n = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
        gaps = [abs(a - b) for a, b in zip(losses, reference)]
        return dict(code=name, block_size=block_size,
                    bytes_per_param=sum(state_bytes(optimizer).values()) / n,
                    final_loss=losses[-1], max_gap=max(gaps), final_gap=gaps[-1],
                    losses=losses)

    reference, fp32 = train_losses(lambda p: torch.optim.Adam(p, lr=lr), steps, seed=seed)
    rows = [row("float32", None, reference, fp32)]
    for code, block_size in settings:
        losses, optimizer = train_losses(
            lambda p: Adam8bit(p, lr=lr, block_size=block_size,
                               min_8bit_size=min_8bit_size, code=code), steps, seed=seed)
        rows.append(row(check_codes(code), block_size, losses, optimizer))
    return rows
