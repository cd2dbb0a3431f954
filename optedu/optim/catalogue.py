r"""The catalogue of optimizers: one :class:`Rule` per optimizer class optedu exports.

A row is plain data: where the class is defined, the chapter that teaches it, its place in the
family tree, the reference it is proved equal to and the test file that proves it, its state in
closed form, the settings of its small runs, whether it competes in the benchmark. The package's
tables read it instead of keeping their own lists of names:

* :mod:`optedu.precision.memory`: ``STATE_LAYOUTS`` from :attr:`Rule.state`;
* :mod:`optedu.distributed.sharded_rules`: ``KWARGS`` (:attr:`Rule.small_run`), the rules that
  take matrices only and the low-rank group keys (:attr:`Rule.weights_group`); its tests, the
  class each rule must get (:attr:`Rule.sharded`);
* :mod:`optedu.practice.cheatsheet_entries`: ``LINEAGE`` (:attr:`Rule.parent`,
  :attr:`Rule.change`), ``REFERENCES`` and each entry's chapter;
* :mod:`optedu.choosing.contestants`: ``EXCLUDED`` (:attr:`Rule.excluded`);
* the tests: ``REFERENCE_TESTS`` and the matrices-only rows in ``tests/optimizers.py``, the
  layout settings of ``tests/precision/test_memory.py`` (:attr:`Rule.memory_settings`), and
  ``tests/test_layout.py``'s completeness check, which names every missing piece of a rule.

Why here, in ``optim``: every folder of optedu may import ``optim`` and nothing else may be
imported by all of them (``tests/test_layout.py``), so the one table they all read lives here.
It imports nothing of optedu but two rule classes that a row's settings name (SAM's base); a
class is named by its module as a string, so the two 8-bit rules of ``precision/`` are rows
too without ``optim`` importing ``precision``.

**Decoupled weight decay is spelled three ways**, each after the reference the rule is proved
equal to (:attr:`Rule.decay` names the switch; ``tests/test_layout.py`` reads it from each
signature):

* ``decoupled_weight_decay`` (default ``False``): torch.optim's Adam, NAdam and RAdam, whose
  arguments these classes copy one for one (AdamW is Adam with it on); Adam8bit takes torch's
  Adam's arguments, so it too; DistributedShampoo, as optax-shampoo spells it;
* ``weight_decouple``: pytorch_optimizer's spelling, kept by the rules proved equal to it:
  AdEMAMix, Adan and Shampoo (default ``False``), LaProp, NorMuon, MuonClip, SophiaH and Scion
  (default ``True``);
* ``decouple``: the spelling of the authors' own packages: D-Adaptation's ``DAdaptAdam``
  (default ``False``), ``prodigyopt``'s Prodigy (default ``True``), torch-adopt's ADOPT
  (default ``False``).

Renaming any of them to one spelling would break the bit-for-bit comparison's shared
signature (the cheat sheet checks each default against the reference's) and the reader's
move between optedu and the package the chapter compares it with.

A rule without the switch decays one way only, its reference's (AdamW, Lion and MARS
decoupled, SGD coupled, L2 in the gradient): each class's docstring says which.

**Lookahead is not a row** (:mod:`optedu.training.lookahead`). It wraps an optimizer
*instance* and adds to whatever that optimizer is, so the columns have nothing of its own to
hold: ``small_run`` and ``memory_settings`` build ``cls(params, **kwargs)``, which it does not
take; its state is its base's plus one slow copy per parameter, not one closed form; its
``parent`` and ``change`` would name whichever base it wraps; and it has no chapter yet (an
averaging chapter is planned). SAM is a row because it takes ``params`` and a base *class*,
pytorch_optimizer's form of it. Lookahead therefore lives with the other weight averages in
``training/`` beside :mod:`optedu.training.swa_utils`, where no table looks for it, and is
proved equal to ``pytorch_optimizer.Lookahead`` by ``tests/training/test_lookahead.py``.

Imports: the standard library, torch, and two rule modules of this folder (``sgd``, ``adam``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .adam import AdamW
from .sgd import SGD

__all__ = ["Rule", "RULES", "CATALOGUE", "PARITY_TEST"]

#: the test file of every rule with a torch twin (a ``Pair`` in ``tests/optimizers.py``)
PARITY_TEST = "optim/test_parity.py"


@dataclass(frozen=True)
class Rule:
    """One optimizer class.

    Attributes:
        name: the class, as ``optedu`` exports it (``optedu.<name>``).
        module: the module that defines it (``"optedu.optim.adamax"``).
        chapter: the notebook stem of the chapter that teaches it (``book/<chapter>.ipynb``).
        parent: the rule it changes, its parent in the family tree (``""``: a root).
        change: what it changes, in one sentence.
        reference: ``(module, name)`` of what it is proved equal to: ``("torch.optim", name)``
            for a torch twin, else the reference package's class (or optax's function), or,
            where the authors publish no package, the module's path in their repository
            (MARS: ``("MARS.optimizers.mars", "MARS")``, never imported; ``same_arguments``
            is False, so nothing reads its defaults).
        test: the test file, relative to ``tests/``, that checks it against ``reference``
            (:data:`PARITY_TEST` for a torch twin run by the shared parity grid).
        state: its state in closed form for :mod:`optedu.precision.memory`: the keys of
            parameter-shaped buffers (``"step"`` first for a scalar tensor counter), or the
            name of a layout function there (``"adam"``, ``"lbfgs"``) where the layout
            depends on the shape or the settings.
        memory_settings: constructor arguments whose measured state must equal ``state``'s
            closed form (``tests/precision/test_memory.py``), one run each.
        small_run: arguments for a three-step run on a small MLP (every rule on FSDP2 shards,
            :mod:`optedu.distributed.sharded_rules`): non-default options where the rule has
            them, a rate at which three steps move the weights.
        sharded: what that run finds on FSDP2 shards: ``"element-wise"`` (the step reads one
            element at a time, so a shard steps alone), ``"fixed"`` (it reads whole tensors and
            adds what it reads over the mesh) or ``"refused"`` (it raises, naming the rule,
            the shape and the placement); ``make experiments-sharded-rules`` stores the run.
        decay: the argument that switches decoupled weight decay on or off, if any (see the
            module docstring for why it has three spellings).
        matrices_only: it refuses any parameter that is not 2-D (Muon).
        weights_group: keys the group of weight matrices carries (GaLore's and APOLLO's rank).
        same_arguments: the reference takes optedu's argument names, so the cheat sheet
            checks the defaults against it (optax's functions name theirs differently).
        excluded: why it does not compete in the benchmark of "Choosing an optimizer" (``""``:
            a ``Contestant`` in :mod:`optedu.choosing.contestants` builds it).
    """

    name: str
    module: str
    chapter: str
    parent: str
    change: str
    reference: tuple[str, str]
    test: str
    state: tuple[str, ...] | str
    memory_settings: tuple[Mapping[str, Any], ...]
    small_run: Mapping[str, Any]
    sharded: str = "element-wise"
    decay: str = ""
    matrices_only: bool = False
    weights_group: Mapping[str, Any] = field(default_factory=dict)
    same_arguments: bool = True
    excluded: str = ""

    @property
    def twin(self) -> bool:
        """Whether torch.optim has the same class (the parity grid's rows, SparseAdam, LBFGS)."""
        return self.reference == ("torch.optim", self.name)


# reasons shared by several rules for not competing in the benchmark
_LR_FREE = ("learning-rate-free (self-tuning), added after the grid was run; chapter "
            "'Learning-rate-free optimizers' compares it with AdamW tuned over a grid and "
            "schedule-free AdamW")
_TWO_MOMENTA = ("added after the grid was run; chapter 'Two momenta' compares it with AdamW "
                "tuned alike on the digits MLP")
_CAUTION = ("added after the grid was run; chapter 'Variance reduction and caution' "
            "compares it with AdamW tuned alike on the digits MLP")
_LOW_MEMORY = ("added after the grid was run; chapter 'Training in less memory' compares it "
               "with AdamW tuned alike on the digits MLP")

# In the order of the family tree: each rule after its parent, children in the order the cheat
# sheet's tree lists them.
CATALOGUE: tuple[Rule, ...] = (
    Rule("SGD", "optedu.optim.sgd", chapter="gradient_descent",
         parent="",
         change=("Step against the minibatch gradient; momentum sums past gradients, so steady "
                 "directions speed up and oscillations cancel."),
         reference=("torch.optim", "SGD"), test=PARITY_TEST,
         state="sgd",
         memory_settings=(dict(lr=0.1), dict(lr=0.1, momentum=0.9)),
         small_run=dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    Rule("ASGD", "optedu.optim.asgd", chapter="asgd",
         parent="SGD",
         change="Averages the iterates: the average sits below the last iterate's noise floor.",
         reference=("torch.optim", "ASGD"), test=PARITY_TEST,
         state="asgd",
         memory_settings=({},),
         small_run=dict(lr=0.05, t0=1),
         excluded="its averaged weights are kept apart and not yet swapped in for evaluation"),
    Rule("SGDScheduleFree", "optedu.optim.schedule_free", chapter="schedule_free",
         parent="SGD",
         change=("Replaces the decaying schedule by an interpolation between the iterate and its "
                 "running average."),
         reference=("schedulefree", "SGDScheduleFree"), test="optim/test_schedule_free.py",
         state=("z",),
         memory_settings=({},),
         small_run=dict(lr=0.1)),
    Rule("Rprop", "optedu.optim.rprop", chapter="rprop",
         parent="SGD",
         change=("Keeps only the gradient's sign, with a per-weight step that grows while the "
                 "sign holds and shrinks when it flips."),
         reference=("torch.optim", "Rprop"), test=PARITY_TEST,
         state=("step", "prev", "step_size"),
         memory_settings=({},),
         small_run=dict(lr=0.01),
         excluded="a full-batch method: sign agreement between mini-batches is noise"),
    Rule("LARS", "optedu.optim.lars", chapter="lamb_lars",
         parent="SGD",
         change=("Sets each tensor's step to a fraction of its norm (a trust ratio), for very "
                 "large batches."),
         reference=("optax", "lars"), test="optim/test_lars_lamb.py",
         state=("momentum_buffer",),
         memory_settings=(dict(lr=0.1),),
         small_run=dict(lr=0.1, weight_decay=0.01, trust_coefficient=0.02),
         sharded="fixed",
         same_arguments=False),
    Rule("Muon", "optedu.optim.muon", chapter="muon",
         parent="SGD",
         change=("Replaces a weight matrix's momentum by a nearly semi-orthogonal one "
                 "(Newton-Schulz): singular values near 1."),
         reference=("torch.optim", "Muon"), test=PARITY_TEST,
         state=("momentum_buffer",),
         memory_settings=({},),
         small_run=dict(lr=0.02),
         sharded="fixed",
         matrices_only=True),
    Rule("Adagrad", "optedu.optim.adagrad", chapter="adagrad",
         parent="SGD",
         change=("Divides each coordinate by the root of its summed squared gradients: rare "
                 "features get larger steps."),
         reference=("torch.optim", "Adagrad"), test=PARITY_TEST,
         state=("step", "sum"),
         memory_settings=({},),
         small_run=dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    Rule("RMSprop", "optedu.optim.rmsprop", chapter="rmsprop",
         parent="Adagrad",
         change="Replaces AdaGrad's growing sum by a moving average, so the rate no longer dies.",
         reference=("torch.optim", "RMSprop"), test=PARITY_TEST,
         state="rmsprop",
         memory_settings=({}, dict(momentum=0.9, centered=True)),
         small_run=dict(lr=0.01, momentum=0.5, centered=True)),
    Rule("Adadelta", "optedu.optim.adadelta", chapter="adadelta",
         parent="Adagrad",
         change=("Replaces the rate by the RMS of past updates over the RMS of gradients: steps "
                 "in θ's units."),
         reference=("torch.optim", "Adadelta"), test=PARITY_TEST,
         state=("step", "square_avg", "acc_delta"),
         memory_settings=({},),
         small_run=dict(lr=1.0, rho=0.9)),
    Rule("Adam", "optedu.optim.adam", chapter="adam",
         parent="RMSprop",
         change=("RMSprop's divisor plus momentum (an average of g), both corrected for their "
                 "start at zero."),
         reference=("torch.optim", "Adam"), test=PARITY_TEST,
         state="adam",
         memory_settings=({}, dict(amsgrad=True)),
         small_run=dict(lr=0.01, amsgrad=True, weight_decay=0.01),
         decay="decoupled_weight_decay"),
    Rule("Adamax", "optedu.optim.adamax", chapter="adamax_nadam",
         parent="Adam",
         change=("Divides by a decaying maximum of |g| (the ∞-norm) instead of a root mean "
                 "square."),
         reference=("torch.optim", "Adamax"), test=PARITY_TEST,
         state=("step", "exp_avg", "exp_inf"),
         memory_settings=({},),
         small_run=dict(lr=0.02)),
    Rule("NAdam", "optedu.optim.nadam", chapter="adamax_nadam",
         parent="Adam",
         change="Puts Nesterov's look-ahead into Adam's first moment.",
         reference=("torch.optim", "NAdam"), test=PARITY_TEST,
         state="nadam",
         memory_settings=({},),
         small_run=dict(lr=0.01),
         decay="decoupled_weight_decay"),
    Rule("RAdam", "optedu.optim.radam", chapter="radam",
         parent="Adam",
         change=("Switches the divisor on only once its variance is estimated well enough: a "
                 "warmup built into the rule."),
         reference=("torch.optim", "RAdam"), test=PARITY_TEST,
         state=("step", "exp_avg", "exp_avg_sq"),
         memory_settings=({},),
         small_run=dict(lr=0.01),
         decay="decoupled_weight_decay"),
    Rule("SparseAdam", "optedu.optim.sparse_adam", chapter="sparse_adam",
         parent="Adam",
         change="Reads and writes only the rows that a sparse gradient touches.",
         reference=("torch.optim", "SparseAdam"), test="optim/test_sparse_adam.py",
         state=("exp_avg", "exp_avg_sq"),
         memory_settings=({},),
         small_run=dict(lr=0.01),
         sharded="refused",
         excluded="sparse gradients only (embedding rows); these models have dense ones"),
    Rule("Adam8bit", "optedu.precision.adam8bit", chapter="memory",
         parent="Adam",
         change=("Stores m and v in 8 bits, quantised block by block: about a quarter of the "
                 "state."),
         reference=("bitsandbytes.optim", "Adam8bit"), test="precision/test_adam8bit.py",
         state="adam8bit",
         memory_settings=(dict(block_size=8, min_8bit_size=16),),
         small_run=dict(lr=0.01, min_8bit_size=0),
         sharded="refused",
         decay="decoupled_weight_decay",
         excluded=("Adam's rule with quantised state: its loss curve matches Adam's (chapter "
                  "'Optimizer memory'); it would compete as Adam does")),
    Rule("Adafactor", "optedu.optim.adafactor", chapter="adafactor",
         parent="Adam",
         change=("Keeps a matrix's second moment as a row and a column: memory of rows + columns,"
                 " not their product."),
         reference=("torch.optim", "Adafactor"), test=PARITY_TEST,
         state="adafactor",
         memory_settings=({},),
         small_run=dict(lr=0.01),
         sharded="fixed"),
    Rule("CAME", "optedu.optim.came", chapter="adafactor",
         parent="Adafactor",
         change=("Adds momentum, divided by a factored average of (update − momentum)²: long "
                 "steps where the update agrees with its momentum."),
         reference=("came_pytorch", "CAME"), test="optim/test_came.py",
         state="came",
         memory_settings=(dict(lr=0.01),),
         small_run=dict(lr=0.01, weight_decay=0.01),
         sharded="refused",
         excluded=("added after the grid was run; it is measured against came-pytorch and "
                   "taught in the chapter 'Adafactor'")),
    Rule("AdamW", "optedu.optim.adam", chapter="adamw",
         parent="Adam",
         change=("Takes weight decay out of the gradient, so the divisor no longer weakens it on "
                 "large-gradient weights."),
         reference=("torch.optim", "AdamW"), test=PARITY_TEST,
         state="adam",
         memory_settings=({}, dict(amsgrad=True)),
         small_run=dict(lr=0.01, weight_decay=0.1)),
    Rule("AdamAtan2", "optedu.optim.adam_atan2", chapter="loss_spikes",
         parent="AdamW",
         change=("Replaces m̂/(√v̂+ε) by a·atan2(m̂, b√v̂): no ε, the same step at every "
                 "gradient scale, bounded by aπ/2."),
         reference=("adam_atan2_pytorch", "AdamAtan2"), test="optim/test_adam_atan2.py",
         state="adam_atan2",
         memory_settings=({}, dict(regen_reg_rate=0.1)),
         small_run=dict(lr=0.01, weight_decay=0.1),
         excluded=("added after the grid was run; it is measured against adam-atan2-pytorch "
                   "and taught in the chapter 'Loss spikes'")),
    Rule("StableAdamW", "optedu.optim.stable_adamw", chapter="loss_spikes",
         parent="AdamW",
         change=("Divides a tensor's rate by the RMS of g²/v when over 1: a gradient that "
                 "outruns v takes no long step."),
         reference=("optimi", "StableAdamW"), test="optim/test_stable_adamw.py",
         state="stable_adamw",
         memory_settings=(dict(lr=0.01), dict(lr=0.01, weight_decay=0.0)),
         small_run=dict(lr=0.01, weight_decay=0.1),
         sharded="fixed",
         excluded=("added after the grid was run; it is measured against torch-optimi and "
                   "taught in the chapter 'Loss spikes'")),
    Rule("AdamW8bit", "optedu.precision.adam8bit", chapter="memory",
         parent="AdamW",
         change="AdamW with its state in 8 bits, as Adam8bit.",
         reference=("bitsandbytes.optim", "AdamW8bit"), test="precision/test_adam8bit.py",
         state="adam8bit",
         memory_settings=(dict(block_size=8, min_8bit_size=16),),
         small_run=dict(lr=0.01, min_8bit_size=0),
         sharded="refused",
         excluded="AdamW's rule with quantised state, as Adam8bit"),
    Rule("AdamWScheduleFree", "optedu.optim.schedule_free", chapter="schedule_free",
         parent="AdamW",
         change="AdamW's step inside schedule-free averaging: no decay schedule, no fixed end.",
         reference=("schedulefree", "AdamWScheduleFree"), test="optim/test_schedule_free.py",
         state=("z", "exp_avg_sq"),
         memory_settings=({},),
         small_run=dict(lr=0.01)),
    Rule("Lamb", "optedu.optim.lamb", chapter="lamb_lars",
         parent="AdamW",
         change=("LARS's per-tensor trust ratio applied to AdamW's direction, for very large "
                 "batches."),
         reference=("optax", "lamb"), test="optim/test_lars_lamb.py",
         state=("step", "exp_avg", "exp_avg_sq"),
         memory_settings=(dict(lr=0.001),),
         small_run=dict(lr=0.01, weight_decay=0.01),
         sharded="fixed",
         same_arguments=False),
    Rule("Lion", "optedu.optim.lion", chapter="lion",
         parent="AdamW",
         change=("Steps by the sign of an interpolated momentum: one buffer, and every "
                 "coordinate's step is ±η before decay."),
         reference=("lion_pytorch", "Lion"), test="optim/test_lion.py",
         state=("exp_avg",),
         memory_settings=({},),
         small_run=dict(lr=0.001, weight_decay=0.1)),
    Rule("SophiaH", "optedu.optim.sophia_h", chapter="preconditioners",
         parent="AdamW",
         change=("Divides the momentum by an average of Hutchinson's Hessian diagonal, refreshed "
                 "every k steps; clips each coordinate at ρ."),
         reference=("pytorch_optimizer", "SophiaH"), test="optim/test_sophia_h.py",
         state=("momentum", "hessian_moment", "hessian"),
         memory_settings=({}, dict(num_samples=2, hessian_distribution="rademacher")),
         small_run=dict(lr=0.01, weight_decay=0.1, update_period=2),
         sharded="refused",
         decay="weight_decouple",
         excluded=("needs backward(create_graph=True), which the grid's runs do not call; "
                   "added after the grid was run and taught in the chapter 'Preconditioners'")),
    Rule("SAM", "optedu.optim.sam", chapter="flat_minima",
         parent="SGD",
         change=("Steps its base optimizer with the gradient taken ρ uphill of the weights: two "
                 "gradients a step, flatter minima."),
         reference=("pytorch_optimizer", "SAM"), test="optim/test_sam.py",
         state="sam",
         # between steps SAM holds its base's state; the base is named by class
         memory_settings=(dict(base_optimizer=SGD, lr=0.1, momentum=0.9),
                          dict(base_optimizer=AdamW, amsgrad=True)),
         small_run=dict(base_optimizer=None, lr=0.05, momentum=0.9, rho=0.05),
         sharded="fixed",
         excluded=("a wrapper that doubles any contestant's gradients a step, for generalisation "
                  "rather than speed; chapter 'Flat minima and sharpness-aware minimisation' "
                  "compares it with its base at equal steps and equal gradients")),
    Rule("DAdaptSGD", "optedu.optim.dadapt_sgd", chapter="lr_free",
         parent="SGD",
         change=("Replaces the learning rate by d/‖g₀‖, d a growing lower estimate of the "
                 "distance to a solution."),
         reference=("dadaptation", "DAdaptSGD"), test="optim/test_dadapt.py",
         state=("z", "s", "x0"),
         memory_settings=({}, dict(momentum=0.9)),
         small_run=dict(lr=1.0),
         sharded="refused",
         excluded=_LR_FREE),
    Rule("DoG", "optedu.optim.dog", chapter="lr_free",
         parent="SGD",
         change=("Sets the step to the farthest distance from x₀ over the root of the summed "
                 "squared gradient norms."),
         reference=("dog", "DoG"), test="optim/test_dog.py",
         state="dog",
         memory_settings=({},),
         small_run=dict(lr=1.0),
         sharded="fixed",
         excluded=_LR_FREE),
    Rule("LDoG", "optedu.optim.dog", chapter="lr_free",
         parent="DoG",
         change="DoG's step size computed per tensor.",
         reference=("dog", "LDoG"), test="optim/test_dog.py",
         state="ldog",
         memory_settings=({},),
         small_run=dict(lr=1.0),
         sharded="fixed",
         excluded=_LR_FREE),
    Rule("Shampoo", "optedu.optim.shampoo", chapter="shampoo",
         parent="Adagrad",
         change=("Full-matrix AdaGrad restricted to a Kronecker product: one factor per "
                 "dimension, each to the power −1/(2k)."),
         reference=("pytorch_optimizer", "Shampoo"), test="optim/test_shampoo.py",
         state="shampoo",
         memory_settings=({}, dict(momentum=0.9)),
         small_run=dict(lr=0.01, momentum=0.5),
         sharded="refused",
         decay="weight_decouple",
         excluded=("added after the grid was run; chapter 'Shampoo: Kronecker-factored "
                  "preconditioning' compares it, alone and grafted onto AdamW's step length, with"
                  " AdamW over grids of rates on the autoencoder")),
    Rule("DistributedShampoo", "optedu.optim.distributed_shampoo", chapter="shampoo",
         parent="Shampoo",
         change=("Shampoo as AlgoPerf's winner ran it: blocked factors, ε relative to the "
                 "spectrum, stale roots, AdaGrad's step length."),
         reference=("optax_shampoo", "distributed_shampoo"),
         test="optim/test_distributed_shampoo.py",
         state="distributed_shampoo",
         memory_settings=({}, dict(graft_type="rmsprop", block_size=3),
                          dict(preconditioner_type="input")),
         small_run=dict(lr=0.01, block_size=4, start_preconditioning_step=1,
                        graft_type="adagrad"),
         sharded="refused",
         decay="decoupled_weight_decay",
         same_arguments=False,
         excluded=("added after the grid was run; it is measured against its authors' "
                   "optax-shampoo and taught in the chapter 'Shampoo'")),
    Rule("SOAP", "optedu.optim.soap", chapter="soap",
         parent="Adam",
         change=("Runs Adam on the gradient rotated into the eigenbasis of Shampoo's factors GGᵀ "
                 "and GᵀG, refreshed every k steps."),
         reference=("pytorch_optimizer", "SOAP"), test="optim/test_soap.py",
         state="soap",
         memory_settings=({}, dict(merge_dims=True), dict(precondition_1d=True)),
         small_run=dict(lr=0.01, precondition_frequency=2),
         sharded="refused",
         excluded=("added after the grid was run; chapter 'SOAP: Adam in Shampoo's eigenbasis' "
                  "compares it with AdamW tuned alike on the digits MLP")),
    Rule("Kron", "optedu.optim.kron", chapter="psgd_kron",
         parent="SGD",
         change=("Momentum SGD times a Kronecker-factored P = QᵀQ fitted to the gradients by Li's"
                 " criterion; step RMS clipped at 1.1."),
         reference=("kron_torch", "Kron"), test="optim/test_kron.py",
         state="kron",
         memory_settings=({}, dict(mu_dtype=torch.bfloat16), dict(memory_save_mode="one_diag")),
         small_run=dict(lr=0.01, preconditioner_update_probability=1.0),
         sharded="refused",
         excluded=("added after the grid was run; chapter 'PSGD: fitting a preconditioner' "
                  "compares it with AdamW tuned alike on the digits MLP")),
    Rule("ADOPT", "optedu.optim.adopt", chapter="two_momenta",
         parent="Adam",
         change=("Divides the gradient by the second moment of earlier gradients, then averages: "
                 "converges for any β₂."),
         reference=("adopt", "ADOPT"), test="optim/test_adopt.py",
         state=("step", "exp_avg", "exp_avg_sq"),
         memory_settings=({}, dict(weight_decay=0.1, decouple=True)),
         small_run=dict(lr=0.01, weight_decay=0.01, decouple=True),
         decay="decouple",
         excluded=_TWO_MOMENTA),
    Rule("AdEMAMix", "optedu.optim.ademamix", chapter="two_momenta",
         parent="AdamW",
         change=("Adds a slow, uncorrected momentum (β₃ ≈ 0.9999) weighted by α to Adam's "
                 "numerator, with warmups of α and β₃."),
         reference=("pytorch_optimizer", "AdEMAMix"), test="optim/test_ademamix.py",
         state=("exp_avg", "exp_avg_sq", "exp_avg_slow"),
         memory_settings=({}, dict(t_alpha_beta3=10)),
         small_run=dict(lr=0.01, weight_decay=0.01, t_alpha_beta3=10),
         decay="weight_decouple",
         excluded=_TWO_MOMENTA),
    Rule("LaProp", "optedu.optim.laprop", chapter="two_momenta",
         parent="Adam",
         change=("Normalises each gradient first, then takes its momentum: the step stays bounded"
                 " for any β₁, β₂."),
         reference=("pytorch_optimizer", "LaProp"), test="optim/test_laprop.py",
         state="laprop",
         memory_settings=({}, dict(centered=True, ams_bound=True)),
         small_run=dict(lr=0.01, weight_decay=0.01),
         decay="weight_decouple",
         excluded=_TWO_MOMENTA),
    Rule("MARS", "optedu.optim.mars", chapter="mars_cautious",
         parent="AdamW",
         change=("Averages a gradient corrected by γβ₁/(1−β₁) times its change since the last "
                 "step (STORM's recursion, scaled)."),
         # the authors' MARS/optimizers/mars.py (github.com/AGI-Arena/MARS) is no package:
         # named by its path there, never imported; the tests compute what it specifies by
         # hand (and pytorch_optimizer's MARS where the two definitions agree)
         reference=("MARS.optimizers.mars", "MARS"), test="optim/test_mars.py",
         state="mars",
         memory_settings=({}, dict(amsgrad=True, mars_type="mars-lion")),
         small_run=dict(lr=0.01, weight_decay=0.1, amsgrad=True),
         sharded="refused",
         same_arguments=False,
         excluded=_CAUTION),
    Rule("CautiousAdamW", "optedu.optim.cautious", chapter="mars_cautious",
         parent="AdamW",
         change=("Zeroes the coordinates where the momentum and the gradient disagree in sign, "
                 "rescales the rest by n/(k+1)."),
         reference=("torch.optim", "AdamW"), test="optim/test_cautious.py",
         state="adam",
         memory_settings=({}, dict(amsgrad=True)),
         small_run=dict(lr=0.01, weight_decay=0.1),
         sharded="refused",
         excluded=_CAUTION),
    Rule("CautiousLion", "optedu.optim.cautious", chapter="mars_cautious",
         parent="Lion",
         change=("Zeroes the coordinates where the sign step and the gradient disagree, rescales "
                 "the rest by n/(k+1)."),
         reference=("lion_pytorch", "Lion"), test="optim/test_cautious.py",
         state=("exp_avg",),
         memory_settings=({},),
         small_run=dict(lr=0.001, weight_decay=0.1),
         sharded="refused",
         excluded=_CAUTION),
    Rule("Adan", "optedu.optim.adan", chapter="mars_cautious",
         parent="NAdam",
         change=("Builds its Nesterov momentum from the gradient's change: steps on m + β₂v, v "
                 "the average of gₜ − gₜ₋₁."),
         reference=("pytorch_optimizer", "Adan"), test="optim/test_adan.py",
         state="adan",
         memory_settings=({}, dict(adanorm=True)),
         small_run=dict(lr=0.01, weight_decay=0.01),
         decay="weight_decouple",
         excluded=_CAUTION),
    Rule("NorMuon", "optedu.optim.normuon", chapter="after_muon",
         parent="Muon",
         change=("Divides each row of the orthogonalised update by the root of its own running "
                 "mean square."),
         reference=("pytorch_optimizer", "NorMuon"), test="optim/test_normuon.py",
         state="normuon",
         memory_settings=({}, dict(update_scale="match_rms")),
         small_run=dict(lr=0.02),
         sharded="refused",
         decay="weight_decouple",
         excluded=("added after the grid was run; chapter 'After Muon' compares it with Muon and "
                  "AdamW tuned alike on the digits MLP")),
    Rule("MuonClip", "optedu.optim.muonclip", chapter="after_muon",
         parent="Muon",
         change=("Heavy-ball Muon, then shrinks the query and key rows of heads whose logits "
                 "passed a threshold."),
         reference=("pytorch_optimizer", "MuonClip"), test="optim/test_muonclip.py",
         state="muonclip",
         memory_settings=({},),
         small_run=dict(lr=0.02),
         sharded="refused",
         decay="weight_decouple",
         excluded=("Muon with heavy-ball momentum plus a clip of attention logits: the grid's "
                  "models have no attention it could clip")),
    Rule("Scion", "optedu.optim.scion", chapter="after_muon",
         parent="Muon",
         change=("Steps to the best point of a norm ball, one norm per layer (spectral, sign, "
                 "columns); constrained, shrinks θ by 1−γ."),
         reference=("pytorch_optimizer", "SCION"), test="optim/test_scion.py",
         state=("d",),
         memory_settings=({}, dict(constraint=True, momentum=0.5)),
         small_run=dict(lr=0.02),
         sharded="refused",
         decay="weight_decouple",
         excluded=("added after the grid was run; taught in the chapter 'After Muon', "
                   "proved equal to pytorch_optimizer's SCION")),
    Rule("GaLoreAdamW", "optedu.optim.galore", chapter="low_memory",
         parent="AdamW",
         change=("Runs Adam on the gradient projected onto its top-r singular subspace, refreshed"
                 " every T steps, and maps the step back."),
         reference=("galore_torch.adamw", "AdamW"), test="optim/test_galore.py",
         state="galore",
         # the projection keys go to a group of the matrices (memory.stepped)
         memory_settings=(dict(rank=2, update_proj_gap=10, scale=0.25, proj_type="std"),
                          dict(rank=2, update_proj_gap=10, scale=0.25, proj_type="full")),
         small_run=dict(lr=0.01, weight_decay=0.01),
         sharded="refused",
         weights_group=dict(rank=2, update_proj_gap=10, scale=0.25, proj_type="std"),
         excluded=_LOW_MEMORY),
    Rule("APOLLO", "optedu.optim.apollo", chapter="low_memory",
         parent="AdamW",
         change=("Scales the raw gradient per channel by the norm ratio of Adam's step on a "
                 "random low-rank projection."),
         reference=("apollo_torch.apollo", "AdamW"), test="optim/test_apollo.py",
         state="apollo",
         memory_settings=(dict(rank=2, proj="random", scale_type="channel", proj_type="std",
                               update_proj_gap=10, scale=1.0),
                          dict(rank=1, proj="random", scale_type="tensor", proj_type="std",
                               update_proj_gap=10, scale=128.0)),
         small_run=dict(lr=0.01, weight_decay=0.01),
         sharded="refused",
         weights_group=dict(rank=2, proj="random", scale_type="channel", proj_type="std",
                            update_proj_gap=10, scale=1.0),
         excluded=_LOW_MEMORY),
    Rule("AdamMini", "optedu.optim.adam_mini", chapter="low_memory",
         parent="AdamW",
         change=("Keeps one second moment per block (head, neuron, tensor) instead of one per "
                 "weight."),
         reference=("adam_mini", "Adam_mini"), test="optim/test_adam_mini.py",
         state="adam_mini",
         memory_settings=({},),
         small_run=dict(lr=0.01, weight_decay=0.01),
         sharded="refused",
         excluded=_LOW_MEMORY),
    Rule("DAdaptAdam", "optedu.optim.dadapt_adam", chapter="lr_free",
         parent="Adam",
         change=("Replaces Adam's learning rate by d, D-Adaptation's estimate of the distance to "
                 "a solution."),
         reference=("dadaptation", "DAdaptAdam"), test="optim/test_dadapt.py",
         state=("s", "exp_avg", "exp_avg_sq"),
         memory_settings=({},),
         small_run=dict(lr=1.0),
         sharded="refused",
         decay="decouple",
         excluded=_LR_FREE),
    Rule("Prodigy", "optedu.optim.prodigy", chapter="lr_free",
         parent="DAdaptAdam",
         change=("Weights each gradient by d² rather than d, and measures progress by ⟨g, x₀ − "
                 "x⟩."),
         reference=("prodigyopt", "Prodigy"), test="optim/test_prodigy.py",
         state="prodigy",
         memory_settings=({}, dict(betas=(0.0, 0.99), slice_p=3)),
         small_run=dict(lr=1.0),
         sharded="refused",
         decay="decouple",
         excluded=_LR_FREE),
    Rule("LBFGS", "optedu.optim.lbfgs", chapter="lbfgs",
         parent="",
         change=("Quasi-Newton: an inverse Hessian built from the last few pairs of step and "
                 "gradient differences."),
         reference=("torch.optim", "LBFGS"), test="optim/test_lbfgs.py",
         state="lbfgs",
         memory_settings=(dict(history_size=3, max_iter=9),),
         small_run=dict(lr=0.5, max_iter=3, history_size=3),
         sharded="refused",
         excluded="a full-batch method: each step re-evaluates the loss through a closure"),
)

#: the rows by class name
RULES: dict[str, Rule] = {rule.name: rule for rule in CATALOGUE}
