"""Whole-tensor rules on sharded parameters: optedu.optim._sharding and
optedu.distributed.sharded_rules.

Quick tier: the detection helpers on plain tensors; every optimizer class has arguments.
Full tier: in this process, on a world of size 1, the helpers on DTensors (a mesh of one rank
still has a ``Shard(0)`` placement, so every sharded path runs, with all-reduces that add
nothing); then one launch of 2 processes runs every optedu optimizer under FSDP2 beside the single
process (:func:`classify`): none is silent or crashes, each fixed rule equals the single
process to a measured bound and communicates what its formula says, each refusal names the
rule, the shape and the placement; the stored table is what a fresh run gives; and the fixed
rules stay exact on FSDP2's uneven pieces (7 rows on 2 ranks); and a group that mixes sharded
and plain tensors counts each whole tensor once in its sums.

The bounds (float64, relative difference of the displacements over 3 steps): FSDP2 averages
two half-batch gradients where the single process takes one mean, and the fixed rules add
their sums of squares in two halves where the single process adds them in one pass. Each is a
few units of the last place (2.2e-16) per step; a trust ratio or a normalisation divides one
such sum by another, and three steps compound them. Measured on this machine: element-wise
rules up to 5.3e-15 (Adadelta), LARS 3.8e-15, LAMB 9.0e-15, Adafactor 3.0e-15, SAM 3.4e-16,
DoG and LDoG 0, Muon (gathered) 0. The bounds sit about ten times above: 1e-13 for LAMB and the
element-wise rules, 5e-14 for LARS, Adafactor, SAM, DoG, LDoG and Muon. A per-piece rule misses
by 1e-4 to 1e-2 (LARS 3.0e-3, LAMB 4.9e-3 before the fix).
"""

import json
import pathlib

import pytest
import torch

import optedu
from optedu.distributed import launch, sharded_rules
from optedu.optim import _sharding
from optedu.optim.catalogue import CATALOGUE


ROOT = pathlib.Path(__file__).resolve().parents[2]

# the class each rule must get: the catalogue's sharded (optedu/optim/catalogue.py); the refused
# include the whole-matrix preconditioners and projections, per-block or whole-tensor counts
FIXED = {rule.name for rule in CATALOGUE if rule.sharded == "fixed"}
REFUSED = {rule.name for rule in CATALOGUE if rule.sharded == "refused"}
BOUNDS = {"Lamb": 1e-13, "LARS": 5e-14, "Adafactor": 5e-14, "SAM": 5e-14, "DoG": 5e-14,
          "LDoG": 5e-14, "Muon": 5e-14}
ELEMENT_WISE_BOUND = 1e-13
# the first weight of the 8-16-16-4 MLP, as FSDP2 cuts it on two ranks
WHERE = "shape 16×8, placement Shard(0) on a mesh of 2"


# --- plain tensors: nothing to do ----------------------------------------------------------

def test_plain_tensors_are_not_sharded():
    t = torch.ones(3, 2)
    assert not _sharding.is_sharded(t)
    assert _sharding.shard_placement(t) is None
    assert _sharding.sharded_dims(t) == ()
    _sharding.refuse_sharded("LBFGS", t, "any reason")          # a no-op
    s = t.sum()
    assert _sharding.global_sum(s) is s                          # not even a copy
    assert _sharding.local(t) is t
    assert torch.equal(_sharding.norms([t, 2 * t]), torch.stack([t.norm(), (2 * t).norm()]))
    sums = torch.tensor([1.0, 2.0])
    assert _sharding.sharded_sums(sums, [t, t]) is sums          # nothing to add
    with pytest.raises(ValueError, match="Invalid tensors value: 1 tensors for 2 sums"):
        _sharding.sharded_sums(sums, [t])


def test_every_row_has_arguments_and_a_class():
    """Every catalogue row's small run and every variant give arguments (that every class
    has a row is tests/test_layout.py's test_every_optimizer_has_every_piece)."""
    names = sharded_rules.optimizer_classes()
    assert "Adam" in names and "Optimizer" not in names
    for name in [*sharded_rules.KWARGS, *sharded_rules.VARIANTS]:
        sharded_rules.arguments(name)
    assert sharded_rules.class_of("Adam foreach") is optedu.Adam
    assert set(names) >= FIXED | REFUSED
    with pytest.raises(ValueError, match="Invalid name value: 'Nope'"):
        sharded_rules.arguments("Nope")


def test_label():
    row = {"relative_difference": 1e-15, "step_bytes": 0, "hidden_collectives": 0}
    assert sharded_rules.label(row) == "element-wise"
    assert sharded_rules.label({**row, "step_bytes": 96}) == "fixed"
    assert sharded_rules.label({**row, "hidden_collectives": 2}) == "fixed"
    assert sharded_rules.label({**row, "relative_difference": 3e-3}) == "silent"
    refused = {"error": "ValueError", "message": "LARS cannot step a sharded parameter (...)"}
    assert sharded_rules.label(refused) == "refused"
    assert sharded_rules.label({**refused, "error": "RuntimeError"}) == "crashed"


