r"""Run a function on N processes of one machine, joined by torch.distributed.

:func:`launch` is what a notebook calls: it picks a free port on
127.0.0.1, starts ``world_size`` processes with
``torch.multiprocessing.start_processes``, joins them in a gloo process
group, runs
``fn(rank, world_size, *args)`` on each, and returns the list of the ranks'
results, rank 0 first. Nothing can hang: the process group has a timeout,
the parent waits at most ``timeout`` seconds and then kills every process
still running, and a rank that raises or dies ends the run at once with an
error that names the rank.

``fn`` must be a module-level function of an importable module (optedu's
``optedu.distributed.runs``, say): the children find it by its module path,
so a function defined in a notebook cell cannot run there.

Start methods. ``"spawn"`` starts each child as a fresh interpreter that
imports torch, optedu and (at the first optimizer) ``torch._dynamo``: about
6 s of CPU per child on this machine, at every launch. ``"forkserver"`` (the
default) pays that once: the first launch starts a server process that
imports those modules, and every child of every later launch is a fork of
it, ready at once (a launch then takes about a second). The server is
single-threaded and has never touched a process group, so forking it is
safe; ``"fork"`` (forking the notebook's kernel, with its threads) is not
offered.

>>> from optedu.distributed.runs import rank_and_sum
>>> launch(rank_and_sum, 2, timeout=60.0)  # doctest: +SKIP
[(0, 1.0), (1, 1.0)]
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from optedu.optim._validation import check_greater, check_integer

HOST = "127.0.0.1"
# the process group outlives the parent's deadline by this much, so a hang is
# reported by the parent (which rank still runs), not as a collective's
# timeout in the peer that waits for it
PG_GRACE = 10.0


class RankError(RuntimeError):
    """A rank raised an exception or died; ``rank`` says which one."""

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.rank = rank


class LaunchTimeout(TimeoutError):
    """The run outlived its timeout; ``ranks`` were still running (and were
    killed)."""

    def __init__(self, message: str, ranks: list[int]) -> None:
        super().__init__(message)
        self.ranks = ranks


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system's
    choice for port 0). Another program may still take it before we do:
    :func:`launch` retries on a fresh port when that happens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int) -> None:
    """Raise ``OSError`` naming ``port`` if a socket cannot bind it on
    127.0.0.1 (another process is using it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as error:
            raise OSError(error.errno, f"port {port} on {HOST} is in use "
                          f"({error.strerror}): pass another port, or "
                          "port=None for a free one") from None


def loopback_interface() -> str | None:
    """The name of this machine's loopback interface (``lo`` on Linux,
    ``lo0`` on macOS), for gloo to bind 127.0.0.1 only; ``None`` if there is
    neither."""
    names = {name for _, name in socket.if_nameindex()}
    return next((name for name in ("lo", "lo0") if name in names), None)


def _worker(rank: int, fn: Callable[..., Any], args: Sequence[Any],
            world_size: int, port: int, pg_timeout: float,
            out_dir: str) -> None:
    """Body of one child: join the group, run ``fn``, save its result."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR=HOST, MASTER_PORT=str(port))
    loopback = loopback_interface()
    if loopback is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback  # gloo on 127.0.0.1
    out = Path(out_dir)
    try:
        dist.init_process_group(
            "gloo", rank=rank, world_size=world_size,
            timeout=datetime.timedelta(seconds=pg_timeout))
        try:
            result = fn(rank, world_size, *args)
        finally:
            dist.destroy_process_group()
        torch.save(result, out / f"result{rank}.pt")  # must pickle
    except BaseException as error:
        torch.save({"type": type(error).__name__, "message": str(error),
                    "traceback": traceback.format_exc()},
                   out / f"error{rank}.pt")
        raise


def _kill(context: Any) -> list[int]:
    """Terminate (then kill) every child still alive; return their ranks."""
    alive = [rank for rank, proc in enumerate(context.processes)
             if proc.is_alive()]
    for rank in alive:
        context.processes[rank].terminate()
    for rank in alive:
        proc = context.processes[rank]
        proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return alive


# what a rank raises when a peer failed first (torch.distributed's DistError
# family, or gloo's RuntimeError on a lost connection): a consequence, not
# the cause
_PEER_ERRORS = ("DistError", "DistBackendError", "DistNetworkError",
                "DistStoreError")
_PEER_MESSAGES = ("by peer", "gloo/transport")


def _is_peer_error(info: dict[str, str]) -> bool:
    """Whether a rank's saved error says that a peer went away."""
    return (info["type"] in _PEER_ERRORS
            or any(text in info["message"] for text in _PEER_MESSAGES))


def _cause(reported: int, errors: dict[int, dict[str, str]],
           exitcodes: list[int | None]) -> int:
    """The rank to blame: one that raised an error of its own; else the rank
    torch saw fail first if it died without raising; else one that exited
    with an error code without raising (a peer's communication error can
    reach the parent before the failure it follows from; a negative code is
    a signal, most likely our own clean-up's)."""
    for rank in sorted(errors):
        if not _is_peer_error(errors[rank]):
            return rank
    if reported not in errors:
        return reported
    for rank, code in enumerate(exitcodes):
        if code is not None and code > 0 and rank not in errors:
            return rank
    return reported


def _failure(error: ProcessException, out: Path,
             exitcodes: list[int | None]) -> RankError:
    """The :class:`RankError` for a run in which a child raised or died."""
    errors = {}
    for rank in range(len(exitcodes)):
        saved = out / f"error{rank}.pt"
        if saved.exists():
            errors[rank] = torch.load(saved, weights_only=False)
    rank = _cause(error.error_index, errors, exitcodes)
    if rank in errors:
        info = errors[rank]
        text = (f"rank {rank} raised {info['type']}: {info['message']}\n"
                f"--- traceback in rank {rank} ---\n{info['traceback']}")
    else:
        code = exitcodes[rank]
        how = (f"exit code {code}" if code is not None and code >= 0
               else f"signal {-code}" if code is not None else "no exit code")
        text = f"rank {rank} died ({how}) without raising"
    others = [f"rank {r} then raised {e['type']}: {e['message'][:200]}"
              for r, e in sorted(errors.items()) if r != rank]
    if others:
        text += "\n" + "\n".join(others)
    return RankError(text, rank)


def _run_once(fn: Callable[..., Any], world_size: int, args: Sequence[Any],
              port: int, timeout: float, start_method: str) -> list[Any]:
    with tempfile.TemporaryDirectory(prefix="optedu-dist-") as out_dir:
        out = Path(out_dir)
        if start_method == "forkserver":
            # read once, when the server starts: the modules every child needs
            multiprocessing.get_context("forkserver").set_forkserver_preload(
                ["torch", "torch._dynamo", __name__, fn.__module__])
        context = mp.start_processes(
            _worker, args=(fn, tuple(args), world_size, port,
                           timeout + PG_GRACE, out_dir),
            nprocs=world_size, join=False, start_method=start_method)
        deadline = time.monotonic() + timeout
        try:
            while not context.join(timeout=0.1, grace_period=1.0):
                if time.monotonic() > deadline:
                    alive = _kill(context)
                    raise LaunchTimeout(
                        f"ranks {alive} still running after {timeout:g} s "
                        "(a hang, or a peer waiting on it): killed", alive)
        except ProcessException as error:
            _kill(context)
            codes = [proc.exitcode for proc in context.processes]
            raise _failure(error, out, codes) from None
        finally:
            _kill(context)
        return [torch.load(out / f"result{rank}.pt", weights_only=False)
                for rank in range(world_size)]


def launch(fn: Callable[..., Any], world_size: int = 2,
           args: Sequence[Any] = (), *, timeout: float = 60.0,
           port: int | None = None, retries: int = 2,
           start_method: str = "forkserver") -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` processes in a
    gloo group on 127.0.0.1; return the ranks' results (picklable), rank 0
    first.

    Args:
        fn: a module-level function of an importable module.
        world_size: number of processes (default 2).
        args: further positional arguments of ``fn``, picklable.
        timeout: seconds the whole run may take, start-up included
            (default 60). The process group's own timeout is
            ``timeout + PG_GRACE``: a collective whose peer is gone fails
            instead of waiting forever even if the parent is gone too.
        port: the rendezvous port; ``None`` (default) picks a free one and
            retries on a fresh port (``retries`` times) if another program
            took it first. A given port that is in use raises ``OSError``
            at once.
        start_method: ``"forkserver"`` (default) or ``"spawn"`` (see the
            module docstring).

    Raises:
        RankError: a rank raised (the message names the rank, the
            exception and its traceback) or died (exit code or signal).
        LaunchTimeout: (a ``TimeoutError``) the run took longer than
            ``timeout``; every process still running was killed, and the
            error lists them.
    """
    if not callable(fn) or "<locals>" in getattr(fn, "__qualname__", ""):
        raise TypeError(f"fn must be a module-level function, got {fn!r}")
    if getattr(fn, "__module__", None) == "__main__":
        raise TypeError(f"fn must live in an importable module, not __main__ "
                        f"(a notebook cell): got {fn.__qualname__}")
    check_integer("world_size", world_size, 1)
    check_greater("timeout", timeout)
    check_integer("retries", retries, 0)
    if start_method not in ("forkserver", "spawn"):
        raise ValueError(f"Invalid start_method value: {start_method!r} "
                         "(expected 'forkserver' or 'spawn')")
    if port is not None:
        check_integer("port", port, 1, 65535)
        check_port_free(port)
        return _run_once(fn, world_size, args, port, timeout, start_method)
    for attempt in range(retries + 1):
        try:
            return _run_once(fn, world_size, args, free_port(), timeout,
                             start_method)
        except RankError as error:
            taken = "address already in use" in str(error).lower()
            if not taken or attempt == retries:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
