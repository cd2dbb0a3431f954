r"""Sharded checkpoints that load on another number of ranks (torch.distributed.checkpoint).

``torch.distributed.checkpoint`` (DCP) has every rank write the pieces it holds, with one
metadata file naming every entry by a string key and, for a tensor, its global shape and which
slice each file holds. Loading asks for entries by key, with tensors of the shape the *new*
ranks hold, and DCP reads whatever slices cover them: the world size may change between save
and load. What makes a checkpoint reshardable is that its keys name *parameters*, never ranks
or positions in a rank's optimizer.

* :func:`save_zero` / :func:`load_zero`: :class:`~optedu.distributed.zero.ZeroOptimizer`
  (ZeRO-1, whole tensors per rank). Each rank writes the state of the parameters it owns as
  ``optim/<parameter name>/<state key>``, and the model once (DCP keeps one copy of an entry
  every rank writes alike). On load each rank computes its own shard for the new world size
  and asks for those entries. By hand: torch's ``get_state_dict`` does not know this wrapper.
* :func:`save_fsdp` / :func:`load_fsdp`: FSDP2 (``fully_shard``) with any optimizer, through
  ``torch.distributed.checkpoint.state_dict``'s ``get_state_dict`` and ``set_state_dict``,
  which key the optimizer state by parameter name and keep it as DTensors: DCP reshards the
  rows. (``get_state_dict`` first runs one step with zero gradients at ``lr = 0`` if the
  optimizer has no state yet, so that the state exists to be filled.)
* :func:`check_entries`: before anything is loaded, the checkpoint's keys and shapes against
  the model's and the optimizer's; another model or optimizer raises ``ValueError`` naming
  the first differences.
* :func:`resume_jobs`: the rank function the chapter launches (train, save, load, train on);
  :func:`reshard`: save on 2 ranks, resume on 1, 2 and 3, each against the uninterrupted run.

The save and load functions are collective: call them on every rank of the group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn.functional as F
from torch import nn
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from optedu.optim._validation import check_integer
from optedu.training.checkpoint import state_keys
from .runs import Job, _build, default_dtype, local_batch
from .zero import ZeroOptimizer


def _class_name(optimizer: torch.optim.Optimizer) -> str:
    return f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"


def _options(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Each group's options (everything but ``params``) that JSON can hold."""
    return [{k: v for k, v in g.items() if k != "params"
             and isinstance(v, (int, float, bool, str, type(None), list, tuple))}
            for g in optimizer.param_groups]


def _metadata(path: str | Path) -> dict[str, Any]:
    """``key -> global shape`` (a tuple) for tensors, ``None`` for other entries."""
    md = dcp.FileSystemReader(str(path)).read_metadata()
    return {key: tuple(m.size) if isinstance(m, TensorStorageMetadata) else None
            for key, m in md.state_dict_metadata.items()}


def check_entries(saved: dict[str, Any], wanted: Mapping[str, tuple[int, ...] | None],
                  prefix: str, what: str) -> None:
    """Raise ``ValueError`` unless the checkpoint's entries under ``prefix`` (``saved``:
    key -> shape, from the metadata) are exactly ``wanted``'s keys with the same shapes;
    ``what`` names the object ("model", "optimizer") in the message."""
    theirs = {k: v for k, v in saved.items() if k.startswith(prefix)}
    missing = sorted(set(wanted) - set(theirs))
    extra = sorted(set(theirs) - set(wanted))
    shapes = [f"{k}: checkpoint {theirs[k]}, here {wanted[k]}"
              for k in sorted(set(wanted) & set(theirs)) if theirs[k] != wanted[k]]
    problems = ([f"missing {missing[:4]}"] if missing else []) \
        + ([f"unexpected {extra[:4]}"] if extra else []) + shapes[:4]
    if problems:
        raise ValueError(f"Invalid checkpoint: another {what} (" + "; ".join(problems) + ")")