# --- a world of one, in this process -------------------------------------------------------

def _mesh():
    from torch.distributed.device_mesh import init_device_mesh
    return init_device_mesh("cpu", (1,))


def _shard(t, mesh):
    from torch.distributed.tensor import Shard, distribute_tensor
    return distribute_tensor(t, mesh, [Shard(0)])


@pytest.mark.full  # DTensor's first use takes about a second
def test_detection_and_refusal_on_a_dtensor(world_of_one):
    from torch.distributed.tensor import Replicate, distribute_tensor
    mesh = _mesh()
    p = _shard(torch.ones(4, 3, dtype=torch.float64), mesh)
    assert _sharding.is_sharded(p)
    assert _sharding.shard_placement(p) == "Shard(0) on a mesh of 1"
    assert _sharding.sharded_dims(p) == (0,)
    assert _sharding.shard_placement(distribute_tensor(torch.ones(2), mesh, [Replicate()])) is None
    with pytest.raises(ValueError, match=r"^LBFGS cannot step a sharded parameter \(shape 4×3, "
                                         r"placement Shard\(0\) on a mesh of 1\): it flattens"):
        _sharding.refuse_sharded("LBFGS", p, "it flattens")
    assert torch.equal(_sharding.sum_of_squares(p, 2 * p),
                       torch.tensor([12.0, 48.0], dtype=torch.float64))
    partial = (p * p).sum()                                      # a Partial DTensor
    assert float(_sharding.global_sum(partial)) == 12.0


@pytest.mark.full  # DTensor's first use takes about a second
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "Lion", "Muon"])
def test_fused_refuses_a_dtensor(world_of_one, name):
    """The fused kernels step local tensors: a DTensor with fused=True is refused before any
    tensor moves (the other paths take FSDP2's shards)."""
    p = _shard(torch.ones(4, 3), _mesh())
    p.grad = _shard(torch.ones(4, 3), _mesh())
    before = p.to_local().clone()
    with pytest.raises(ValueError, match=r"with fused=True takes plain tensors, not a DTensor "
                                         r"of shape \(4, 3\)"):
        getattr(optedu, name)([p], lr=0.1, fused=True).step()
    assert torch.equal(p.to_local(), before)


@pytest.mark.full  # DTensor's first use takes about a second
@pytest.mark.parametrize("cls, kwargs", [(optedu.LARS, dict(lr=0.1, weight_decay=0.01)),
                                         (optedu.Lamb, dict(lr=0.01, weight_decay=0.01)),
                                         (optedu.Adafactor, dict(lr=0.01)),
                                         (optedu.Rprop, dict(lr=0.01)),
                                         (optedu.DoG, {}), (optedu.LDoG, {})])
def test_sharded_path_on_one_rank_is_the_rule(world_of_one, cls, kwargs):
    # on a mesh of one the sharded path computes the whole tensor's sums its own way
    # (sums of squares, not vector_norm): equal to rounding
    mesh = _mesh()
    gen = torch.Generator().manual_seed(0)
    w, b = (torch.randn(6, 5, generator=gen, dtype=torch.float64),
            torch.randn(6, generator=gen, dtype=torch.float64))
    plain = [w.clone().requires_grad_(), b.clone().requires_grad_()]
    sharded = [torch.nn.Parameter(_shard(t.clone(), mesh)) for t in (w, b)]
    ours, theirs = cls(sharded, **kwargs), cls(plain, **kwargs)
    for step in range(3):
        grads = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in (w, b)]
        for p, q, g in zip(sharded, plain, grads):
            p.grad, q.grad = _shard(g, mesh), g.clone()
        ours.step()
        theirs.step()
    for p, q in zip(sharded, plain):
        torch.testing.assert_close(p.full_tensor(), q.detach(), rtol=1e-13, atol=1e-15)


@pytest.mark.full  # DTensor's first use takes about a second
def test_a_refusing_rule_refuses_before_any_state(world_of_one):
    p = torch.nn.Parameter(_shard(torch.ones(4, 3, dtype=torch.float64), _mesh()))
    p.grad = torch.ones_like(p)
    opt = optedu.Prodigy([p])
    with pytest.raises(ValueError, match=r"Prodigy cannot step a sharded parameter"):
        opt.step()
    assert not opt.state
    with pytest.raises(ValueError, match=r"LBFGS cannot step a sharded parameter"):
        optedu.LBFGS([p])


# --- every optimizer under FSDP2 on two processes (full tier) -------------------------------

@pytest.fixture(scope="module")
def table():
    return {row["rule"]: row for row in sharded_rules.classify()}


@pytest.mark.full  # starts processes
def test_no_rule_is_silent_or_crashes(table):
    assert set(table) == set(sharded_rules.optimizer_classes()) | set(sharded_rules.VARIANTS)
    assert {"Adam foreach", "SGD foreach"} <= set(table)
    wrong = {name: (row["class"], row.get("message")) for name, row in table.items()
             if row["class"] not in ("element-wise", "fixed", "refused")}
    assert not wrong


