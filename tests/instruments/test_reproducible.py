"""optedu.instruments.reproducible: torch's CPU kernels capped at AVX2 for the notebooks' kernels."""

import platform
import subprocess
import sys

import pytest

from optedu.instruments.reproducible import CPU_KERNELS, cap_changes_kernels, pin_cpu_kernels


def test_pins_on_x86_64_without_overriding_what_is_set():
    env = {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
    added = pin_cpu_kernels(env, machine="x86_64")
    assert env["MKL_ENABLE_INSTRUCTIONS"] == "SSE4_2"       # a user's choice stands
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    # and Inductor's cache apart from unpinned processes' (its keys ignore the capability)
    assert set(added) == set(CPU_KERNELS) - {"MKL_ENABLE_INSTRUCTIONS"} | {
        "TORCHINDUCTOR_CACHE_DIR"}
    assert env["TORCHINDUCTOR_CACHE_DIR"].endswith("_avx2")
    assert pin_cpu_kernels(env, machine="AMD64") == {}       # nothing left to add
    chosen = {"TORCHINDUCTOR_CACHE_DIR": "/somewhere/of/mine"}
    pin_cpu_kernels(chosen, machine="x86_64")
    assert chosen["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/of/mine"


def test_leaves_other_architectures_alone():
    env = {}
    assert pin_cpu_kernels(env, machine="aarch64") == {} and env == {}


def test_the_cap_changes_kernels_only_beyond_avx2():
    avx2 = {"sse4_2", "avx", "avx2", "fma", "f16c"}
    assert not cap_changes_kernels("x86_64", avx2)
    for extra in ("avx512f", "avx512_bf16", "avx_vnni", "amx_tile", "avx10_1"):
        assert cap_changes_kernels("x86_64", avx2 | {extra}), extra
    assert not cap_changes_kernels("aarch64", {"asimd", "sve"})   # no cap set there


@pytest.mark.full  # a process that imports torch (2 s of CPU)
def test_nbval_kernels_inherit_the_pin():
    """book/conftest.py pins the environment that nbval's kernels inherit."""
    code = ("import os, runpy; runpy.run_path('book/conftest.py'); "
            "print(os.environ.get('ATEN_CPU_CAPABILITY'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": ""}).stdout.split()
    expected = "avx2" if platform.machine().lower() in ("x86_64", "amd64") else "None"
    assert out[-1] == expected
