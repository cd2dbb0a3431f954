r"""Dynamic loss scaling for float16 training, written from the rules of
``torch.amp.GradScaler`` (torch 2.13, ``torch/amp/grad_scaler.py`` and the
CPU kernels ``_amp_foreach_non_finite_check_and_unscale_`` and
``_amp_update_scale_``).

float16 has a narrow range: numbers below about :math:`6\times 10^{-8}`
flush to zero and numbers above 65504 overflow to ``inf``. Small gradients
survive the backward pass if the loss is first multiplied by a scale
:math:`S`; the gradients are divided by :math:`S` again before the step.
The scale is chosen on the fly:

* **scale**: backpropagate :math:`S \cdot L` instead of :math:`L`;
* **unscale**: multiply every gradient by :math:`1/S` (computed in float64,
  stored in float32) and note whether any gradient holds ``inf`` or NaN;
* **skip**: if one does, do not step (the gradients are garbage);
* **update**: after a skipped step :math:`S \leftarrow \beta_\text{back} S`
  and the count of clean steps restarts at 0; after ``growth_interval``
  clean steps in a row :math:`S \leftarrow \gamma S` (kept if finite) and
  the count restarts at 0.

:class:`LossScaler` has GradScaler's arguments, defaults, methods
(``scale``, ``unscale_``, ``step``, ``update``, ``get_scale``) and
``state_dict`` keys, so the two can be swapped and checkpoints moved.
Differences from ``torch.amp.GradScaler``: bad arguments raise
``ValueError`` (torch raises ``AssertionError``); no ``enabled`` switch,
no device handling beyond the gradients' own, no closure (as torch).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from optedu.optim._validation import check_integer, invalid


def unscale_grads_(grads: Iterable[torch.Tensor],
                   inv_scale: torch.Tensor) -> bool:
    r"""Multiply each gradient by ``inv_scale`` in place; return whether any
    held ``inf`` or NaN (checked before the multiplication).

    :math:`g \leftarrow g \cdot S^{-1}` for every gradient, skipped step or
    not, as torch's ``_amp_foreach_non_finite_check_and_unscale_``.
    """
    found_inf = False
    for g in grads:
        found_inf |= not bool(torch.isfinite(g).all())
        g.mul_(inv_scale)
    return found_inf


def update_scale_(scale: torch.Tensor, growth_tracker: torch.Tensor,
                  found_inf: bool, growth_factor: float,
                  backoff_factor: float, growth_interval: int) -> None:
    r"""One update of the scale :math:`S` (float32) and the count :math:`n`
    of clean steps in a row, in place (torch's ``_amp_update_scale_``):

    .. math::
        \text{overflow:}\quad & S \leftarrow \beta_\text{back} S,\;
            n \leftarrow 0; \\
        \text{else:}\quad & n \leftarrow n + 1, \text{ and if } n = N: \\
        & S \leftarrow \gamma S \text{ (if finite)},\; n \leftarrow 0.

    Products are taken in float64 and rounded to float32.
    """
    if found_inf:
        scale.fill_(scale.item() * backoff_factor)  # S ← β S, to float32
        growth_tracker.fill_(0)
        return
    successful = int(growth_tracker.item()) + 1
    if successful == growth_interval:
        grown = torch.tensor(scale.item() * growth_factor, dtype=torch.float32)
        if math.isfinite(grown.item()):                 # never grow to inf
            scale.copy_(grown)                          # S ← γ S
        growth_tracker.fill_(0)
    else:
        growth_tracker.fill_(successful)


class LossScaler:
    """Dynamic loss scaling with ``torch.amp.GradScaler``'s semantics.

    Usage, as GradScaler::

        scaler.scale(loss).backward()
        scaler.step(optimizer)   # unscale, skip if inf/NaN, else step
        scaler.update()          # back off or grow the scale

    Args:
        init_scale: first scale (default ``2.0**16``).
        growth_factor: multiplies the scale after ``growth_interval`` clean
            steps in a row (default ``2.0``, must be > 1).
        backoff_factor: multiplies the scale after a skipped step (default
            ``0.5``, in (0, 1)).
        growth_interval: clean steps before a growth (default ``2000``).
    """

    def __init__(self, init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000) -> None:
        if not init_scale > 0:
            raise invalid("init_scale", init_scale, "a number > 0")
        if not growth_factor > 1.0:
            raise invalid("growth_factor", growth_factor, "a number > 1")
        if not 0.0 < backoff_factor < 1.0:
            raise invalid("backoff_factor", backoff_factor,
                          "a number in (0, 1)")
        check_integer("growth_interval", growth_interval, 1)
        self._scale = torch.tensor(init_scale, dtype=torch.float32)
        self._growth_tracker = torch.tensor(0, dtype=torch.int32)
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        # per optimizer (by id), since the last update()
        self._found_inf: dict[int, bool] = {}
        self._stepped: set[int] = set()

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss * S`` (S a float32 scalar)."""
        return loss * self._scale.to(loss.device)

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the optimizer's gradients by the scale (once per step) and
        record whether any is ``inf``/NaN. float16 gradients are refused, as
        torch does: unscale fp32 (master) gradients."""
        key = id(optimizer)
        if key in self._stepped:
            raise RuntimeError("unscale_() is being called after step().")
        if key in self._found_inf:
            raise RuntimeError("unscale_() has already been called on this "
                               "optimizer since the last update().")
        grads = [p.grad for group in optimizer.param_groups
                 for p in group["params"] if p.grad is not None]
        if any(g.dtype == torch.float16 for g in grads):
            raise ValueError("Attempting to unscale FP16 gradients.")
        # 1/S in float64, then float32
        inv_scale = self._scale.double().reciprocal().float()
        with torch.no_grad():
            self._found_inf[key] = unscale_grads_(grads, inv_scale)

    def step(self, optimizer: torch.optim.Optimizer, *args: Any,
             **kwargs: Any) -> Any:
        """Unscale (unless done already), then ``optimizer.step()`` unless a
        gradient was ``inf``/NaN. Returns what ``step`` returns, or None."""
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if "
                               "GradScaler is enabled.")
        key = id(optimizer)
        if key in self._stepped:
            raise RuntimeError("step() has already been called since the "
                               "last update().")
        if key not in self._found_inf:
            self.unscale_(optimizer)
        self._stepped.add(key)
        if self._found_inf[key]:
            return None                      # skip: the gradients overflowed
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        """Back off or grow the scale from the steps since the last update
        (any optimizer's overflow counts), or set it to ``new_scale``."""
        if new_scale is not None:
            self._scale.fill_(new_scale)
        else:
            if not self._found_inf:
                raise RuntimeError("No inf checks were recorded prior to "
                                   "update.")
            update_scale_(self._scale, self._growth_tracker,
                          any(self._found_inf.values()), self._growth_factor,
                          self._backoff_factor, self._growth_interval)
        self._found_inf, self._stepped = {}, set()

    def get_scale(self) -> float:
        """The current scale as a Python float."""
        return self._scale.item()

    def state_dict(self) -> dict[str, Any]:
        """GradScaler's five entries: ``scale``, ``growth_factor``,
        ``backoff_factor``, ``growth_interval``, ``_growth_tracker``."""
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": int(self._growth_tracker.item())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load entries saved by :meth:`state_dict` or by GradScaler."""
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly "
                               "because it was saved from a disabled instance "
                               "of GradScaler.")
        self._scale.fill_(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker.fill_(int(state_dict["_growth_tracker"]))
