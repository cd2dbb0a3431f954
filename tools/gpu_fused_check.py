"""A one-off check of optedu's fused path on a GPU (Inductor emits Triton there) against
torch's fused and foreach CUDA steps, on a machine this project borrows: not part of the tests.

    OUT=bench python3 tools/gpu_fused_check.py     # writes bench/gpu_fused.json (stored as results_gpu_fused.json)

Since this check optedu refuses fused=True on non-CPU tensors (it ran before the refusal):
to repeat it, drop the device test in FusedOptimizer.update_group first.
"""
import json
import os
import statistics
import sys
import time
import torch

sys.path.insert(0, os.getcwd())
import optedu  # noqa: E402 (the checkout's optedu, from the working folder)

out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
dev = "cuda"


def timed(opt, n=30):
    for _ in range(5):
        opt.step()
    torch.cuda.synchronize()
    ts = []
    for _ in range(n):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        opt.step()
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    return statistics.median(ts)


for name, kw in (("SGD", dict(lr=1e-3, momentum=0.9)), ("Adam", {}), ("AdamW", {}), ("Adagrad", {})):
    row = {}
    for shape, count in (((1000, 1000), 10), ((32, 32), 1000)):
        res = {}
        for label, cls, extra in (("torch-fused", getattr(torch.optim, name), dict(fused=True)),
                                  ("torch-foreach", getattr(torch.optim, name), dict(foreach=True)),
                                  ("optedu-fused", getattr(optedu, name), dict(fused=True))):
            g = torch.Generator(device=dev).manual_seed(0)
            ps = [torch.randn(shape, device=dev, generator=g) for _ in range(count)]
            for p in ps:
                p.grad = torch.randn(shape, device=dev, generator=g)
            try:
                t0 = time.perf_counter()
                o = cls(ps, **kw, **extra)
                o.step()
                torch.cuda.synchronize()
                first = time.perf_counter() - t0
                res[label] = {"ms": timed(o), "first_step_s": first}
            except Exception as err:
                res[label] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        row[f"{count}x{shape[0]}x{shape[1]}"] = res
    row["ulps_vs_torch_fused_note"] = "skipped (one_step_ulps builds CPU tensors)"
    out[name] = row
    print(name, json.dumps(row), flush=True)
os.makedirs(os.environ["OUT"], exist_ok=True)
json.dump(out, open(os.path.join(os.environ["OUT"], "gpu_fused.json"), "w"), indent=1)
