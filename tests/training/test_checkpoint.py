"""optedu.training.checkpoint: a checkpoint that resumes bit for bit, and the refusals.

Quick tier: the checks refuse another model (keys, shapes) and another optimizer (class,
group layout, state keys) with a ValueError naming the difference, and a checkpoint goes
through torch.save / torch.load(weights_only=True). Full tier: the ablation -- resumed with
every part the run is identical to the uninterrupted one; without any one part it is not.
"""

import io

import pytest
import torch
from torch import nn

import optedu
from optedu.training import checkpoint as ckpt


def small(out=1, cls=optedu.AdamW, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, out))
    opt = cls(model.parameters(), lr=0.1, **kwargs)
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    return model, opt


def test_check_model_names_keys_and_shapes():
    model, _ = small()
    other, _ = small(out=2)
    ckpt.check_model(model.state_dict(), model)
    with pytest.raises(ValueError, match=r"2.weight: checkpoint shape \(1, 4\), model shape "
                                         r"\(2, 4\)"):
        ckpt.check_model(model.state_dict(), other)
    extra = {**model.state_dict(), "3.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"unexpected keys \['3.weight'\]"):
        ckpt.check_model(extra, model)


def test_check_optimizer_class_layout_and_state_keys():
    model, opt = small()
    layout = ckpt.optimizer_layout(opt, model)
    ckpt.check_optimizer(opt.state_dict(), layout, opt, model)
    _, adam = small(cls=optedu.Adam)
    with pytest.raises(ValueError, match="checkpoint of optedu.optim.adam.AdamW, resuming "
                                         "optedu.optim.adam.Adam"):
        ckpt.check_optimizer(opt.state_dict(), layout, adam, model)
    # torch's own load_state_dict takes it without a word
    adam.load_state_dict(opt.state_dict())
    amsgrad_model, amsgrad = small(amsgrad=True)
    with pytest.raises(ValueError, match=r"holds \['exp_avg', 'exp_avg_sq', 'step'\], the "
                                         r"optimizer keeps \['exp_avg', 'exp_avg_sq', "
                                         r"'max_exp_avg_sq', 'step'\]"):
        ckpt.check_optimizer(opt.state_dict(), layout, amsgrad, amsgrad_model)
    one_group = {**layout, "groups": [sum(layout["groups"], [])[:3]]}
    with pytest.raises(ValueError, match="parameter group 0 differs"):
        ckpt.check_optimizer(opt.state_dict(), one_group, opt, model)


def test_state_keys_by_probe_leave_the_optimizer_alone():
    model = nn.Linear(2, 1)
    opt = optedu.Adam(model.parameters(), lr=0.1, amsgrad=True)
    before = [p.clone() for p in model.parameters()]
    assert ckpt.state_keys(opt) == [[{"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}] * 2]
    assert not opt.state and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_restore_refuses_before_loading_and_checks_skip():
    recipe = ckpt.Recipe(steps=4, resume_at=2)
    model, opt, sched, batches = ckpt.build(recipe)
    state = ckpt.capture(model, opt, sched, 2, batches)
    file = io.BytesIO()
    ckpt.save(state, file)
    file.seek(0)
    loaded = ckpt.load(file)
    other = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2))
    with pytest.raises(ValueError, match="another model"):
        ckpt.restore(loaded, other, opt, sched, batches)
    with pytest.raises(ValueError, match=r"Invalid skip value: \['rng'\]"):
        ckpt.restore(loaded, model, opt, sched, batches, skip=("rng",))
    assert ckpt.restore(loaded, model, opt, sched, batches) == 2


def test_batches_resume_mid_epoch():
    recipe = ckpt.Recipe()
    *_, batches = ckpt.build(recipe)
    seen = [next(batches)[2].tolist() for _ in range(15)]     # epoch 1, 3 batches in
    epoch, taken, state = batches.epoch, batches.taken, batches.epoch_rng
    rest = [next(batches)[2].tolist() for _ in range(5)]
    *_, again = ckpt.build(recipe)
    again.resume(epoch, taken, state)
    assert (epoch, taken) == (1, 3) and seen
    assert [next(again)[2].tolist() for _ in range(5)] == rest


@pytest.mark.full  # about 3 s
def test_ablation_everything_restored_is_identical_and_each_part_matters():
    runs = ckpt.ablation()
    assert runs["nothing"]["identical"]
    for part in ckpt.PARTS:
        assert not runs[part]["identical"], part
    assert runs["step"]["extra_steps"] == ckpt.Recipe().resume_at
    assert runs["step"]["param_gap"] == 0.0          # the extra steps run at lr 0
    for part in ("sampler_rng", "data_position"):
        assert runs[part]["repeated"] > 0 and runs[part]["missed"] > 0, part
    assert runs["nothing"]["repeated"] == runs["nothing"]["missed"] == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="Invalid resume_at value: 10"):
        ckpt.Recipe(steps=10, resume_at=10)


def test_torch_rng_state_without_cuda_holds_the_cpu_generator_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    torch.manual_seed(3)
    state = ckpt.torch_rng_state()
    assert state["cuda"] == []
    first = torch.rand(4)
    ckpt.set_torch_rng_state(ckpt.load(_saved(state)))
    assert torch.equal(torch.rand(4), first)


def test_torch_rng_state_saves_and_restores_every_gpu_where_cuda_is_present(monkeypatch):
    gpus = [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [g.clone() for g in gpus])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    state = ckpt.torch_rng_state()
    ckpt.set_torch_rng_state(state)
    assert [int(t) for t in restored] == [1, 2]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cpu_before = torch.get_rng_state()
    torch.rand(1)  # moves the CPU generator; a refused restore must not move it back
    moved = torch.get_rng_state()
    with pytest.raises(ValueError, match="random state of 2 GPUs, this process sees 1"):
        ckpt.set_torch_rng_state(dict(state, cpu=cpu_before))
    assert torch.equal(torch.get_rng_state(), moved)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="this process sees 0"):
        ckpt.set_torch_rng_state(state)


def _saved(state):
    buffer = io.BytesIO()
    ckpt.save(state, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_torch_rng_state_restores_a_gpu_dropout_mask():
    """The real CUDA path: a dropout mask drawn on the GPU after restore equals the one drawn
    after capture, and differs from the next one drawn without restore."""
    torch.manual_seed(0)
    x = torch.ones(4096, device="cuda")
    state = ckpt.load(_saved(ckpt.torch_rng_state()))
    first = torch.nn.functional.dropout(x, 0.5)
    second = torch.nn.functional.dropout(x, 0.5)
    ckpt.set_torch_rng_state(state)
    again = torch.nn.functional.dropout(x, 0.5)
    assert len(state["cuda"]) == torch.cuda.device_count()
    assert torch.equal(again, first) and not torch.equal(second, first)
