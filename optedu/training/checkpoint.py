r"""A training checkpoint that resumes a run bit for bit, and what each part is worth.

A run is resumed exactly only if the checkpoint holds every piece of state the next step
reads. :data:`PARTS` lists them for a loop with dropout, a shuffled ``DataLoader`` and random
augmentation: the model's parameters and buffers, the optimizer's state (``exp_avg``, ...,
and its groups' options), the scheduler, the step counter, four random generators (torch's
global generators, the CPU's and, where CUDA is present, each GPU's; numpy's global one,
Python's ``random``, and the generator a ``DataLoader`` gives its sampler) and the position
in the data.

* :func:`capture` / :func:`restore`: a checkpoint as a plain dict (tensors, numbers,
  strings), saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``;
  :func:`restore` refuses, with a ``ValueError`` naming what differs, a checkpoint of another
  model (:func:`check_model`: keys or shapes) or of another optimizer
  (:func:`check_optimizer`: class, parameter-group layout, state keys). torch's own
  ``Optimizer.load_state_dict`` checks only the number of parameters per group: it loads
  an Adam state into an AdamW, or into a model of other shapes, without a word.
* :class:`Batches`: a ``DataLoader`` whose position (epoch, batches taken, the sampler's
  generator state at the start of the epoch) can be saved and restored mid-epoch.
* :func:`train` and :func:`ablation`: a small run resumed without each part in turn, and the
  damage measured against the uninterrupted run.

The sampler draws an epoch's whole permutation from its generator when the epoch starts, so
the state that matters is the generator's state *at that moment*, not at the checkpoint.
torchdata's ``StatefulDataLoader`` and the trainers of Hugging Face and Lightning store the
same pieces.
"""

from __future__ import annotations

import copy
import io
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optedu.optim.adam import AdamW
from optedu.optim._validation import check_integer

PARTS = ("model", "optimizer", "scheduler", "step", "torch_rng", "numpy_rng",
         "python_rng", "sampler_rng", "data_position")


# --- the checks ------------------------------------------------------------------------------

def _names(model: nn.Module) -> dict[int, str]:
    """``id(parameter) -> name`` for every parameter of ``model``."""
    return {id(p): name for name, p in model.named_parameters()}


def check_model(saved: dict[str, torch.Tensor], model: nn.Module) -> None:
    """Raise ``ValueError`` unless ``saved`` (a ``state_dict``) has exactly ``model``'s keys
    and shapes; the message lists the missing and unexpected keys and the shapes that
    differ."""
    mine = model.state_dict()
    problems = []
    missing = sorted(set(mine) - set(saved))
    extra = sorted(set(saved) - set(mine))
    if missing:
        problems.append(f"missing keys {missing}")
    if extra:
        problems.append(f"unexpected keys {extra}")
    for key in sorted(set(mine) & set(saved)):
        if tuple(saved[key].shape) != tuple(mine[key].shape):
            problems.append(f"{key}: checkpoint shape {tuple(saved[key].shape)}, model "
                            f"shape {tuple(mine[key].shape)}")
    if problems:
        raise ValueError("Invalid checkpoint: another model (" + "; ".join(problems) + ")")


def optimizer_layout(optimizer: torch.optim.Optimizer,
                     model: nn.Module) -> dict[str, Any]:
    """What identifies an optimizer's checkpoint: its class (module and name), and per
    parameter group the names and shapes of its parameters, in order."""
    names = _names(model)
    return {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
            "groups": [[(names.get(id(p), "?"), tuple(p.shape)) for p in g["params"]]
                       for g in optimizer.param_groups]}


def state_keys(optimizer: torch.optim.Optimizer) -> list[list[set[str]]]:
    """The state keys ``optimizer`` creates, per group and parameter: one step with zero
    gradients on a copy of its parameters (its own state if it has one already)."""
    if optimizer.state:
        return [[set(optimizer.state.get(p, {})) for p in g["params"]]
                for g in optimizer.param_groups]
    groups = [{**{k: v for k, v in g.items() if k != "params"},
               "params": [torch.zeros_like(p, requires_grad=True) for p in g["params"]]}
              for g in optimizer.param_groups]
    probe = type(optimizer)(groups)  # type: ignore[call-arg]  # a rule's class: params, kwargs
    for g in probe.param_groups:
        for p in g["params"]:
            p.grad = torch.zeros_like(p)
    probe.step()
    return [[set(probe.state.get(p, {})) for p in g["params"]] for g in probe.param_groups]


