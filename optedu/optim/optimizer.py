"""The container every optedu optimizer shares.

``torch.optim.Optimizer`` already does the bookkeeping well: it normalises
``params`` into ``param_groups``, keeps per-parameter ``state``, and
serialises both in ``state_dict()``. optedu inherits exactly that
bookkeeping -- so torch's learning-rate schedulers accept an optedu
optimizer, and checkpoints move between torch and optedu -- and writes
everything that decides *where the parameters go* itself: the loop over
parameters, the state layout, and one update function per algorithm.
Nothing here calls torch.optim's update code (``torch.optim._functional``,
the foreach or fused kernels).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch

from ._sharding import refuse_sharded

State = dict[str, Any]
Group = dict[str, Any]


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim uses for the ``step`` counter: float64 under a
    float64 default."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def new_step_counter() -> torch.Tensor:
    """A zero ``step`` entry laid out as torch.optim stores it (a CPU scalar
    tensor)."""
    return torch.tensor(0.0, dtype=scalar_dtype())


def zero_buffer(param: torch.Tensor) -> torch.Tensor:
    """A zero buffer shaped, typed and laid out like ``param`` (torch.optim's
    ``zeros_like(param, memory_format=torch.preserve_format)``)."""
    return torch.zeros_like(param, memory_format=torch.preserve_format)


def step_and_buffers(param: torch.Tensor, *names: str) -> State:
    """A new state: a ``step`` counter, then one zero buffer per name.

    >>> sorted(step_and_buffers(torch.ones(2), "exp_avg", "exp_avg_sq"))
    ['exp_avg', 'exp_avg_sq', 'step']
    """
    return {"step": new_step_counter(), **{name: zero_buffer(param) for name in names}}


def as_real(*tensors: Any) -> tuple[Any, ...]:
    """Each complex tensor as its real view (``torch.view_as_real``: a last dimension of two
    holds the real and the imaginary part); real tensors and ``None`` unchanged (each entry
    keeps its own type, ``Tensor`` or ``None``, which one annotation cannot say: ``Any``).

    torch.optim steps a complex parameter as two independent real numbers per entry: its
    one-tensor rules call ``view_as_real`` on the parameter, the gradient and the state at one
    point of the rule (after the weight decay in most, before it in NAdam, RAdam and ASGD), and
    the operations before that point act on the complex tensors. optedu's rules call this at
    the same point, so a complex parameter gets torch's numbers bit for bit (a complex
    ``add(..., alpha=λ)`` rounds differently from the same add on the real view).

    >>> p = torch.tensor([1 + 2j]); (view, none) = as_real(p, None)
    >>> _ = view.sub_(1.0)
    >>> p, none
    (tensor([0.+1.j]), None)
    """
    return tuple(torch.view_as_real(t) if t is not None and t.is_complex() else t
                 for t in tensors)


@contextlib.contextmanager
def complex_as_real(param: torch.Tensor, grad: torch.Tensor,
                    state: State) -> Iterator[tuple[torch.Tensor, torch.Tensor, State]]:
    """A complex parameter as torch.optim's multi-tensor (foreach) rules step
    it: as its real and imaginary parts from the start of the step
    (``_view_as_real`` on the lists, before the weight decay).

    Yields ``param``, ``grad`` and ``state`` with every complex tensor replaced
    by its ``torch.view_as_real`` view (the last dimension holds the real and
    imaginary parts), so the rule's in-place updates land in the complex
    tensors. A state entry the rule assigns anew is stored back, as a complex
    tensor where it was one. A real parameter, or a sparse gradient, passes
    through unchanged.

    >>> p = torch.tensor([1 + 2j]); s = {"m": torch.zeros(1, dtype=p.dtype)}
    >>> with complex_as_real(p, torch.ones_like(p), s) as (rp, rg, rs):
    ...     _ = rs["m"].add_(rg), rp.sub_(rg)
    >>> p, s["m"]
    (tensor([0.+2.j]), tensor([1.+0.j]))
    """
    if not param.is_complex() or grad.is_sparse:
        yield param, grad, state
        return
    views = {key: torch.view_as_real(value)
             if isinstance(value, torch.Tensor) and value.is_complex() else value
             for key, value in state.items()}
    given = dict(views)
    yield torch.view_as_real(param), torch.view_as_real(grad), views
    for key, value in views.items():
        if given.get(key) is not value:
            was_complex = isinstance(state.get(key), torch.Tensor) and state[key].is_complex()
            state[key] = torch.view_as_complex(value) if was_complex else value


def evaluate(closure: Callable[[], Any] | None) -> Any:
    """The loss ``closure`` returns, evaluated with gradients on (a step runs under
    ``torch.no_grad``); None without a closure. Every ``step()`` opens with it."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class Optimizer(torch.optim.Optimizer):
    """Base class: a subclass says how to create a parameter's state and how
    to update it.

    ``step()`` visits every parameter that has a gradient, creates its state
    on first sight (``init_state``), and hands parameter, gradient, state and
    group to ``update``. Parameters whose ``grad`` is ``None`` are skipped,
    as in torch.optim.

    Like torch's ``_init_group``, ``step()`` first checks a group's gradients
    and refuses, before any of its parameters moves, a sparse gradient
    (unless the class sets ``supports_sparse``; torch's SGD and Adagrad take
    them) and a complex parameter (where the class clears
    ``supports_complex``, as torch's Adafactor and Muon refuse them). A rule
    that takes complex parameters steps them as torch does: the one-tensor
    rules call :func:`as_real` where torch's do; the multi-tensor path views
    them as real from the start (:func:`complex_as_real`) unless the class
    clears ``complex_as_real`` (torch's SGD steps the complex tensor itself).
    """

    supports_sparse: bool = False
    supports_complex: bool = True
    complex_as_real: bool = True
    tensor_step: bool = True  # state["step"] is a tensor (SparseAdam's is an int, as torch's)
    # how the rule meets a piece of a tensor (FSDP2's DTensor shards, flat
    # ZeRO-1 pieces): ``element_wise`` rules step any piece as the whole;
    # a non-empty ``refuses_shards`` says why the rule cannot, and step()
    # raises before any state is touched (see ._sharding)
    element_wise: bool = False
    refuses_shards: str = ""
    # the step reads sums over several tensors (a group's, or every
    # parameter's): a rank holding only some whole tensors (ZeroOptimizer)
    # would read them in part
    couples_tensors: bool = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load an older checkpoint as torch's classes do: a group without the
        flags added after a class's first release gets their old meaning
        (``maximize=False``, ``foreach=None``), and a ``step`` stored as a
        Python number becomes torch's scalar tensor."""
        super().__setstate__(state)
        for group in self.param_groups:
            for flag, older in (("maximize", False), ("foreach", None), ("fused", None)):
                if flag in self.defaults:
                    group.setdefault(flag, older)
        if self.tensor_step:
            for param_state in self.state.values():
                step = param_state.get("step")
                if step is not None and not isinstance(step, torch.Tensor):
                    param_state["step"] = torch.tensor(float(step), dtype=scalar_dtype())

    def refuse_pieces(self) -> None:
        """Raise ``ValueError`` (:func:`._sharding.refuse_sharded`) if this
        rule ``refuses_shards`` and a parameter with a gradient is a
        sharded DTensor; before any parameter or state moves."""
        if not self.refuses_shards:
            return
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    refuse_sharded(type(self).__name__, param, self.refuses_shards)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        """Return the state of a parameter seen for the first time."""
        raise NotImplementedError

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        """Apply one step of the rule to ``param`` in place, updating
        ``state`` in place."""
        raise NotImplementedError

    def check_gradients(self, params: list[torch.Tensor]) -> None:
        """Refuse, in torch's words, what this rule does not take: complex
        parameters, then sparse gradients (``params`` have gradients)."""
        name = type(self).__name__
        for param in params:
            if param.is_complex() and not self.supports_complex:
                raise RuntimeError(f"{name} does not support complex parameters")
            if cast(torch.Tensor, param.grad).is_sparse and not self.supports_sparse:
                raise RuntimeError(f"{name} does not support sparse gradients")

    def groups_with_gradients(self) -> Iterator[tuple[Group, list[torch.Tensor]]]:
        """Each group with its parameters that have a gradient, checked
        (:meth:`check_gradients`) before any of them moves; first, the refusal of
        sharded pieces (:meth:`refuse_pieces`). The loop every ``step()`` runs."""
        self.refuse_pieces()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            self.check_gradients(params)
            yield group, params

    def update_group(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        """One step of the rule on a group's parameters that have gradients:
        ``update`` on each."""
        for param, grad, state in zip(params, grads, states):
            self.update(param, grad, state, group)

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """One step of the rule; ``closure`` re-runs the model and returns
        the loss."""
        loss = evaluate(closure)
        for group, params in self.groups_with_gradients():
            grads = [cast(torch.Tensor, param.grad) for param in params]
            states, fresh = [], []
            for param in params:
                state = self.state.get(param)
                if not state:
                    state = self.init_state(param, group)
                    fresh.append((param, state))
                states.append(state)
            self.update_group(params, grads, states, group)
            for param, state in fresh:
                # like torch.optim, keep no entry for a rule without state
                if state:
                    self.state[param] = state
        return loss
