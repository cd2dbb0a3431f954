r"""Find the first non-finite tensor of a training run: which module, which phase,
which step.

A NaN is seen where it ends (the loss) and born somewhere else. :class:`NaNLocator`
hooks every module of a model and the optimizer's step, checks each tensor as it
is made, and keeps the first that holds ``nan`` or ``inf``:

* **forward**: each module's inputs (``register_forward_pre_hook``: a bad input was
  made between modules, by a function in the parent's ``forward``, or is the data)
  and outputs (``register_forward_hook``);
* **backward**: the gradients of each module's outputs and inputs
  (``register_full_backward_hook``: ``grad_output``, then ``grad_input``), then each
  parameter's gradient before the step (the optimizer's step pre-hook);
* **optimizer step**: each parameter after the step (the step post-hook).

The checks run in the order the tensors are made, so the first record is the
earliest non-finite tensor. An output is named by the innermost module that returns
it (forward hooks fire from the inside out), a gradient by the innermost module it
passes through; a bad input batch is named by the model itself (``""``), whose
pre-hook fires before its children's.
The step is the number of optimizer steps taken inside the ``with`` block.

Cost: an autograd node around each module's inputs and outputs (for the backward
hooks), one ``torch.isfinite(t).all()`` per checked tensor (a read of every activation,
activation gradient and parameter once per step) and one host synchronisation each: of
the order of ``torch.autograd.detect_anomaly``'s, a debugging tool for a replay of the
failing steps, not for a whole run. ``detect_anomaly`` checks less (the outputs of backward functions, for
NaN only: not ``inf``, not the forward, not the step) but names the *operation*, with
the traceback of the forward line that made it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

PHASES = ("forward", "backward", "optimizer step")


@dataclass(frozen=True)
class NonFinite:
    """The first non-finite tensor: ``step`` (optimizer steps taken before it:
    0 in the first), ``phase`` (forward, backward, optimizer step), ``module``
    (qualified name, ``""`` for the model itself), ``tensor`` (``"input[0]"``,
    ``"output"``, ``"grad_output[0]"``, ``"grad_input[0]"``, ``"grad of
    weight"``, ``"parameter weight"``, or ``"value"`` from
    :meth:`NaNLocator.check`), and how many of its ``numel`` elements are
    ``nan`` and ``inf``."""

    step: int
    phase: str
    module: str
    tensor: str
    nan: int
    inf: int
    numel: int

    def __str__(self) -> str:
        where = self.module or "(model)"
        return (f"step {self.step}, {self.phase}: {where} {self.tensor} "
                f"({self.nan} nan, {self.inf} inf of {self.numel})")


def _tensors(value: Any, name: str) -> list[tuple[str, torch.Tensor]]:
    """The floating-point tensors in a module's input or output, named."""
    if isinstance(value, torch.Tensor):
        return [(name, value)] if value.is_floating_point() else []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [item for i, v in enumerate(value)
                for item in _tensors(v, f"{name}[{i}]")]
    if isinstance(value, dict):
        return [item for k, v in value.items()
                for item in _tensors(v, f"{name}[{k!r}]")]
    return []


class NaNLocator:
    """A context manager that records the first non-finite tensor of a run.

    Usage::

        with NaNLocator(model, optimizer) as locator:
            for batch in batches:
                ...  # forward, backward, optimizer.step()
                if locator.first is not None:
                    break
        print(locator.first)     # a NonFinite, or None

    Args:
        model: the ``nn.Module`` whose submodules are hooked (all of them).
        optimizer: optional; its step pre- and post-hooks check the parameters'
            gradients and the parameters after the step, and count the steps.
        raise_on_first: raise ``FloatingPointError`` at the first record
            (default ``False``: record and go on, the later ones ignored).

    The hooks are removed on exit. ``register_full_backward_hook`` refuses
    modules whose ``forward`` modifies its inputs or outputs in place
    (``inplace=True`` activations): torch raises then.
    """

    def __init__(self, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer | None = None,
                 raise_on_first: bool = False) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{type(model).__name__} is not an nn.Module")
        if optimizer is not None and not isinstance(optimizer,
                                                    torch.optim.Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.model, self.optimizer = model, optimizer
        self.raise_on_first = raise_on_first
        self.first: NonFinite | None = None
        self.step = 0
        self._handles: list[Any] = []
        self._names = {id(p): n for n, p in model.named_parameters()}

    def _check(self, phase: str, module: str,
               tensors: list[tuple[str, torch.Tensor]]) -> None:
        if self.first is not None:
            return
        for name, t in tensors:
            if bool(torch.isfinite(t).all()):
                continue
            nan = int(torch.isnan(t).sum())
            self.first = NonFinite(self.step, phase, module, name, nan,
                                   int((~torch.isfinite(t)).sum()) - nan,
                                   t.numel())
            if self.raise_on_first:
                raise FloatingPointError(f"first non-finite tensor: "
                                         f"{self.first}")
            return

    def check(self, name: str, tensor: torch.Tensor,
              phase: str = "forward") -> None:
        """Check a tensor made outside any module (the loss, say), under
        ``name`` (recorded as the module)."""
        if phase not in PHASES:
            raise ValueError(f"Invalid phase: {phase!r} (expected one of "
                             + ", ".join(PHASES) + ")")
        self._check(phase, name, [("value", tensor.detach())])

    def _params(self, label: str, grads: bool) -> None:
        assert self.optimizer is not None   # the hooks that call this are set with one
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                t = p.grad if grads else p
                if t is None:
                    continue
                name = self._names.get(id(p), "?")
                module, _, leaf = name.rpartition(".")
                self._check("backward" if grads else "optimizer step", module,
                            [(f"{label}{leaf}", t.detach())])

    def __enter__(self) -> NaNLocator:
        # a module whose inputs need no gradient (the first layer) still gets
        # its hook, with grad_input None; torch warns about it at each backward
        self._quiet = warnings.catch_warnings()
        self._quiet.__enter__()
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for name, m in self.model.named_modules():
            def pre(mod, args, name=name):
                self._check("forward", name, _tensors(args, "input"))

            def post(mod, args, out, name=name):
                self._check("forward", name, _tensors(out, "output"))

            def back(mod, grad_input, grad_output, name=name):
                self._check("backward", name,
                            _tensors(grad_output, "grad_output")
                            + _tensors(grad_input, "grad_input"))

            self._handles += [m.register_forward_pre_hook(pre),
                              m.register_forward_hook(post),
                              m.register_full_backward_hook(back)]
        if self.optimizer is not None:
            def before(opt, args, kwargs):
                self._params("grad of ", grads=True)

            def after(opt, args, kwargs):
                self._params("parameter ", grads=False)
                self.step += 1

            self._handles += [self.optimizer.register_step_pre_hook(before),
                              self.optimizer.register_step_post_hook(after)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._quiet.__exit__(*exc)