def check_optimizer(saved: dict[str, Any], layout: dict[str, Any],
                    optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Raise ``ValueError`` unless the optimizer checkpoint ``saved`` (with its
    :func:`optimizer_layout` ``layout``) is one of ``optimizer``'s: the same class, the same
    parameters (names and shapes) in the same groups, and per parameter the state keys this
    optimizer creates (found by a probe step on a copy, see :func:`state_keys`)."""
    mine = optimizer_layout(optimizer, model)
    if layout["class"] != mine["class"]:
        raise ValueError(f"Invalid checkpoint: another optimizer (checkpoint of "
                         f"{layout['class']}, resuming {mine['class']})")
    theirs = [[(n, tuple(s)) for n, s in g] for g in layout["groups"]]
    if len(theirs) != len(mine["groups"]):
        raise ValueError(f"Invalid checkpoint: {len(theirs)} parameter groups, the optimizer "
                         f"has {len(mine['groups'])}")
    for i, (a, b) in enumerate(zip(theirs, mine["groups"])):
        if a != b:
            diff = [f"{x} vs {y}" for x, y in zip(a, b) if x != y][:3]
            raise ValueError(f"Invalid checkpoint: parameter group {i} differs (checkpoint "
                             f"{len(a)} parameters, optimizer {len(b)}; first differences "
                             f"{diff})")
    expected = state_keys(optimizer)
    index = 0
    for i, group in enumerate(mine["groups"]):
        for j, (name, _) in enumerate(group):
            got = set(saved["state"].get(index, {}))
            if got and got != expected[i][j]:
                raise ValueError(f"Invalid checkpoint: state of {name} holds {sorted(got)}, "
                                 f"the optimizer keeps {sorted(expected[i][j])}")
            index += 1


# --- random generators -----------------------------------------------------------------------

def torch_rng_state() -> dict[str, Any]:
    """torch's global generators: the CPU's, and each GPU's where CUDA is present (an empty
    list where it is not)."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_torch_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`torch_rng_state` returned. GPU states are restored where CUDA is
    present; a checkpoint that holds them cannot be resumed exactly on a machine without it,
    or with fewer GPUs, and raises ``ValueError``."""
    cuda = state["cuda"]
    have = torch.cuda.device_count() if cuda and torch.cuda.is_available() else 0
    if have < len(cuda):  # checked before anything is restored
        raise ValueError(f"Invalid checkpoint: it holds the random state of {len(cuda)} "
                         f"GPUs, this process sees {have}")
    torch.set_rng_state(state["cpu"])
    if cuda:
        torch.cuda.set_rng_state_all(cuda)


def _numpy_state() -> tuple[str, list[int], int, int, float]:
    """numpy's global generator state with plain types (``torch.load`` with
    ``weights_only=True`` reads it)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return (str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(cached))


def _set_numpy_state(state: Sequence[Any]) -> None:
    name, keys, pos, has_gauss, cached = state
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# --- the data position ----------------------------------------------------------------------

class Batches:
    """Endless batches from a ``DataLoader`` whose sampler draws from ``generator``, with a
    position that can be saved and restored mid-epoch.

    ``epoch`` counts the epochs started, ``taken`` the batches taken in the current one,
    ``epoch_rng`` is the generator's state just before the epoch's permutation was drawn.
    """

    def __init__(self, loader: torch.utils.data.DataLoader,
                 generator: torch.Generator) -> None:
        self.loader, self.generator = loader, generator
        self.epoch, self.taken = 0, 0
        self.epoch_rng = generator.get_state()
        self._it: Iterator[Any] | None = None

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._start()
        try:
            batch = next(self._it)  # type: ignore[arg-type]
        except StopIteration:
            self.epoch += 1
            self._start()
            batch = next(self._it)  # type: ignore[arg-type]
        self.taken += 1
        return batch

    def _start(self) -> None:
        self.epoch_rng = self.generator.get_state()
        self.taken = 0
        self._it = iter(self.loader)

    def resume(self, epoch: int, taken: int, epoch_rng: torch.Tensor | None) -> None:
        """Continue epoch ``epoch`` after its first ``taken`` batches, with the permutation
        drawn from ``epoch_rng`` (``None``: from the generator as it is now)."""
        if epoch_rng is not None:
            self.generator.set_state(epoch_rng)
        self._start()
        self.epoch = epoch
        for _ in range(taken):
            next(self._it)  # type: ignore[arg-type]
        self.taken = taken


# --- save and restore -----------------------------------------------------------------------

