"""The language model of optedu.choosing.lm: its corpus is the fixed standard-library source,
split by file; its transformer is causal, its positions rotary, its norm torch's RMSNorm, its
matrices bias-free and drawn as stated; its ladder spans the sizes it claims."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from optedu.choosing import lm


@pytest.fixture(scope="module")
def corpus():
    return lm.stdlib_source()


def test_the_corpus_is_split_by_file(corpus):
    assert not set(corpus.train_files) & set(corpus.val_files)
    names = sorted(corpus.train_files + corpus.val_files)
    assert corpus.val_files == tuple(names[::lm.VALIDATION_EVERY])
    # one end-of-file zero byte per file, and no other zero byte
    assert int((corpus.train == 0).sum()) == len(corpus.train_files)
    assert int((corpus.val == 0).sum()) == len(corpus.val_files)
    assert corpus.train.dtype == torch.uint8 and len(corpus.train) > 4 * len(corpus.val)


def test_another_standard_library_is_refused(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    with pytest.raises(RuntimeError, match=r"differs from the corpus .* Python 3\.11\.7"):
        lm.stdlib_source(str(tmp_path))


def test_batches_are_seeded_windows_and_their_next_bytes(corpus):
    x, y = next(lm.batches(corpus.train, 4, 16, seed=3))
    x2, _ = next(lm.batches(corpus.train, 4, 16, seed=3))
    assert x.shape == y.shape == (4, 16) and torch.equal(x, x2)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert not torch.equal(x, next(lm.batches(corpus.train, 4, 16, seed=4))[0])


def test_rmsnorm_is_torchs():
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    ours, theirs = lm.RMSNorm(8).double(), torch.nn.RMSNorm(8, eps=1e-6).double()
    with torch.no_grad():
        ours.weight.uniform_()
        theirs.weight.copy_(ours.weight)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-15)


def test_rotary_scores_depend_on_distance_only():
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 8, generator=gen, dtype=torch.float64)

    def score(i: int, j: int) -> float:
        qs = torch.zeros(1, 1, 12, 8, dtype=torch.float64)
        ks = torch.zeros_like(qs)
        qs[0, 0, i], ks[0, 0, j] = q, k
        return float(lm.rotary(qs)[0, 0, i] @ lm.rotary(ks)[0, 0, j])

    assert score(5, 2) == pytest.approx(score(9, 6), rel=1e-12)
    assert score(5, 2) != pytest.approx(score(5, 4), rel=1e-3)
    # position 0 is not rotated
    x = torch.randn(1, 2, 3, 8, generator=gen)
    torch.testing.assert_close(lm.rotary(x)[..., 0, :], x[..., 0, :])


@pytest.mark.parametrize("options", [{}, {"swiglu": False}, {"qk_norm": True}])
def test_the_model_is_causal(options):
    model = lm.GPT(depth=2, width=32, heads=2, **options)
    x = torch.randint(0, lm.VOCAB, (2, 10))
    changed = x.clone()
    changed[:, 6] = (x[:, 6] + 1) % lm.VOCAB
    before, after = model(x), model(changed)
    assert before.shape == (2, 10, lm.VOCAB)
    torch.testing.assert_close(before[:, :6], after[:, :6], rtol=0, atol=0)
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_parameters_are_as_stated():
    depth, width = 3, 48
    model = lm.GPT(depth, width, heads=3, qk_norm=True)
    names = dict(model.named_parameters())
    assert not any(n.endswith("bias") for n in names)
    hidden = 8 * math.ceil(8 * width / 3 / 8)
    assert names["blocks.0.mlp.gate.weight"].shape == (hidden, width)
    assert names["blocks.0.attention.q_norm.weight"].shape == (width // 3,)
    for n, p in names.items():
        if p.dim() == 1:
            assert torch.equal(p, torch.ones_like(p)), n
    std = {n: float(p.detach().std()) for n, p in names.items() if p.dim() == 2}
    assert std["embed.weight"] == pytest.approx(0.02, rel=0.05)
    assert std["blocks.1.mlp.down.weight"] == pytest.approx(0.02 / math.sqrt(6), rel=0.05)
    assert std["blocks.1.attention.q.weight"] == pytest.approx(0.02, rel=0.05)
    tied = lm.GPT(depth, width, heads=3, tie=True)
    assert tied.head.weight is tied.embed.weight
    assert lm.non_embedding_parameters(tied) == lm.non_embedding_parameters(
        lm.GPT(depth, width, heads=3))


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="Invalid heads: 5"):
        lm.GPT(depth=1, width=48, heads=5)


def test_the_ladder_spans_thirty_fold_and_reaches_a_million():
    sizes = [lm.non_embedding_parameters(s.model(0)) for s in lm.LADDER]
    assert sizes == sorted(sizes) and len(sizes) >= 4
    assert sizes[-1] >= 1_000_000 and sizes[-1] / sizes[0] >= 30
    depths, widths = [s.depth for s in lm.LADDER], [s.width for s in lm.LADDER]
    assert depths == sorted(depths) and widths == sorted(widths)
    assert torch.equal(lm.LADDER[0].model(7).embed.weight, lm.LADDER[0].model(7).embed.weight)


def test_a_few_steps_learn_the_bytes(corpus):
    torch.manual_seed(0)
    model = lm.GPT(depth=1, width=32, heads=2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = lm.batches(corpus.train, 8, 32, seed=0)
    losses = []
    for _ in range(30):
        x, y = next(data)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(lm.VOCAB), abs=0.3)
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0
