"""optedu.instruments.bench: the traffic table agrees with tools/bench.py, ATen traffic counts one-pass
kernels as one pass, the timing and bandwidth helpers return sane shapes (no timing is
asserted), and stored results are read back. (Constructing any torch.optim.Adam imports torch._dynamo,
seconds once per process, which the parity tests pay anyway.)"""

import importlib.util
import json
import pathlib
import sys

import pytest
import torch

import optedu
from optedu.instruments.bench import (TRAFFIC, aten_traffic, bytes_per_element, find,
                          interleaved_times, load_results, triad_bandwidth)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def tools_bench():
    spec = importlib.util.spec_from_file_location("tools_bench", ROOT / "tools" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tools_bench", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_counts_every_case_from_the_traffic_table():
    bench = tools_bench()
    assert {case.name for case in bench.CASES} <= set(bench.BYTES)
    for name in TRAFFIC:
        assert bench.BYTES[name] == bytes_per_element(name), name


def stepped(cls, **kwargs):
    params = [torch.randn(16, 16, dtype=torch.float32).requires_grad_() for _ in range(2)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = cls(params, **kwargs)
    opt.step()
    return opt, sum(p.numel() for p in params)


def big(ops, n):
    """Total elements moved by the operations that touch parameter-sized memory."""
    return sum(op.read + op.written for op in ops if op.read + op.written >= n // 2) / n


def test_fused_adam_is_one_pass_of_seven_elements():
    opt, n = stepped(torch.optim.Adam, fused=True)
    ops = [op for op in aten_traffic(opt.step) if op.read + op.written >= n]
    assert [op.name for op in ops] == ["_fused_adam_.default"]
    assert big(ops, n) == pytest.approx(bytes_per_element("Adam"), abs=0.01)


def test_single_tensor_adam_moves_more_and_optedu_the_same():
    counts = {}
    for label, cls, kwargs in [("torch", torch.optim.Adam, dict(foreach=False)),
                               ("optedu", optedu.Adam, {}),
                               ("optedu-foreach", optedu.Adam, dict(foreach=True))]:
        opt, n = stepped(cls, **kwargs)
        counts[label] = big(aten_traffic(opt.step), n)
    assert counts["torch"] == counts["optedu"] == counts["optedu-foreach"]
    assert counts["torch"] > bytes_per_element("Adam") + 5


def test_interleaved_times_and_triad():
    calls = []
    times = interleaved_times({"a": lambda: calls.append("a"),
                               "b": lambda: calls.append("b")}, rounds=3, calls=2)
    assert calls == ["a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b"]
    assert all(len(t) == 3 and min(t) >= 0 for t in times.values())
    assert triad_bandwidth(n=1 << 12, repeats=2) > 0


def test_find_reads_a_results_file(tmp_path):
    row = {"optimizer": "Adam", "impl": "torch", "shape": "large", "dtype": "fp32",
           "threads": 1, "time_s": {"median": 1.0}}
    path = tmp_path / "results_x.json"
    path.write_text(json.dumps({"machine": {}, "results": [row]}))
    results = load_results(path)
    assert find(results, "Adam", "torch") == row
    with pytest.raises(KeyError):
        find(results, "Adam", "torch-fused")


def test_cpu_caches_reads_linux_sizes(tmp_path):
    """Sizes as /sys writes them ("48K", "32768K") become bytes, named L1d/L1i/L2/L3."""
    for i, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                             ("3", "Unified", "32768K")]):
        index = tmp_path / f"index{i}"
        index.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (index / name).write_text(value + "\n")
    assert tools_bench().cpu_caches(tmp_path) == {"L1d": 48 * 2**10, "L1i": 32 * 2**10,
                                                  "L3": 32 * 2**20}