def capture(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, step: int,
            batches: Batches) -> dict[str, Any]:
    """Everything :data:`PARTS` names, as a dict of tensors, numbers and strings (copies)."""
    return copy.deepcopy({
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "optimizer_layout": optimizer_layout(optimizer, model),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": step,
        "torch_rng": torch_rng_state(),
        "numpy_rng": _numpy_state(),
        "python_rng": random.getstate(),
        "sampler_rng": batches.epoch_rng,
        "data_position": (batches.epoch, batches.taken)})


def save(checkpoint: dict[str, Any], file: Any) -> None:
    """``torch.save`` (``file``: a path or a binary file object)."""
    torch.save(checkpoint, file)


def load(file: Any) -> dict[str, Any]:
    """``torch.load(file, weights_only=True)``: tensors and plain types, no code run."""
    return torch.load(file, weights_only=True)


def restore(checkpoint: dict[str, Any], model: nn.Module,
            optimizer: torch.optim.Optimizer, scheduler: Any, batches: Batches, *,
            skip: Sequence[str] = ()) -> int:
    """Load ``checkpoint`` into freshly built objects, leaving out the parts in ``skip``
    (for the ablation); return the step to continue from (0 if ``"step"`` is skipped).

    The model and optimizer checks (:func:`check_model`, :func:`check_optimizer`) run first,
    whatever ``skip`` says: a checkpoint of another run raises ``ValueError`` and nothing is
    loaded.
    """
    unknown = sorted(set(skip) - set(PARTS))
    if unknown:
        raise ValueError(f"Invalid skip value: {unknown} (expected names from {PARTS})")
    check_model(checkpoint["model"], model)
    check_optimizer(checkpoint["optimizer"], checkpoint["optimizer_layout"], optimizer, model)
    parts = set(PARTS) - set(skip)
    if "model" in parts:
        model.load_state_dict(checkpoint["model"])
    if "optimizer" in parts:
        optimizer.load_state_dict(checkpoint["optimizer"])
    if "scheduler" in parts and scheduler is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    if "torch_rng" in parts:
        set_torch_rng_state(checkpoint["torch_rng"])
    if "numpy_rng" in parts:
        _set_numpy_state(checkpoint["numpy_rng"])
    if "python_rng" in parts:
        random.setstate(checkpoint["python_rng"])
    epoch, taken = checkpoint["data_position"] if "data_position" in parts else (0, 0)
    batches.resume(epoch, taken,
                   checkpoint["sampler_rng"] if "sampler_rng" in parts else None)
    return checkpoint["step"] if "step" in parts else 0


# --- the ablation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """The small run: an MLP ``4 -> 32 -> 1`` with dropout, fitted by mean squared error to
    ``n`` noisy examples in shuffled batches of ``batch``, with a random gain (Python's
    ``random``) and input noise (numpy) as augmentation; AdamW with linear warmup over
    ``warmup`` steps then cosine decay to 0 at ``steps``; a checkpoint after ``resume_at``
    steps (mid-epoch by default: 12 batches an epoch)."""

    steps: int = 120
    resume_at: int = 51
    n: int = 96
    batch: int = 8
    lr: float = 0.05
    warmup: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_integer("steps", self.steps, 1)
        check_integer("resume_at", self.resume_at, 1, self.steps - 1)
        check_integer("batch", self.batch, 1, self.n)


class WarmupCosine:
    """``LambdaLR``'s factor: linear warmup over ``warmup`` steps, then cosine to 0 at
    ``total``, and 0 after it."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        t = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return 0.5 * (1 + math.cos(math.pi * t))


def _data(recipe: Recipe) -> torch.utils.data.TensorDataset:
    gen = torch.Generator().manual_seed(1000 + recipe.seed)
    x = torch.randn(recipe.n, 4, generator=gen)
    y = torch.sin(x @ torch.tensor([[1.5], [-1.0], [0.5], [2.0]])) \
        + 0.1 * torch.randn(recipe.n, 1, generator=gen)
    return torch.utils.data.TensorDataset(x, y, torch.arange(recipe.n))


def build(recipe: Recipe) -> tuple[nn.Module, torch.optim.Optimizer, Any, Batches]:
    """What the training script builds at its start, seeded as scripts are (every generator
    from ``recipe.seed``): run again after a crash, it builds the same objects in the same
    *initial* state, not the state at the checkpoint."""
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, 1))
    optimizer = AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(recipe.warmup, recipe.steps))
    generator = torch.Generator().manual_seed(recipe.seed + 1)
    loader = torch.utils.data.DataLoader(_data(recipe), batch_size=recipe.batch,
                                         shuffle=True, generator=generator)
    return model, optimizer, scheduler, Batches(loader, generator)