@pytest.mark.full  # starts processes
def test_each_rule_in_its_class(table):
    classes = {name: row["class"] for name, row in table.items()}
    assert {n for n, c in classes.items() if c == "fixed"} == FIXED
    assert {n for n, c in classes.items() if c == "refused"} == REFUSED


@pytest.mark.full  # starts processes
def test_fixed_and_element_wise_rules_equal_one_process(table):
    for name, row in table.items():
        if row["class"] == "refused":
            continue
        assert row["relative_difference"] <= BOUNDS.get(name, ELEMENT_WISE_BOUND), name
        assert row["ranks_identical"], name
        if row["class"] == "element-wise":
            assert row["step_bytes"] == 0 and row["hidden_collectives"] == 0, name


@pytest.mark.full  # starts processes
def test_fixed_rules_communicate_what_their_formulas_say(table):
    f64 = 8
    # LARS and LAMB: one all-reduce of (‖θ‖², ‖u‖²) per tensor, 6 tensors
    assert table["LARS"]["step_bytes"] == table["Lamb"]["step_bytes"] == 6 * 2 * f64
    # Adafactor, a matrix n columns wide: (‖θ‖², n column sums, ΣR) then ‖U‖²;
    # a vector: (‖θ‖², ‖U‖²). Weights 16×8, 16×16, 4×16; three biases
    matrices = sum(1 + n + 1 + 1 for n in (8, 16, 16))
    assert table["Adafactor"]["step_bytes"] == (matrices + 3 * 2) * f64
    # DoG and LDoG: per group, the squared gradient norms, then the distances
    assert table["DoG"]["step_bytes"] == table["LDoG"]["step_bytes"] == 2 * (3 + 3) * f64
    # SAM: the six gradient norms' pieces, once
    assert table["SAM"]["step_bytes"] == 6 * f64
    for name in FIXED:
        assert table[name]["hidden_collectives"] == 0, name     # every byte counted


@pytest.mark.full  # starts processes
def test_refusals_name_rule_shape_and_placement(table):
    for name in REFUSED:
        message = table[name]["message"]
        assert message.startswith(f"{name} cannot step a sharded parameter ({WHERE}): "), name


@pytest.mark.full  # starts processes
def test_the_stored_table_is_reproduced(table):
    stored = json.loads((ROOT / sharded_rules.STORED).read_text())
    assert stored["tolerance"] == sharded_rules.TOLERANCE
    rows = {row["rule"]: row for row in stored["rows"]}
    assert set(rows) == set(table), (
        f"{sharded_rules.STORED} lacks {sorted(set(table) - set(rows))} and holds "
        f"{sorted(set(rows) - set(table))} of no class: make experiments-sharded-rules, then "
        f"make outputs NB=book/sharded_rules.ipynb")
    for name, row in table.items():
        for key in ("class", "step_bytes", "step_collectives", "hidden_collectives",
                    "message"):
            assert rows[name].get(key) == row.get(key), (name, key)
        if row["relative_difference"] is not None:
            # float64 on gloo, the same kernels: the same numbers, or rounding apart
            assert abs(rows[name]["relative_difference"] - row["relative_difference"]) <= 1e-14


@pytest.mark.full  # starts processes
def test_uneven_pieces():
    # 7 rows on 2 ranks: FSDP2 cuts 4 + 3 (a bias of 3: 2 + 1); the sums still cover each
    # tensor once
    names = sorted(FIXED) + ["Rprop", "Adam"]
    rows = sharded_rules.classify(names, widths=(5, 7, 3))
    for row in rows:
        assert row["class"] == ("fixed" if row["rule"] in FIXED else "element-wise"), row
        assert row["relative_difference"] <= BOUNDS.get(row["rule"], ELEMENT_WISE_BOUND)


@pytest.mark.full  # starts processes
def test_a_group_mixing_sharded_and_plain_tensors_counts_each_once():
    # a plain tensor is whole on every rank: its sum of squares must not be added over the
    # ranks (it was: DoG, LDoG and SAM then ran 15 % apart from one process, silently)
    for rank in launch(sharded_rules.mixed_sums_rank, 2, timeout=60.0):
        whole = rank["whole"]
        assert rank["sum_of_squares"] == pytest.approx(whole, rel=1e-14)
        assert rank["norms"] == pytest.approx([w ** 0.5 for w in whole], rel=1e-14)
        for name, difference in rank["steps"].items():  # DoG, LDoG: two steps
            assert difference < 1e-14, (name, difference)


def test_the_stored_table_is_read_from_the_folder_passed_in(tmp_path):
    # the caller names the data folder (a chapter: store.folder()); the module's own
    # place in the repository plays no part
    (tmp_path / sharded_rules.STORED.name).write_text(json.dumps({"rows": []}))
    assert sharded_rules.read_stored(tmp_path) == {"rows": []}
    with pytest.raises(ValueError, match="no classification stored"):
        sharded_rules.read_stored(tmp_path / "elsewhere")
    assert sharded_rules.read_stored(ROOT / "experiments")["rows"]
