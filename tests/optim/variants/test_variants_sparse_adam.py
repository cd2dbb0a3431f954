"""SparseAdam with per-row bias correction (optedu.optim.variants.sparse_adam): a comparison variant.

Where it is the same rule as optedu's SparseAdam (every row seen every step), what it changes
(a rarely seen row's step), and the lazy behaviour it shares (untouched rows, repeated rows).
"""

import pytest
import torch

import optedu
from optedu.optim.variants.sparse_adam import RowStepSparseAdam


def _table(rows=6, width=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Embedding(rows, width, sparse=True, dtype=torch.float64)


def _train(make, id_stream, seed=0, rows=6):
    emb = _table(rows, seed=seed)
    opt = make(emb.parameters())
    for ids in id_stream:
        opt.zero_grad()
        torch.sin(3 * emb(ids)).sum().backward()
        opt.step()
    return emb.weight.detach(), opt


def test_every_row_every_step_is_sparse_adam():
    gen = torch.Generator().manual_seed(1)
    stream = [torch.randperm(6, generator=gen) for _ in range(100)]
    ours, _ = _train(lambda p: RowStepSparseAdam(p, lr=1e-2), stream)
    ref, _ = _train(lambda p: optedu.SparseAdam(p, lr=1e-2), stream)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-13)


def test_a_rare_row_steps_by_eta_with_a_constant_gradient():
    emb = torch.nn.Embedding(2, 1, sparse=True, dtype=torch.float64)
    torch.nn.init.zeros_(emb.weight)
    opt = RowStepSparseAdam(emb.parameters(), lr=1e-3, eps=1e-14)
    for t in range(1, 501):
        ids = torch.tensor([0, 1] if t % 50 == 0 else [0])
        opt.zero_grad()
        emb(ids).sum().backward()
        before = emb.weight[1, 0].item()
        opt.step()
        moved = before - emb.weight[1, 0].item()
        assert moved == pytest.approx(1e-3 if t % 50 == 0 else 0.0, rel=1e-9, abs=0)
    assert opt.state[emb.weight]["row_step"].tolist() == [500, 10]
    assert opt.state[emb.weight]["step"] == 500


def test_untouched_rows_keep_value_and_state_and_repeats_are_summed():
    stream = [torch.tensor([0, 2, 0, 3]), torch.tensor([2, 2]), torch.tensor([3, 0])]
    weight, opt = _train(lambda p: RowStepSparseAdam(p, lr=0.1), stream)
    start = _table().weight.detach()
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert torch.equal(weight[[1, 4, 5]], start[[1, 4, 5]])
    assert not state["exp_avg"][[1, 4, 5]].any()
    assert state["row_step"].tolist() == [2, 0, 2, 2, 0, 0]
    # the first step by hand for row 0, seen twice at step 1: g = 2·3cos(3θ)
    emb = _table()
    opt = RowStepSparseAdam(emb.parameters(), lr=0.1, eps=1e-12)
    torch.sin(3 * emb(stream[0])).sum().backward()
    g = 6 * torch.cos(3 * start[0])
    opt.step()
    assert torch.allclose(emb.weight[0], start[0] - 0.1 * torch.sign(g), atol=1e-10)


def test_refuses_dense_gradients_and_bad_arguments():
    w = torch.nn.Parameter(torch.zeros(3, 2))
    w.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse"):
        RowStepSparseAdam([w]).step()
    with pytest.raises(ValueError, match="Invalid learning rate"):
        RowStepSparseAdam([w], lr=0.0)
    with pytest.raises(ValueError, match="beta"):
        RowStepSparseAdam([w], betas=(1.0, 0.9))