def _check_meta(path: str | Path, optimizer: torch.optim.Optimizer,
                groups: list[list[str]]) -> dict[str, Any]:
    """The saved meta entry; ``ValueError`` if its optimizer class or group layout (names of
    the parameters, group by group) is not this optimizer's."""
    meta: dict[str, Any] = {"meta": ""}
    dcp.load(meta, checkpoint_id=str(path))
    info = json.loads(meta["meta"])
    if info["class"] != _class_name(optimizer):
        raise ValueError(f"Invalid checkpoint: another optimizer (checkpoint of "
                         f"{info['class']}, resuming {_class_name(optimizer)})")
    if info["groups"] != groups:
        raise ValueError(f"Invalid checkpoint: parameter groups differ (checkpoint "
                         f"{info['groups']}, optimizer {groups})")
    return info


# --- ZeRO-1 ----------------------------------------------------------------------------------

def _zero_layout(model: nn.Module, opt: ZeroOptimizer) -> list[list[str]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [[names[id(p)] for p in g["params"]] for g in opt.param_groups]


def save_zero(path: str | Path, model: nn.Module, opt: ZeroOptimizer, step: int) -> None:
    """Write the model, this rank's optimizer shard (keyed by parameter name), the groups'
    options and ``step`` to the directory ``path`` with DCP."""
    names = {id(p): n for n, p in model.named_parameters()}
    state: dict[str, Any] = {f"model/{k}": v for k, v in model.state_dict().items()}
    for p, entries in opt.optim.state.items():
        for key, value in entries.items():
            state[f"optim/{names[id(p)]}/{key}"] = value
    state["meta"] = json.dumps({"class": _class_name(opt.optim),
                                "groups": _zero_layout(model, opt),
                                "options": _options(opt), "step": step})
    dcp.save(state, checkpoint_id=str(path))


def load_zero(path: str | Path, model: nn.Module, opt: ZeroOptimizer) -> int:
    """Load a :func:`save_zero` checkpoint written at any world size into ``model`` and
    ``opt`` (built for this world size); return the saved step. Each rank reads the model
    and the state of the parameters it owns now."""
    saved = _metadata(path)
    mine = model.state_dict()
    check_entries(saved, {f"model/{k}": tuple(v.shape) for k, v in mine.items()},
                  "model/", "model")
    info = _check_meta(path, opt.optim, _zero_layout(model, opt))
    names = {id(p): n for n, p in model.named_parameters()}
    owned = [p for g in opt.optim.param_groups for p in g["params"]]
    keys = [k for group in state_keys(opt.optim) for k in group]
    prefixes = {f"optim/{names[id(p)]}/" for p in owned}
    theirs = {k: v for k, v in saved.items()
              if k.startswith("optim/") and k[:k.rindex("/") + 1] in prefixes}
    wanted = {f"optim/{names[id(p)]}/{key}": saved.get(f"optim/{names[id(p)]}/{key}")
              for p, entries in zip(owned, keys) for key in entries}
    check_entries(theirs, wanted, "optim/", "optimizer")
    dtypes = _dtypes(path)
    state: dict[str, Any] = {f"model/{k}": torch.empty_like(v) for k, v in mine.items()}
    for key, shape in wanted.items():     # tensors of the saved shape; 0 for a number
        state[key] = 0 if shape is None else torch.empty(shape, dtype=dtypes[key])
    dcp.load(state, checkpoint_id=str(path))
    model.load_state_dict({k[len("model/"):]: v for k, v in state.items()
                           if k.startswith("model/")})
    opt.optim.state.clear()
    for p in owned:
        prefix = f"optim/{names[id(p)]}/"
        opt.optim.state[p] = {k[len(prefix):]: v for k, v in state.items()
                              if k.startswith(prefix)}
    for group, options in zip(opt.param_groups, info["options"]):
        group.update({k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
    return int(info["step"])


def _dtypes(path: str | Path) -> dict[str, torch.dtype]:
    md = dcp.FileSystemReader(str(path)).read_metadata()
    return {k: m.properties.dtype for k, m in md.state_dict_metadata.items()
            if isinstance(m, TensorStorageMetadata)}


# --- FSDP2 -----------------------------------------------------------------------------------

def _fsdp_layout(opt: torch.optim.Optimizer, model: nn.Module) -> list[list[str]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [[names[id(p)] for p in g["params"]] for g in opt.param_groups]


def _flat(prefix: str, tree: Any) -> dict[str, tuple[int, ...]]:
    """DCP's flattened keys (``prefix.key.subkey``) and shapes of the tensors in ``tree``."""
    out: dict[str, tuple[int, ...]] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(_flat(f"{prefix}.{k}", v))
    elif isinstance(tree, torch.Tensor):
        out[prefix] = tuple(tree.shape)
    return out


def save_fsdp(path: str | Path, model: nn.Module, opt: torch.optim.Optimizer,
              step: int) -> None:
    """Write an FSDP2 model and its optimizer with ``get_state_dict`` and DCP: every rank
    writes its rows of every parameter and of every state tensor."""
    from torch.distributed.checkpoint.state_dict import get_state_dict
    model_sd, optim_sd = get_state_dict(model, opt)
    meta = json.dumps({"class": _class_name(opt), "groups": _fsdp_layout(opt, model),
                       "options": _options(opt), "step": step})
    dcp.save({"model": model_sd, "optim": optim_sd, "meta": meta},
             checkpoint_id=str(path))


def load_fsdp(path: str | Path, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Load a :func:`save_fsdp` checkpoint written at any world size into an FSDP2 model
    and optimizer built for this one; return the saved step."""
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    info = _check_meta(path, opt, _fsdp_layout(opt, model))
    model_sd, optim_sd = get_state_dict(model, opt)  # state made at lr = 0, to be filled
    saved = _metadata(path)
    check_entries(saved, _flat("model", model_sd), "model.", "model")
    check_entries(saved, _flat("optim.state", optim_sd["state"]), "optim.state.",
                  "optimizer")
    dcp.load({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))
    set_state_dict(model, opt, model_state_dict=model_sd, optim_state_dict=optim_sd)
    return int(info["step"])


# --- the runs the chapter launches -----------------------------------------------------------

def _train(model: nn.Module, opt: torch.optim.Optimizer, job: Job, rank: int,
           world_size: int, steps: int) -> list[float]:
    x, y = local_batch(job, rank, world_size)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / world_size)
    return losses


def _check_method(job: Job) -> None:
    if job.method not in ("zero", "fsdp"):
        raise ValueError(f"Invalid method value: {job.method!r} (expected 'zero' or 'fsdp')")


def _full(model: nn.Module) -> list[torch.Tensor]:
    return [(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
            for p in model.parameters()]


def _full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The state this rank's ``optimizer`` holds, as whole tensors keyed
    ``<parameter name>/<state key>`` (a DTensor is gathered: collective under FSDP2)."""
    names = {id(p): n for n, p in model.named_parameters()}
    out: dict[str, Any] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor):
                    full = value.full_tensor() if hasattr(value, "full_tensor") else value
                    value = full.detach().clone()
                out[f"{names[id(p)]}/{key}"] = value
    return out


def _load(job: Job, path: str | Path, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """:func:`load_zero` or :func:`load_fsdp`, by ``job.method``."""
    if job.method == "zero":
        return load_zero(path, model, cast(ZeroOptimizer, opt))   # what _build made
    return load_fsdp(path, model, opt)


def _save(job: Job, path: str | Path, model: nn.Module, opt: torch.optim.Optimizer,
          step: int) -> None:
    """:func:`save_zero` or :func:`save_fsdp`, by ``job.method``."""
    if job.method == "zero":
        save_zero(path, model, cast(ZeroOptimizer, opt), step)    # what _build made
    else:
        save_fsdp(path, model, opt, step)


def resume_jobs(rank: int, world_size: int,
                tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each task in turn on this rank; a task is a dict with ``job`` (a
    :class:`~optedu.distributed.runs.Job`, method ``"zero"`` or ``"fsdp"``), ``steps``,
    optional ``load`` (a checkpoint directory to start from), ``save`` (one to write at the
    end) and ``expect_error`` (the load must raise ``ValueError``: its message is returned).
    Returns per task the losses, the final parameters (whole tensors) and the error; and
    ``state``: the parameters and this rank's optimizer state (whole tensors, see
    :func:`_full_state`) just after the load (``load``) or at the save (``save``)."""
    out: list[dict[str, Any]] = []
    for task in tasks:
        job = task["job"]
        _check_method(job)
        with default_dtype(job.dtype):
            model, opt, inner = _build(job, rank, world_size)
            start, error = 0, None
            if task.get("load"):
                try:
                    start = _load(job, task["load"], model, opt)
                except ValueError as err:
                    if not task.get("expect_error"):
                        raise
                    error = str(err)
            if task.get("expect_error"):
                if error is None:
                    raise AssertionError("a foreign checkpoint was loaded without error")
                out.append({"error": error})
                continue
            state = ({"params": _full(model), "optim": _full_state(model, inner)}
                     if task.get("load") else None)
            losses = _train(model, opt, job, rank, world_size, task["steps"])
            if task.get("save"):
                _save(job, task["save"], model, opt, start + task["steps"])
                state = {"params": _full(model), "optim": _full_state(model, inner)}
            out.append({"losses": losses, "params": _full(model), "start": start,
                        "error": None, "state": state})
    return out


def reshard(jobs: dict[str, Job], *, save_at: int, steps: int, saved_world: int = 2,
            worlds: Sequence[int] = (1, 2, 3),
            foreign_optimizer: type[torch.optim.Optimizer] | None = None,
            refuse_on: Sequence[int] | None = None,
            timeout: float = 120.0) -> dict[str, Any]:
    """Save on ``saved_world`` ranks, resume on each of ``worlds``: one launch per world
    size (the resume on ``saved_world`` ranks runs in the saving launch).

    Every job (method ``"zero"`` or ``"fsdp"``) runs ``steps`` steps uninterrupted, and
    ``save_at`` steps then a checkpoint (in a temporary directory); at each world size
    :math:`w` it is loaded and trained for the remaining steps, beside the job run
    uninterrupted at :math:`w`, a model with one more output (it must be refused) and, if
    ``foreign_optimizer`` is given, the same model with that optimizer class (refused too);
    the two refusals run at the world sizes in ``refuse_on`` only (default: all).

    Returns ``files`` (per job: the checkpoint's file names and sizes) and ``rows``, one per
    job and world size: ``identical`` (the resumed run's final parameters equal the
    uninterrupted run's on ``saved_world`` ranks bit for bit), ``relative_difference``
    (:func:`~optedu.distributed.runs.relative_difference` of the two), ``loss_difference``
    (largest over the resumed steps), ``world_difference`` (the run uninterrupted at
    :math:`w` against the one at ``saved_world``: what the order of the reduction alone
    does), ``same_world_difference`` (the resumed run against the run uninterrupted at
    :math:`w`), ``state_identical`` (the parameters and the optimizer state the new ranks
    hold just after the load, gathered over the ranks, equal bit for bit those the saving
    ranks held), ``ranks_identical``, ``start`` (the step read back) and the two errors'
    messages (``None`` where not tried).
    """
    import dataclasses
    import tempfile

    from .launcher import launch
    from .runs import relative_difference
    check_integer("steps", steps, 2)
    check_integer("save_at", save_at, 1, steps - 1)
    for job in jobs.values():
        _check_method(job)
    out: dict[str, Any] = {"files": {}, "rows": []}

    refusing = set(worlds if refuse_on is None else refuse_on)

    def resumed_tasks(where: dict[str, str], world: int) -> list[dict[str, Any]]:
        tasks = []
        for name, job in jobs.items():
            wider = job.widths[:-1] + (job.widths[-1] + 1,)
            tasks += [{"job": job, "steps": steps - save_at, "load": where[name]},
                      {"job": job, "steps": steps}]
            if world not in refusing:
                continue
            tasks.append({"job": dataclasses.replace(job, widths=wider),
                          "load": where[name], "expect_error": True})
            if foreign_optimizer is not None:
                other = dataclasses.replace(job, optimizer=foreign_optimizer,
                                            kwargs={}, bias_group={})
                tasks.append({"job": other, "load": where[name], "expect_error": True})
        return tasks

    with tempfile.TemporaryDirectory(prefix="optedu-dcp-") as tmp:
        where = {name: str(Path(tmp) / name) for name in jobs}
        saving = [task for name, job in jobs.items() for task in (
            {"job": job, "steps": steps},
            {"job": job, "steps": save_at, "save": where[name]})]
        # the resumes on saved_world ranks run in the same launch, after the saves
        same = resumed_tasks(where, saved_world) if saved_world in worlds else []
        first = launch(resume_jobs, saved_world, (saving + same,), timeout=timeout)
        for name in jobs:
            out["files"][name] = sorted((f.name, f.stat().st_size)
                                        for f in Path(where[name]).iterdir())
        for world in worlds:
            if world == saved_world:
                ranks = [results[len(saving):] for results in first]
            else:
                ranks = launch(resume_jobs, world, (resumed_tasks(where, world),),
                               timeout=timeout)
            per_job = len(ranks[0]) // len(jobs)
            for i, name in enumerate(jobs):
                reference = first[0][2 * i]
                saved = _gathered([r[2 * i + 1]["state"] for r in first])
                loaded = _gathered([r[per_job * i]["state"] for r in ranks])
                resumed, alone = ranks[0][per_job * i], ranks[0][per_job * i + 1]
                out["rows"].append({
                    "job": name, "world": world, "start": resumed["start"],
                    "identical": all(torch.equal(a, b) for a, b in
                                     zip(resumed["params"], reference["params"])),
                    "relative_difference": relative_difference(resumed["params"],
                                                               reference["params"]),
                    "loss_difference": max(abs(a - b) for a, b in zip(
                        resumed["losses"], reference["losses"][save_at:])),
                    "world_difference": relative_difference(alone["params"],
                                                            reference["params"]),
                    "same_world_difference": relative_difference(resumed["params"],
                                                                 alone["params"]),
                    "state_identical": _same(saved, loaded),
                    "ranks_identical": all(
                        all(torch.equal(a, b) for a, b in
                            zip(resumed["params"], r[per_job * i]["params"]))
                        for r in ranks[1:]),
                    "model_error": (ranks[0][per_job * i + 2]["error"]
                                    if world in refusing else None),
                    "optimizer_error": (ranks[0][per_job * i + 3]["error"]
                                        if world in refusing and foreign_optimizer
                                        is not None else None)})
    return out


def _gathered(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The state of every rank in one dict: the parameters (alike on every rank) and the
    union of the ranks' optimizer state (under FSDP2 each rank gathered the whole of it)."""
    optim: dict[str, Any] = {}
    for state in states:
        optim.update(state["optim"])
    return {"params": states[0]["params"], "optim": optim}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Bit for bit the same parameters and optimizer state (same keys, equal values)."""
    def equal(u: Any, v: Any) -> bool:
        if isinstance(u, torch.Tensor) or isinstance(v, torch.Tensor):
            return (isinstance(u, torch.Tensor) and isinstance(v, torch.Tensor)
                    and u.dtype == v.dtype and torch.equal(u, v))
        return bool(u == v)
    return (all(equal(u, v) for u, v in zip(a["params"], b["params"], strict=True))
            and a["optim"].keys() == b["optim"].keys()
            and all(equal(a["optim"][k], b["optim"][k]) for k in a["optim"]))
