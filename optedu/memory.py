r"""How much memory an optimizer's state takes, measured from the state
tensors themselves.

An optimizer keeps per-parameter state (``exp_avg``, ``momentum_buffer``,
``sum``, ...) in ``optimizer.state``. :func:`state_bytes` adds up the bytes
of those tensors, by state key, for ``torch.optim`` optimizers and optedu's
alike, so a memory table is measured, not typed. torch's scalar ``step``
counters take the default dtype: 4 bytes under float32, 8 under float64.

>>> import torch
>>> w = torch.nn.Parameter(torch.zeros(1000))
>>> opt = torch.optim.Adam([w])
>>> w.grad = torch.ones(1000)
>>> opt.step()
>>> state_bytes(opt)
{'exp_avg': 4000, 'exp_avg_sq': 4000, 'step': 4}
"""

from __future__ import annotations

from collections import defaultdict

import torch


def state_bytes(optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes of every tensor in ``optimizer.state``, per state key.

    Sums over parameters. Keys whose value is not a tensor (``None``, Python
    numbers) are left out. Scalar tensors such as torch's ``step`` counters
    are included: a few bytes per parameter tensor, not per element. Most
    optimizers create their state at the first ``step()``; torch's Adagrad
    creates it in its constructor.
    """
    total: dict[str, int] = defaultdict(int)
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                total[key] += value.numel() * value.element_size()
    return dict(sorted(total.items()))
