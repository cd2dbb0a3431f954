"""The same floating-point results on every x86-64 processor: pin torch's CPU kernels.

torch picks its CPU kernels at run time from what the processor offers. On a processor with
AVX-512 it runs other ATen, MKL and oneDNN kernels than on one with AVX2 only: the sums are
taken in another order, so float32 and bfloat16 results differ in their last bits, and a
training run, or an iteration such as Newton–Schulz or L-BFGS, carries those differences
into the printed digits (measured: a bf16 Muon run's final loss, an fp16 run's zero-gradient
count and L-BFGS's iteration counts changed between two such machines). The stored outputs of
the chapters are therefore computed, and checked by nbval, with the kernels capped at AVX2,
which every x86-64 processor of the last decade has. The variables only cap what torch may
choose; they change no result on a processor without AVX-512, and none on other architectures,
where they are not set.

``book/conftest.py`` (nbval) and ``tools/run_notebooks.py`` (``make outputs``) call
:func:`pin_cpu_kernels` before any kernel starts; the kernels inherit the environment.
A stored run is also that of one thread (torch's sums over several come in another order):
:func:`one_thread` runs a block so.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import platform
import tempfile
from collections.abc import Iterator, MutableMapping

# ATen's own kernels (ATEN_CPU_CAPABILITY), Intel MKL's BLAS and oneDNN's convolutions and
# matrix products: the three places where torch dispatches on the processor's instruction set.
CPU_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def pin_cpu_kernels(environ: MutableMapping[str, str] | None = None,
                    machine: str | None = None) -> dict[str, str]:
    """Set :data:`CPU_KERNELS` in ``environ`` (default ``os.environ``) where not already set,
    on x86-64 only; returns what was set. Call it before torch is imported in the process
    whose results must be reproducible (or before starting that process)."""
    environ = os.environ if environ is None else environ
    machine = platform.machine() if machine is None else machine
    if machine.lower() not in ("x86_64", "amd64"):
        return {}
    added = {k: v for k, v in CPU_KERNELS.items() if k not in environ}
    environ.update(added)
    cache = inductor_cache_per_capability(environ)
    if cache:
        added["TORCHINDUCTOR_CACHE_DIR"] = cache
    return added


# instruction sets beyond AVX2 that one of the three libraries may pick (Linux's names in
# /proc/cpuinfo): AVX-512 in all its parts, AVX-VNNI (oneDNN's avx2_vnni), AMX, AVX10
_BEYOND_AVX2 = ("avx512", "avx_vnni", "amx", "avx10")


def cap_changes_kernels(machine: str | None = None, flags: set[str] | None = None) -> bool:
    """Whether :data:`CPU_KERNELS` can make torch pick other kernels on this processor: on
    x86-64, unless its flags (default: read from ``/proc/cpuinfo``) show no instruction set
    beyond AVX2. Where it cannot, a run without the cap runs the same kernels as one with it.
    True when the flags cannot be read (not Linux): the safe answer."""
    machine = platform.machine() if machine is None else machine
    if machine.lower() not in ("x86_64", "amd64"):
        return False                                   # pin_cpu_kernels sets nothing there
    if flags is None:
        try:
            text = pathlib.Path("/proc/cpuinfo").read_text()
        except OSError:
            return True
        flags = {f for line in text.splitlines() if line.startswith("flags")
                 for f in line.split(":", 1)[1].split()}
        if not flags:
            return True
    return any(f.startswith(_BEYOND_AVX2) for f in flags)


def inductor_cache_per_capability(environ: MutableMapping[str, str] | None = None) -> str:
    """Give a process whose ``ATEN_CPU_CAPABILITY`` is set an Inductor cache folder of its own
    (``<default>_<capability>``), unless the user chose one.

    ``torch.compile``'s CPU backend reads that variable to choose its vector width, but its
    caches do not key on it: a kernel compiled and cached in an unpinned process (16 floats a
    vector on an AVX-512 CPU) and reloaded in a process pinned to AVX2 steps through the data
    by the wrong width and returns garbage (measured here: a compiled ``randn_like(x) * 2``
    left some entries undoubled; a fused Adam step was thousands of ulps off). Returns the
    folder it set ("" when it set none)."""
    environ = os.environ if environ is None else environ
    capability = environ.get("ATEN_CPU_CAPABILITY")
    if not capability:
        return ""
    default = os.path.join(tempfile.gettempdir(), "torchinductor_" + _user())
    chosen = environ.get("TORCHINDUCTOR_CACHE_DIR")
    if chosen and os.path.abspath(chosen) != os.path.abspath(default):
        return ""
    environ["TORCHINDUCTOR_CACHE_DIR"] = f"{default}_{capability}"
    return environ["TORCHINDUCTOR_CACHE_DIR"]


def _user() -> str:
    """The user name in Inductor's default cache folder (``torchinductor_<user>``)."""
    import getpass
    try:
        return getpass.getuser().replace(" ", "_")
    except Exception:  # pragma: no cover - as Inductor's default_cache_dir does
        return "unknown"


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one CPU thread inside the block, its thread count restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