def train(recipe: Recipe, *, skip: Sequence[str] | None = None,
          file_factory: Callable[[], Any] = io.BytesIO) -> dict[str, Any]:
    """Run ``recipe`` to its end. With ``skip=None`` uninterrupted; otherwise stopped after
    ``resume_at`` steps, checkpointed (:func:`capture`, :func:`save` to ``file_factory()``),
    everything rebuilt as a fresh process would (:func:`build`) and resumed by
    :func:`restore` leaving out ``skip``.

    Returns the loss of every step, the examples each step saw (``seen``), the final
    parameters, the loss on the whole data set at the end (eval mode), the learning rate of
    every step and the number of steps taken.
    """
    model, optimizer, scheduler, batches = build(recipe)
    log: dict[str, list[Any]] = {"losses": [], "seen": [], "lrs": []}
    step = _loop(recipe, model, optimizer, scheduler, batches, 0,
                 recipe.steps if skip is None else recipe.resume_at, log)
    if skip is not None:
        file = file_factory()
        save(capture(model, optimizer, scheduler, step, batches), file)
        file.seek(0)
        model, optimizer, scheduler, batches = build(recipe)
        step = restore(load(file), model, optimizer, scheduler, batches, skip=skip)
        step = _loop(recipe, model, optimizer, scheduler, batches, step, recipe.steps, log)
    model.eval()
    data = cast(torch.utils.data.TensorDataset, batches.loader.dataset).tensors
    with torch.no_grad():
        final = float(F.mse_loss(model(data[0]), data[1]))
    return {**log, "params": [p.detach().clone() for p in model.parameters()],
            "final_loss": final, "steps_taken": len(log["losses"])}


def _loop(recipe: Recipe, model: nn.Module, optimizer: torch.optim.Optimizer,
          scheduler: Any, batches: Batches, step: int, stop: int,
          log: dict[str, list[Any]]) -> int:
    model.train()
    while step < stop:
        x, y, index = next(batches)
        x = x * random.uniform(0.9, 1.1)                        # random gain (Python)
        x = x + torch.from_numpy(np.random.normal(0.0, 0.05, x.shape)).float()  # numpy
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)                          # dropout (torch)
        loss.backward()
        log["lrs"].append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        log["losses"].append(loss.item())
        log["seen"].append(index.tolist())
        step += 1
    return step


def identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Bit for bit the same run: the same losses, examples and final parameters."""
    return (a["losses"] == b["losses"] and a["seen"] == b["seen"]
            and all(torch.equal(p, q) for p, q in zip(a["params"], b["params"], strict=True)))


def epoch_coverage(run: dict[str, Any], recipe: Recipe) -> tuple[int, int]:
    """Of the epoch the checkpoint fell in: how many examples the resumed run saw twice, and
    how many it never saw (both 0 for an exact resume)."""
    per_epoch = math.ceil(recipe.n / recipe.batch)
    start = recipe.resume_at // per_epoch * per_epoch
    seen = [i for batch in run["seen"][start:start + per_epoch] for i in batch]
    counts = np.bincount(seen, minlength=recipe.n)
    return int((counts > 1).sum()), int((counts == 0).sum())


def ablation(recipe: Recipe = Recipe()) -> dict[str, dict[str, Any]]:
    """The uninterrupted run (key ``"uninterrupted"``), the run resumed with everything
    (``"nothing"``) and one run per part of :data:`PARTS` resumed without it (key: the part).
    Each entry holds :func:`train`'s result and, against the uninterrupted run, whether it is
    identical, the largest loss difference over the steps after the resume (``loss_gap``),
    the relative difference of the final parameters (``param_gap``), the final loss's change
    in percent, the examples repeated and missed in the checkpoint's epoch, and the extra
    steps taken."""
    reference = train(recipe)
    runs = {"uninterrupted": reference}
    for part in ("nothing",) + PARTS:
        runs[part] = train(recipe, skip=() if part == "nothing" else (part,))
    for run in runs.values():
        after = slice(recipe.resume_at, recipe.steps)
        run["identical"] = identical(run, reference)
        run["loss_gap"] = max(abs(a - b) for a, b in zip(run["losses"][after],
                                                          reference["losses"][after]))
        run["param_gap"] = max(float((p - q).abs().max()) for p, q in
                               zip(run["params"], reference["params"])) / max(
            float(q.abs().max()) for q in reference["params"])
        run["final_change"] = 100 * (run["final_loss"] / reference["final_loss"] - 1)
        run["repeated"], run["missed"] = epoch_coverage(run, recipe)
        run["extra_steps"] = run["steps_taken"] - recipe.steps
    return runs
