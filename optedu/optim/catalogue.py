r"""The catalogue of optimizers: one :class:`Rule` per optimizer class optedu exports.

A row is plain data: where the class is defined, the chapter that teaches it, its place in the
family tree, the reference it is proved equal to and the test file that proves it, its state in
closed form, the settings of its small runs, whether it competes in the benchmark, and its line
of the cheat sheet. The package's
tables read it instead of keeping their own lists of names:

* :mod:`optedu.precision.memory`: ``STATE_LAYOUTS`` from :attr:`Rule.state`;
* :mod:`optedu.distributed.sharded_rules`: ``KWARGS`` (:attr:`Rule.small_run`), the rules that
  take matrices only and the low-rank group keys (:attr:`Rule.weights_group`); its tests, the
  class each rule must get (:attr:`Rule.sharded`);
* :mod:`optedu.practice.cheatsheet_entries`: ``ENTRIES`` (:attr:`Rule.sheet`, the rule's
  written line of the cheat sheet, with :attr:`Rule.chapter`), ``LINEAGE`` (:attr:`Rule.parent`,
  :attr:`Rule.change`) and ``REFERENCES``;
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

__all__ = ["Rule", "Sheet", "When", "RULES", "CATALOGUE", "PARITY_TEST"]

#: the test file of every rule with a torch twin (a ``Pair`` in ``tests/optimizers.py``)
PARITY_TEST = "optim/test_parity.py"


@dataclass(frozen=True)
class Sheet:
    """A rule's line of the cheat sheet, as written (:mod:`optedu.practice.cheatsheet` adds what
    it reads from the class: arguments, defaults, state bytes).

    Attributes:
        formula: the update in one line of LaTeX, at most 170 characters (the symbols of the
            sheet's key: :math:`g_t` the gradient, :math:`m_t, v_t` Adam's averages, hats
            their bias corrections).
        use: what it is used for, 20 to 120 characters.
        pitfall: one pitfall, 40 to 160 characters.
        section: the heading, as written, of the section that shows the pitfall: in the
            row's chapter, or in ``where``.
        where: the notebook stem of that section's chapter, if not the row's.
    """

    formula: str
    use: str
    pitfall: str
    section: str
    where: str = ""


@dataclass(frozen=True)
class When:
    """A state buffer that exists only while a group setting is truthy, in a row's
    :attr:`Rule.state`: ``When("max_exp_avg_sq", "amsgrad")`` is Adam's running maximum, kept
    with ``amsgrad=True``. The buffer has the parameter's shape and dtype. ``setting`` must be
    an argument of the row's class (``tests/test_layout.py`` reads the signature); a setting
    that switches a buffer on when positive (``momentum``) is written this way only where
    validation refuses a negative value, so truthy and positive agree.

    Attributes:
        key: the state key of the buffer (``"max_exp_avg_sq"``).
        setting: the group setting that switches it on (``"amsgrad"``).
    """

    key: str
    setting: str


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
            parameter-shaped buffers in the parameter's dtype (``"step"`` first for a scalar
            tensor counter), each key that a setting switches on written as a :class:`When`
            (Adam: ``("step", "exp_avg", "exp_avg_sq", When("max_exp_avg_sq",
            "amsgrad"))``); or the name of a layout function there (``"adafactor"``,
            ``"lbfgs"``) where the layout depends on the shape, or on the settings other than
            by switching a buffer on.
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
        sheet: its line of the cheat sheet (:class:`Sheet`).
    """

    name: str
    module: str
    chapter: str
    parent: str
    change: str
    reference: tuple[str, str]
    test: str
    state: tuple[str | When, ...] | str
    memory_settings: tuple[Mapping[str, Any], ...]
    small_run: Mapping[str, Any]
    sharded: str = "element-wise"
    decay: str = ""
    matrices_only: bool = False
    weights_group: Mapping[str, Any] = field(default_factory=dict)
    same_arguments: bool = True
    excluded: str = ""
    sheet: Sheet | None = None

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

# pieces of several cheat-sheet formulas
_ADAM_STEP = r"\eta\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}"
_SF = (r"y_t=(1-\beta)z_t+\beta x_t,\ z_{t+1}=z_t-\gamma_t GRAD"
       r",\ x_{t+1}=(1-c_{t+1})x_t+c_{t+1}z_{t+1}")
_8BIT = (r"m_t,v_t\text{ kept as }c_{q}a_b,\ "
         r"q=\arg\min_k|x/a_b-c_k|;\ ")

# In the order of the family tree: each rule after its parent, children in the order the cheat
# sheet's tree lists them.
CATALOGUE: tuple[Rule, ...] = (
    Rule("SGD", "optedu.optim.sgd", chapter="gradient_descent",
         parent="",
         change=("Step against the minibatch gradient; momentum sums past gradients, so steady "
                 "directions speed up and oscillations cancel."),
         reference=("torch.optim", "SGD"), test=PARITY_TEST,
         state=(When("momentum_buffer", "momentum"),),
         memory_settings=(dict(lr=0.1), dict(lr=0.1, momentum=0.9)),
         small_run=dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
         sheet=Sheet(
             r"b_t=\mu b_{t-1}+(1-\tau)g_t\ (b_1=g_1),\ "
             r"\theta_t=\theta_{t-1}-\eta b_t",
             "The baseline; with momentum and a step or cosine schedule, the "
             "classic recipe for vision models.",
             "torch's buffer is a sum, not an average: along a steady gradient "
             "the step tends to ηg/(1−μ), so a rate tuned for the EMA form "
             "must be multiplied by 1−μ.",
             "Three ways to write momentum", "momentum")),
    Rule("ASGD", "optedu.optim.asgd", chapter="asgd",
         parent="SGD",
         change="Averages the iterates: the average sits below the last iterate's noise floor.",
         reference=("torch.optim", "ASGD"), test=PARITY_TEST,
         state="asgd",
         memory_settings=({},),
         small_run=dict(lr=0.05, t0=1),
         excluded="its averaged weights are kept apart and not yet swapped in for evaluation",
         sheet=Sheet(
             r"\theta_t=(1-\lambda\eta_t)\theta_{t-1}-\eta_tg_t,\ "
             r"a_t=a_{t-1}+\mu_t(\theta_t-a_{t-1}),\ "
             r"\eta_t=\frac{\eta}{(1+\lambda\eta(t-1))^\alpha},\ "
             r"\mu_t=\frac{1}{\max(1,t-1-t_0)}",
             "Noisy convex problems: the average beats the last iterate's "
             "noise floor.",
             "The parameters stay the SGD iterates; the average is "
             "state['ax'], a plain copy of θ until step t0 + 2 (see t0's default).",
             "torch's ASGD")),
    Rule("SGDScheduleFree", "optedu.optim.schedule_free", chapter="schedule_free",
         parent="SGD",
         change=("Replaces the decaying schedule by an interpolation between the iterate and its "
                 "running average."),
         reference=("schedulefree", "SGDScheduleFree"), test="optim/test_schedule_free.py",
         state=("z",),
         memory_settings=({},),
         small_run=dict(lr=0.1),
         sheet=Sheet(
             _SF.replace("GRAD", r"\nabla f(y_t)"),
             "SGD without a decay schedule or a fixed end: evaluate the "
             "average x.",
             "The parameters hold y while training: without optimizer.eval() "
             "you evaluate or save y, not the average x.",
             "The train/eval switch")),
    Rule("Rprop", "optedu.optim.rprop", chapter="rprop",
         parent="SGD",
         change=("Keeps only the gradient's sign, with a per-weight step that grows while the "
                 "sign holds and shrinks when it flips."),
         reference=("torch.optim", "Rprop"), test=PARITY_TEST,
         state=("step", "prev", "step_size"),
         memory_settings=({},),
         small_run=dict(lr=0.01),
         excluded="a full-batch method: sign agreement between mini-batches is noise",
         sheet=Sheet(
             r"\Delta_t=\mathrm{clip}(\eta_\pm\Delta_{t-1},\Delta_{\min},"
             r"\Delta_{\max}),\ \theta_t=\theta_{t-1}-\Delta_t\,"
             r"\mathrm{sign}(g_t)\ (g_t:=0\text{ after a sign flip})",
             "Small full-batch problems; blind to the scale of the loss.",
             "Breaks with mini-batches: near a minimum the signs flip at "
             "random, and the sign of an average is not the average of signs.",
             "Why Rprop breaks with mini-batches")),
    Rule("LARS", "optedu.optim.lars", chapter="lamb_lars",
         parent="SGD",
         change=("Sets each tensor's step to a fraction of its norm (a trust ratio), for very "
                 "large batches."),
         reference=("optax", "lars"), test="optim/test_lars_lamb.py",
         state=("momentum_buffer",),
         memory_settings=(dict(lr=0.1),),
         small_run=dict(lr=0.1, weight_decay=0.01, trust_coefficient=0.02),
         sharded="fixed",
         same_arguments=False,
         sheet=Sheet(
             r"u_t=g_t+\lambda\theta,\ b_t=\mu b_{t-1}+\eta c"
             r"\frac{\|\theta\|}{\|u_t\|+\epsilon}u_t,\ \theta_t=\theta_{t-1}-b_t",
             "Large-batch SGD: each tensor moves by the same fraction of its "
             "norm.",
             "A zero-initialised bias has no trust ratio (ρ = 1): its first "
             "step is the raw η u, huge at LARS's large rates.",
             "Which tensors are excluded, and why")),
    Rule("Muon", "optedu.optim.muon", chapter="muon",
         parent="SGD",
         change=("Replaces a weight matrix's momentum by a nearly semi-orthogonal one "
                 "(Newton-Schulz): singular values near 1."),
         reference=("torch.optim", "Muon"), test=PARITY_TEST,
         state=("momentum_buffer",),
         memory_settings=({},),
         small_run=dict(lr=0.02),
         sharded="fixed",
         matrices_only=True,
         sheet=Sheet(
             r"B_t=\mu B_{t-1}+(1-\mu)G_t,\ O_t=\mathrm{NS}_k(G_t+\mu(B_t-G_t)),"
             r"\ \theta_t=(1-\eta\lambda)\theta_{t-1}-\eta'O_t,\ "
             r"\eta'=\eta\sqrt{\max(1,\text{rows}/\text{cols})}",
             "The hidden weight matrices of a network, beside AdamW for the "
             "rest.",
             "2-D parameters only (others raise), and embeddings and the "
             "output head belong to AdamW: split with muon_adamw_groups.",
             "Muon for hidden matrices, AdamW for the rest")),
    Rule("Adagrad", "optedu.optim.adagrad", chapter="adagrad",
         parent="SGD",
         change=("Divides each coordinate by the root of its summed squared gradients: rare "
                 "features get larger steps."),
         reference=("torch.optim", "Adagrad"), test=PARITY_TEST,
         state=("step", "sum"),
         memory_settings=({},),
         small_run=dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
         sheet=Sheet(
             r"G_t=G_{t-1}+g_t^2,\ \theta_t=\theta_{t-1}"
             r"-\frac{\eta\,g_t}{\sqrt{G_t}+\epsilon}",
             "Rare, badly scaled features (sparse inputs), convex problems.",
             "The sum only grows: on a moving target the rate shrinks after "
             "every change and never comes back.",
             "A moving target: where the rate dies")),
    Rule("RMSprop", "optedu.optim.rmsprop", chapter="rmsprop",
         parent="Adagrad",
         change="Replaces AdaGrad's growing sum by a moving average, so the rate no longer dies.",
         reference=("torch.optim", "RMSprop"), test=PARITY_TEST,
         state=("step", "square_avg", When("momentum_buffer", "momentum"),
                When("grad_avg", "centered")),
         memory_settings=({}, dict(momentum=0.9, centered=True)),
         small_run=dict(lr=0.01, momentum=0.5, centered=True),
         sheet=Sheet(
             r"v_t=\alpha v_{t-1}+(1-\alpha)g_t^2,\ \theta_t=\theta_{t-1}"
             r"-\frac{\eta\,g_t}{\sqrt{v_t}+\epsilon}",
             "AdaGrad that forgets: gradients whose size changes during "
             "training.",
             "No bias correction: with v₀ = 0 the first steps are longer than "
             "η, the first one η/√(1−α).",
             "The rule")),
    Rule("Adadelta", "optedu.optim.adadelta", chapter="adadelta",
         parent="Adagrad",
         change=("Replaces the rate by the RMS of past updates over the RMS of gradients: steps "
                 "in θ's units."),
         reference=("torch.optim", "Adadelta"), test=PARITY_TEST,
         state=("step", "square_avg", "acc_delta"),
         memory_settings=({},),
         small_run=dict(lr=1.0, rho=0.9),
         sheet=Sheet(
             r"\Delta_t=\frac{\sqrt{u_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}g_t,"
             r"\ \theta_t=\theta_{t-1}-\eta\Delta_t",
             "Steps in the units of θ. Sold as needing no rate, but ε then sets "
             "the step size, as a rate does.",
             "ε sets the start: the first step is about √(ε/(1−ρ)) whatever "
             "the gradient, then steps grow like √t.",
             r"What $\epsilon$ does at the start")),
    Rule("Adam", "optedu.optim.adam", chapter="adam",
         parent="RMSprop",
         change=("RMSprop's divisor plus momentum (an average of g), both corrected for their "
                 "start at zero."),
         reference=("torch.optim", "Adam"), test=PARITY_TEST,
         state=("step", "exp_avg", "exp_avg_sq", When("max_exp_avg_sq", "amsgrad")),
         memory_settings=({}, dict(amsgrad=True)),
         small_run=dict(lr=0.01, amsgrad=True, weight_decay=0.01),
         decay="decoupled_weight_decay",
         sheet=Sheet(
             r"\theta_t=\theta_{t-1}-" + _ADAM_STEP,
             "The default for most networks: steps of about η whatever the "
             "scale of the loss.",
             "weight_decay is L2: λθ joins g and is divided by √v̂, so weights "
             "with large gradients are hardly decayed. Use AdamW.",
             "Adam + L2 leaves the weights with large gradients undecayed", "adamw")),
    Rule("Adamax", "optedu.optim.adamax", chapter="adamax_nadam",
         parent="Adam",
         change=("Divides by a decaying maximum of |g| (the ∞-norm) instead of a root mean "
                 "square."),
         reference=("torch.optim", "Adamax"), test=PARITY_TEST,
         state=("step", "exp_avg", "exp_inf"),
         memory_settings=({},),
         small_run=dict(lr=0.02),
         sheet=Sheet(
             r"u_t=\max(\beta_2u_{t-1},|g_t|+\epsilon),\ \theta_t=\theta_{t-1}"
             r"-\frac{\eta\,m_t}{(1-\beta_1^t)u_t}",
             "Adam in the ∞-norm: the divisor is a decaying maximum of |g|, "
             "not an RMS.",
             "torch puts ε inside the max, Keras after it, the paper nowhere: "
             "the forms part when gradients near ε.",
             r"torch's form, and where its $\epsilon$ sits")),
    Rule("NAdam", "optedu.optim.nadam", chapter="adamax_nadam",
         parent="Adam",
         change="Puts Nesterov's look-ahead into Adam's first moment.",
         reference=("torch.optim", "NAdam"), test=PARITY_TEST,
         state="nadam",
         memory_settings=({},),
         small_run=dict(lr=0.01),
         decay="decoupled_weight_decay",
         sheet=Sheet(
             r"\theta_t=\theta_{t-1}-\frac{\eta}{\sqrt{\hat v_t}+\epsilon}"
             r"\Big(\frac{(1-\mu_t)g_t}{1-\Pi_t}"
             r"+\frac{\mu_{t+1}m_t}{1-\Pi_{t+1}}\Big)",
             "Adam with Nesterov's look-ahead in the first moment.",
             "Dozat's schedule: μₜ starts at β₁/2 and nears β₁ only over a "
             "long run, so short runs use less momentum than betas says.",
             "Dozat's momentum schedule")),
    Rule("RAdam", "optedu.optim.radam", chapter="radam",
         parent="Adam",
         change=("Switches the divisor on only once its variance is estimated well enough: a "
                 "warmup built into the rule."),
         reference=("torch.optim", "RAdam"), test=PARITY_TEST,
         state=("step", "exp_avg", "exp_avg_sq"),
         memory_settings=({},),
         small_run=dict(lr=0.01),
         decay="decoupled_weight_decay",
         sheet=Sheet(
             r"\theta_t=\theta_{t-1}-\eta\hat m_t r_t\frac{\sqrt{1-\beta_2^t}}"
             r"{\sqrt{v_t}+\epsilon}\text{ if }\rho_t>5,\ "
             r"\theta_t=\theta_{t-1}-\eta\hat m_t\text{ else}",
             "Adam with a warmup built in: once ρₜ > 5, rₜ < 1 (from the variance "
             "of the adaptive rate) shortens the steps.",
             "While ρₜ ≤ 5 the steps are un-adapted, η m̂ₜ: they scale with "
             "the gradient, so large gradients give large first steps.",
             r"The switch at $\rho_t > 5$: what torch does before it")),
    Rule("SparseAdam", "optedu.optim.sparse_adam", chapter="sparse_adam",
         parent="Adam",
         change="Reads and writes only the rows that a sparse gradient touches.",
         reference=("torch.optim", "SparseAdam"), test="optim/test_sparse_adam.py",
         state=("exp_avg", "exp_avg_sq"),
         memory_settings=({},),
         small_run=dict(lr=0.01),
         sharded="refused",
         excluded="sparse gradients only (embedding rows); these models have dense ones",
         sheet=Sheet(
             r"i\in S_t:\ \theta_{t,i}\mathrel{-}=\eta"
             r"\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}"
             r"\frac{m_{t,i}}{\sqrt{v_{t,i}}+\epsilon}",
             "Embedding tables with sparse=True: only the rows in the batch "
             "are read and written.",
             "Bias correction counts the tensor's steps, not the row's: a "
             "rarely seen row takes steps of several η for the same gradient.",
             "A row seen rarely: the global bias correction")),
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
                  "'Optimizer memory'); it would compete as Adam does"),
         sheet=Sheet(
             _8BIT + r"\text{Adam step}",
             "Adam's state in about a quarter of the memory, for large "
             "tensors (bitsandbytes' block-wise layout).",
             "A linear code rounds the small entries of v to 0, and Adam then "
             "divides by ε: steps of η m̂/ε. Keep v in the dynamic code, better "
             "no_zero.",
             "8-bit Adam: memory against drift")),
    Rule("Adafactor", "optedu.optim.adafactor", chapter="adafactor",
         parent="Adam",
         change=("Keeps a matrix's second moment as a row and a column: memory of rows + columns,"
                 " not their product."),
         reference=("torch.optim", "Adafactor"), test=PARITY_TEST,
         state="adafactor",
         memory_settings=({},),
         small_run=dict(lr=0.01),
         sharded="fixed",
         sheet=Sheet(
             r"\hat V_t=\frac{r_tc_t}{\bar r_t},\ U_t=\frac{G_t}{\sqrt{\hat V_t}},"
             r"\ \theta_t=(1-\eta\lambda)\theta_{t-1}-\frac{\alpha_t U_t}"
             r"{\max(1,\mathrm{RMS}(U_t)/d)}",
             "Training when memory binds: a matrix's second moment kept as a "
             "row and a column.",
             "torch's version has no first moment, and in float32 its ε₁ floor "
             "binds for small gradients: updates too long, then clipped.",
             "What torch 2.13 chose")),
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
                   "taught in the chapter 'Adafactor'"),
         sheet=Sheet(
             r"m_t=\beta_1m_{t-1}+(1-\beta_1)\hat U_t,\ "
             r"\theta_t=\theta_{t-1}-\eta\frac{m_t}{\sqrt{\hat S_t}},\ "
             r"\hat S_t\approx\overline{(\hat U_t-m_t)^2}\text{ factored}",
             "Adafactor's memory plus momentum, where Adam's state does not fit (its "
             "authors pre-trained BERT, GPT-2, T5).",
             "No bias correction: the confidence's average starts at zero, so a matrix's first "
             "step is η(1-β₁)/(β₁√(1-β₃)) ≈ 11η per weight, a vector's at most about 0.1η.",
             "CAME: Adafactor with a confidence")),
    Rule("AdamW", "optedu.optim.adam", chapter="adamw",
         parent="Adam",
         change=("Takes weight decay out of the gradient, so the divisor no longer weakens it on "
                 "large-gradient weights."),
         reference=("torch.optim", "AdamW"), test=PARITY_TEST,
         state=("step", "exp_avg", "exp_avg_sq", When("max_exp_avg_sq", "amsgrad")),
         memory_settings=({}, dict(amsgrad=True)),
         small_run=dict(lr=0.01, weight_decay=0.1),
         sheet=Sheet(
             r"\theta_t=(1-\eta\lambda)\theta_{t-1}-" + _ADAM_STEP,
             "Transformers and most large models: Adam with the decay taken out "
             "of the gradient (not divided by √v̂).",
             "The decay per step is ηλ: a schedule, or a new learning rate, "
             "changes the decay too.",
             "What a `weight_decay` number means")),
    Rule("AdamAtan2", "optedu.optim.adam_atan2", chapter="loss_spikes",
         parent="AdamW",
         change=("Replaces m̂/(√v̂+ε) by a·atan2(m̂, b√v̂): no ε, the same step at every "
                 "gradient scale, bounded by aπ/2."),
         reference=("adam_atan2_pytorch", "AdamAtan2"), test="optim/test_adam_atan2.py",
         # its ``steps`` is a Python int (no bytes)
         state=("exp_avg", "exp_avg_sq", When("param_init", "regen_reg_rate")),
         memory_settings=({}, dict(regen_reg_rate=0.1)),
         small_run=dict(lr=0.01, weight_decay=0.1),
         excluded=("added after the grid was run; it is measured against adam-atan2-pytorch "
                   "and taught in the chapter 'Loss spikes'"),
         sheet=Sheet(
             r"\theta_t=(1-\eta\lambda)\theta_{t-1}-\eta\,a\,\mathrm{atan2}"
             r"(\hat m_t,\,b\sqrt{\hat v_t})",
             "AdamW without ε: the same step at every gradient scale (wide layers, "
             "tiny gradients).",
             "Bounded, not small: a gradient back after a silence still steps up to "
             "aπ/2 ≈ 2η a coordinate, not η.",
             "Adam without ε: Adam-atan2")),
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
                   "taught in the chapter 'Loss spikes'"),
         sheet=Sheet(
             r"\eta_t=\eta/\max\big(1,\sqrt{\mathrm{mean}(g_t^2/v_t)}\big),\ "
             r"\theta_t=(1-\eta_t\lambda)\theta_{t-1}-\eta_t\frac{m_t}{\sqrt{v_t}+\epsilon}",
             "AdamW for layers whose gradient can outrun v (quiet, then back): "
             "the step stays near η.",
             "The RMS is over the whole tensor: one rare row of a large embedding "
             "table barely moves it, and that row still takes Adam's long step.",
             "Update clipping: StableAdamW")),
    Rule("AdamW8bit", "optedu.precision.adam8bit", chapter="memory",
         parent="AdamW",
         change="AdamW with its state in 8 bits, as Adam8bit.",
         reference=("bitsandbytes.optim", "AdamW8bit"), test="precision/test_adam8bit.py",
         state="adam8bit",
         memory_settings=(dict(block_size=8, min_8bit_size=16),),
         small_run=dict(lr=0.01, min_8bit_size=0),
         sharded="refused",
         excluded="AdamW's rule with quantised state, as Adam8bit",
         sheet=Sheet(
             _8BIT + r"\text{AdamW step}",
             "AdamW's state in about a quarter of the memory, for large "
             "tensors.",
             "Tensors under min_8bit_size elements (biases, small layers) keep "
             "float32 state, so a model of small tensors saves less.",
             "8-bit Adam: memory against drift")),
    Rule("AdamWScheduleFree", "optedu.optim.schedule_free", chapter="schedule_free",
         parent="AdamW",
         change="AdamW's step inside schedule-free averaging: no decay schedule, no fixed end.",
         reference=("schedulefree", "AdamWScheduleFree"), test="optim/test_schedule_free.py",
         state=("z", "exp_avg_sq"),
         memory_settings=({},),
         small_run=dict(lr=0.01),
         sheet=Sheet(
             _SF.replace("GRAD", r"\frac{\nabla f(y_t)}{\sqrt{\hat v_t}+\epsilon}"),
             "AdamW without a decay schedule or a fixed end (decay at y, "
             "through z).",
             "BatchNorm's running statistics are collected at y: after eval(), "
             "recompute them at x with a few forward passes.",
             "BatchNorm: statistics collected at the wrong point")),
    Rule("Lamb", "optedu.optim.lamb", chapter="lamb_lars",
         parent="AdamW",
         change=("LARS's per-tensor trust ratio applied to AdamW's direction, for very large "
                 "batches."),
         reference=("optax", "lamb"), test="optim/test_lars_lamb.py",
         state=("step", "exp_avg", "exp_avg_sq"),
         memory_settings=(dict(lr=0.001),),
         small_run=dict(lr=0.01, weight_decay=0.01),
         sharded="fixed",
         same_arguments=False,
         sheet=Sheet(
             r"u_t=\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}+\lambda\theta,\ "
             r"\theta_t=\theta_{t-1}-\eta\frac{\|\theta\|}{\|u_t\|}u_t",
             "Large-batch Adam: a trust ratio per tensor on AdamW's direction.",
             "Each step changes a tensor by at most η‖θ‖: a tensor near zero "
             "(a bias) can grow only by a factor 1+η a step.",
             "Which tensors are excluded, and why")),
    Rule("Lion", "optedu.optim.lion", chapter="lion",
         parent="AdamW",
         change=("Steps by the sign of an interpolated momentum: one buffer, and every "
                 "coordinate's step is ±η before decay."),
         reference=("lion_pytorch", "Lion"), test="optim/test_lion.py",
         state=("exp_avg",),
         memory_settings=({},),
         small_run=dict(lr=0.001, weight_decay=0.1),
         sheet=Sheet(
             r"\theta_t=(1-\eta\lambda)\theta_{t-1}-\eta\,\mathrm{sign}"
             r"(\beta_1m_{t-1}+(1-\beta_1)g_t),\ m_t=\beta_2m_{t-1}"
             r"+(1-\beta_2)g_t",
             "AdamW's job with one state buffer instead of two.",
             "Every coordinate moves by ±η: with AdamW's rate the steps are "
             "far too long; take a smaller η and a larger λ (keep ηλ).",
             "Learning rate and decay against AdamW's")),
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
                   "added after the grid was run and taught in the chapter 'Preconditioners'"),
         sheet=Sheet(
             r"\hat h=u\odot(Hu)\text{ every }k\text{ steps},\ "
             r"h_t=\beta_2h_{t-k}+(1-\beta_2)\hat h,\ "
             r"\theta_t=\theta_{t-1}-\eta\,\mathrm{clip}(m_t/\max(h_t,\epsilon),\pm\rho)",
             "Curvature in Adam's denominator: a diagonal Newton step, clipped where the curvature "
             "is small or negative.",
             "step() differentiates the gradient again: call loss.backward(create_graph=True) "
             "(it raises otherwise); where h_t ≤ 0 the floor ε makes the step ±ηρ.",
             "SophiaH: a clipped diagonal Newton step")),
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
                  "compares it with its base at equal steps and equal gradients"),
         sheet=Sheet(
             r"g=\nabla L(\theta_{t-1}),\ \hat\epsilon=\rho\frac{g}{\|g\|},\ \theta_t=\mathrm{base}"
             r"\big(\theta_{t-1},\nabla L(\theta_{t-1}+\hat\epsilon)\big)",
             "Wraps any optimizer to prefer minima whose whole ρ-ball is low: "
             "for generalisation, when data is short.",
             "Two gradients a step: at equal steps it costs twice the compute, "
             "so compare it with its base at equal gradient evaluations too.",
             "The experiment: SAM, ASAM and their bases, tuned alike")),
    Rule("DAdaptSGD", "optedu.optim.dadapt_sgd", chapter="lr_free",
         parent="SGD",
         change=("Replaces the learning rate by d/‖g₀‖, d a growing lower estimate of the "
                 "distance to a solution."),
         reference=("dadaptation", "DAdaptSGD"), test="optim/test_dadapt.py",
         state=("z", "s", "x0"),
         memory_settings=({}, dict(momentum=0.9)),
         small_run=dict(lr=1.0),
         sharded="refused",
         excluded=_LR_FREE,
         sheet=Sheet(
             r"\lambda_k=\frac{d_k}{\|g_0\|},\ s_{k+1}=s_k+\lambda_kg_k,\ d_{k+1}="
             r"\max\big(d_k,\frac{2\sum_i\lambda_i\langle g_i,s_i\rangle}{\|s_{k+1}\|}"
             r"\big),\ x_{k+1}=x_0-s_{k+1}",
             "SGD without a learning rate: the step grows from d0 as the run "
             "estimates its distance to a solution.",
             "The package's estimate is twice the ratio the lower bound proves, "
             "so d can pass D; on the book's MLP with momentum 0.9 it never trained.",
             "A lower bound on $D$ from the gradients")),
    Rule("DoG", "optedu.optim.dog", chapter="lr_free",
         parent="SGD",
         change=("Sets the step to the farthest distance from x₀ over the root of the summed "
                 "squared gradient norms."),
         reference=("dog", "DoG"), test="optim/test_dog.py",
         state="dog",
         memory_settings=({},),
         small_run=dict(lr=1.0),
         sharded="fixed",
         excluded=_LR_FREE,
         sheet=Sheet(
             r"\eta_t=c\frac{\max(r_\epsilon,\max_{i\le t}\|x_i-x_0\|)}"
             r"{\sqrt{\epsilon+\sum_{i\le t}\|g_i\|^2}},\ x_{t+1}=x_t-\eta_tg_t",
             "SGD whose step is the distance travelled over the root of the "
             "summed squared gradients.",
             "rbar is the distance travelled, not a bound: it can pass D. The step "
             "never decays, so the authors pair DoG with iterate averaging.",
             "Three estimators on a problem with known $D$")),
    Rule("LDoG", "optedu.optim.dog", chapter="lr_free",
         parent="DoG",
         change="DoG's step size computed per tensor.",
         reference=("dog", "LDoG"), test="optim/test_dog.py",
         state="ldog",
         memory_settings=({},),
         small_run=dict(lr=1.0),
         sharded="fixed",
         excluded=_LR_FREE,
         sheet=Sheet(
             r"\text{DoG per tensor: }\eta_t^{(l)}=c\frac{\bar r_t^{(l)}}"
             r"{\sqrt{\epsilon+\sum_{i\le t}\|g_i^{(l)}\|^2}}",
             "DoG with one step size per tensor, for layers whose gradients "
             "differ in scale.",
             "One estimate per tensor (rbar and eta are vectors to log), and the "
             "copy of x₀ held in the groups is one more model in memory.",
             "On a network, against tuned AdamW")),
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
                  " AdamW over grids of rates on the autoencoder"),
         sheet=Sheet(
             r"L_t=L_{t-1}+G_tG_t^\top,\ R_t=R_{t-1}+G_t^\top G_t,\ "
             r"W_{t+1}=W_t-\eta\,L_t^{-1/4}G_tR_t^{-1/4}",
             "Full-matrix AdaGrad made affordable: one d×d factor per dimension; "
             "in practice grafted onto Adam's step length.",
             "With preconditioning_compute_steps > 1 the first steps do not move "
             "and stale roots amplify new directions up to 1/√ε; lr is not on "
             "Adam's scale.",
             "Update frequency: stale roots and ε")),
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
                   "optax-shampoo and taught in the chapter 'Shampoo'"),
         sheet=Sheet(
             r"L\leftarrow\beta_2L+(1-\beta_2)G_bG_b^\top\text{ per block }b,\ "
             r"W_{t+1}=W_t-\eta\,\frac{\|g^{\text{graft}}_t\|}{\|P_t\|}P_t,\ "
             r"P_t=L^{-1/4}G_bR^{-1/4}",
             "Shampoo at scale, as AlgoPerf's winner ran it: blocked factors, a grafted "
             "step length.",
             "No root before start_preconditioning_step, stale roots between refreshes "
             "(preconditioning_compute_steps), and lr on the grafted rule's scale.",
             "Update frequency: stale roots and ε")),
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
                  "compares it with AdamW tuned alike on the digits MLP"),
         sheet=Sheet(
             r"G'=Q_L^\top GQ_R,\ \theta_t=\theta_{t-1}-\eta\,Q_L\,"
             r"\frac{\hat m'_t}{\sqrt{\hat v'_t}+\epsilon}\,Q_R^\top\ (m',v'\text{ of }G'),"
             r"\ Q\leftarrow\mathrm{QR}(LQ)\text{ each }k",
             "Matrix layers where Adam is the baseline, to see correlations between "
             "rows and columns, at two d×d factors per side.",
             "The first step only builds the factors (no move), and the bases are "
             "refreshed every k steps: a large k leaves Adam's moments in a stale "
             "basis.",
             "Sensitivity to the refresh period")),
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
                  "compares it with AdamW tuned alike on the digits MLP"),
         sheet=Sheet(
             r"Q_i\leftarrow Q_i-\frac{\eta_P}"
             r"{\|AA^\top+BB^\top\|}\mathrm{triu}(AA^\top-BB^\top)Q_i,\ "
             r"\theta_t=\theta_{t-1}-\eta\,\mathrm{clip}_{1.1}(Q^\top Q\,\hat m_t)",
             "Kronecker-factored preconditioning at the cost of a few matrix "
             "products a step, with no eigendecomposition.",
             "Each factor is a dense d×d matrix: an axis of width 3072 holds 9.4 M "
             "numbers; use memory_save_mode or max_size_triangular for wide layers.",
             "Memory: the factors' bytes")),
    Rule("ADOPT", "optedu.optim.adopt", chapter="two_momenta",
         parent="Adam",
         change=("Divides the gradient by the second moment of earlier gradients, then averages: "
                 "converges for any β₂."),
         reference=("adopt", "ADOPT"), test="optim/test_adopt.py",
         state=("step", "exp_avg", "exp_avg_sq"),
         memory_settings=({}, dict(weight_decay=0.1, decouple=True)),
         small_run=dict(lr=0.01, weight_decay=0.01, decouple=True),
         decay="decouple",
         excluded=_TWO_MOMENTA,
         sheet=Sheet(
             r"m_t=\beta_1m_{t-1}+(1-\beta_1)\mathrm{clip}\big(\frac{g_t}"
             r"{\max(\sqrt{v_{t-1}},\epsilon)},t^{1/4}\big),\ \theta_t=\theta_{t-1}-\eta m_t;"
             r"\ \text{then }v_t",
             "Adam's job, converging for any β₂: the gradient is divided by the "
             "second moment of earlier gradients only.",
             "The first step only records v₀ = g₀² and does not move; eps (1e-6) is a "
             "floor under √v, not a term added to it, so Adam's eps does not transfer.",
             "ADOPT's one-step delay")),
    Rule("AdEMAMix", "optedu.optim.ademamix", chapter="two_momenta",
         parent="AdamW",
         change=("Adds a slow, uncorrected momentum (β₃ ≈ 0.9999) weighted by α to Adam's "
                 "numerator, with warmups of α and β₃."),
         reference=("pytorch_optimizer", "AdEMAMix"), test="optim/test_ademamix.py",
         state=("exp_avg", "exp_avg_sq", "exp_avg_slow"),
         memory_settings=({}, dict(t_alpha_beta3=10)),
         small_run=dict(lr=0.01, weight_decay=0.01, t_alpha_beta3=10),
         decay="weight_decouple",
         excluded=_TWO_MOMENTA,
         sheet=Sheet(
             r"\theta_t=\theta_{t-1}-\eta\frac{\hat m_{1,t}+\alpha m_{2,t}}{\sqrt{\hat v_t}"
             r"+\epsilon},\ m_{2,t}=\beta_3m_{2,t-1}+(1-\beta_3)g_t",
             "Long runs of large models: a slow momentum (β₃ = 0.9999) keeps "
             "gradients thousands of steps old in the step.",
             "Without the α and β₃ warmups (t_alpha_beta3 ≈ the run's length) the "
             "slow momentum destabilises the start; in short runs it only adds noise.",
             "The slow momentum and its warmup")),
    Rule("LaProp", "optedu.optim.laprop", chapter="two_momenta",
         parent="Adam",
         change=("Normalises each gradient first, then takes its momentum: the step stays bounded"
                 " for any β₁, β₂."),
         reference=("pytorch_optimizer", "LaProp"), test="optim/test_laprop.py",
         # its bias corrections are Python floats; ``step`` is in the group (no bytes)
         state=("exp_avg", "exp_avg_sq", When("exp_mean_avg_beta2", "centered"),
                When("max_exp_avg_sq", "ams_bound")),
         memory_settings=({}, dict(centered=True, ams_bound=True)),
         small_run=dict(lr=0.01, weight_decay=0.01),
         decay="weight_decouple",
         excluded=_TWO_MOMENTA,
         sheet=Sheet(
             r"u_t=\frac{g_t}{\sqrt{\hat v_t}+\epsilon},\ m_t=\beta_1m_{t-1}"
             r"+(1-\beta_1)\eta u_t,\ \theta_t=\theta_{t-1}-m_t/c_t",
             "Adam's job when β₁ must be large or β₂ small: each step is at most "
             "η/√(1−β₂), whatever β₁.",
             "eps defaults to 1e-15 and is added before v's bias correction; in "
             "pytorch_optimizer weight_decouple=False does not decay at all (optedu: L2).",
             "LaProp: normalise, then average")),
    Rule("MARS", "optedu.optim.mars", chapter="mars_cautious",
         parent="AdamW",
         change=("Averages a gradient corrected by γβ₁/(1−β₁) times its change since the last "
                 "step (STORM's recursion, scaled)."),
         # the authors' MARS/optimizers/mars.py (github.com/AGI-Arena/MARS) is no package:
         # named by its path there, never imported; the tests compute what it specifies by
         # hand (and pytorch_optimizer's MARS where the two definitions agree)
         reference=("MARS.optimizers.mars", "MARS"), test="optim/test_mars.py",
         # the Lion and Shampoo forms allocate exp_avg_sq too, unused, as the authors' code
         # does; ``step`` is a Python int (no bytes); the exact form's ``previous_grad``
         # appears only once the caller stores it
         state=("exp_avg", "exp_avg_sq", "last_grad", When("max_exp_avg_sq", "amsgrad")),
         memory_settings=({}, dict(amsgrad=True, mars_type="mars-lion")),
         small_run=dict(lr=0.01, weight_decay=0.1, amsgrad=True),
         sharded="refused",
         same_arguments=False,
         excluded=_CAUTION,
         sheet=Sheet(
             r"c_t=g_t+\gamma\frac{\beta_1}{1-\beta_1}(g_t-g_{t-1}),\ m_t=\beta_1m_{t-1}"
             r"+(1-\beta_1)\frac{c_t}{\max(1,\|c_t\|)},\ \text{then AdamW's step on }m_t",
             "AdamW's job where the momentum lags a fast-changing gradient: a "
             "STORM-style correction (γ = 0.025).",
             "The correction uses the previous batch's gradient: it cuts the lag but "
             "adds noise (one batch's at γ = 1); all but 2-D tensors take plain AdamW (lr_1d).",
             "A momentum lags; a correction can remove the lag")),
    Rule("CautiousAdamW", "optedu.optim.cautious", chapter="mars_cautious",
         parent="AdamW",
         change=("Zeroes the coordinates where the momentum and the gradient disagree in sign, "
                 "rescales the rest by n/(k+1)."),
         reference=("torch.optim", "AdamW"), test="optim/test_cautious.py",
         state=("step", "exp_avg", "exp_avg_sq", When("max_exp_avg_sq", "amsgrad")),
         memory_settings=({}, dict(amsgrad=True)),
         small_run=dict(lr=0.01, weight_decay=0.1),
         sharded="refused",
         excluded=_CAUTION,
         sheet=Sheet(
             r"\phi_t=\mathbf{1}[m_t\odot g_t>0]\frac{n}{k+1},\ \theta_t=(1-\eta\lambda)"
             r"\theta_{t-1}-\eta\frac{\hat m_t\odot\phi_t}{\sqrt{\hat v_t}+\epsilon}",
             "AdamW with its hyperparameters, stepping only where the momentum "
             "agrees in sign with the gradient.",
             "Never uphill only to first order and on the batch the mask saw: large "
             "steps and the full loss can still go up; the rescale n/(k+1) enlarges them.",
             "Cautious updates: never uphill, to first order")),
    Rule("CautiousLion", "optedu.optim.cautious", chapter="mars_cautious",
         parent="Lion",
         change=("Zeroes the coordinates where the sign step and the gradient disagree, rescales "
                 "the rest by n/(k+1)."),
         reference=("lion_pytorch", "Lion"), test="optim/test_cautious.py",
         state=("exp_avg",),
         memory_settings=({},),
         small_run=dict(lr=0.001, weight_decay=0.1),
         sharded="refused",
         excluded=_CAUTION,
         sheet=Sheet(
             r"u_t=\mathrm{sign}(\beta_1m_{t-1}+(1-\beta_1)g_t),\ \theta_t=\theta_{t-1}"
             r"-\eta\,u_t\odot\mathbf{1}[u_t\odot g_t>0]\frac{n}{k+1}",
             "Lion with its hyperparameters, stepping only where the sign agrees "
             "with the gradient.",
             "The mask after the sign moves kept coordinates by ηn/(k+1); pytorch_optimizer's "
             "MARS, Lion form, masks before the sign, which erases the rescale.",
             "Where the mask goes")),
    Rule("Adan", "optedu.optim.adan", chapter="mars_cautious",
         parent="NAdam",
         change=("Builds its Nesterov momentum from the gradient's change: steps on m + β₂v, v "
                 "the average of gₜ − gₜ₋₁."),
         reference=("pytorch_optimizer", "Adan"), test="optim/test_adan.py",
         state="adan",
         memory_settings=({}, dict(adanorm=True)),
         small_run=dict(lr=0.01, weight_decay=0.01),
         decay="weight_decouple",
         excluded=_CAUTION,
         sheet=Sheet(
             r"\Delta_t=g_t-g_{t-1},\ n_t=\beta_3n_{t-1}+(1-\beta_3)(g_t+\beta_2\Delta_t)^2,\ "
             r"\theta_t=\theta_{t-1}-\eta\frac{\hat m_t+\beta_2\hat v_t}{\sqrt{\hat n_t}+\epsilon}",
             "Nesterov momentum without a second gradient: the look-ahead is "
             "extrapolated from the gradient's change.",
             "Its betas are the paper's complements (0.98, 0.92, 0.99); weight_decouple=False "
             "is not L2 but the paper's proximal decay θ/(1+ηλ).",
             "Adan: Nesterov momentum from the gradient's change")),
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
                  "AdamW tuned alike on the digits MLP"),
         sheet=Sheet(
             r"O_t=\mathrm{NS}(\tilde B_t),\ v_{t,i}=\beta_2v_{t-1,i}+(1-\beta_2)\,"
             r"\overline{O_{t,i:}^2},\ \theta_t=\theta_{t-1}-\eta' s\,O_t/(\sqrt{v_t}+\epsilon)",
             "Hidden matrices where Muon's update leaves some neurons (rows) far larger than "
             "others.",
             "Takes use_muon groups: the AdamW groups get adamw_lr, not lr; one number of state "
             "per row beside the momentum.",
             "NorMuon: one second moment per neuron")),
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
                  "models have no attention it could clip"),
         sheet=Sheet(
             r"B_t=\mu B_{t-1}+G_t,\ \eta'=0.2\sqrt{\max(A,B)}\eta,\ "
             r"\theta_t=(1-\eta\lambda)\theta_{t-1}-\eta'\mathrm{NS}(B_t),\ "
             r"W_{q,k}^h\leftarrow\gamma_h^{\alpha,1-\alpha}W_{q,k}^h",
             "Muon on attention models whose query-key logits grow without bound (Kimi K2).",
             "step() needs each head's largest logit (attention_max_logits) from the forward "
             "pass: without it nothing is clipped.",
             "MuonClip: capping attention logits at the source")),
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
                   "proved equal to pytorch_optimizer's SCION"),
         sheet=Sheet(
             r"d_t=(1-\alpha)d_{t-1}+\alpha g_t,\ \theta_t=(1-\gamma c)\theta_{t-1}+\gamma\rho\,"
             r"\mathrm{lmo}(d_t),\ c\in\{0,1\}",
             "Muon's step for every layer: spectral for hidden matrices, columns or sign for the "
             "embedding and head.",
             "momentum is the new gradient's weight (0.1 means 0.9); the constrained form "
             "needs the weights inside the ball of radius ρ.",
             "Scion: one norm per layer")),
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
         excluded=_LOW_MEMORY,
         sheet=Sheet(
             r"R_t=G_tP^\top,\ N_t=\mathrm{Adam}(R_t),\ W_t=W_{t-1}-\eta\alpha N_tP,\ "
             r"P=V_r^\top\text{ of }\mathrm{SVD}(G_t),\ \text{every }T\text{ steps}",
             "Pre-training or fine-tuning large matrices when Adam's state does not fit.",
             "Only matrices in a rank group are projected; scale α = 0.25 shrinks the step, so "
             "retune the rate; a float64 gradient's SVD runs in float32.",
             "GaLore: Adam in a subspace that follows the gradient")),
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
         excluded=_LOW_MEMORY,
         sheet=Sheet(
             r"R_t=G_tP^\top,\ P\sim N(0,1/r),\ s_j=\frac{\|\mathrm{Adam}(R_t)_j\|}"
             r"{\|R_{t,j}\|},\ W_t=W_{t-1}-\eta\sqrt{\alpha}\,s\odot G_t",
             "Near-SGD memory for large matrices: a random projection only sets each "
             "channel's scale.",
             "At rank 1 a channel's estimate is too noisy: APOLLO-Mini needs scale_type='tensor' "
             "and scale ≈ n/r to step like Adam.",
             "APOLLO: a random projection that only measures a scale")),
    Rule("AdamMini", "optedu.optim.adam_mini", chapter="low_memory",
         parent="AdamW",
         change=("Keeps one second moment per block (head, neuron, tensor) instead of one per "
                 "weight."),
         reference=("adam_mini", "Adam_mini"), test="optim/test_adam_mini.py",
         state="adam_mini",
         memory_settings=({},),
         small_run=dict(lr=0.01, weight_decay=0.01),
         sharded="refused",
         excluded=_LOW_MEMORY,
         sheet=Sheet(
             r"v_{t,b}=\beta_2v_{t-1,b}+(1-\beta_2)\,\mathrm{mean}_{i\in b}g_{t,i}^2,\ "
             r"\theta_t=\theta_{t-1}-\eta\frac{\hat m_t}{\sqrt{\hat v_{t,b}}+\epsilon}",
             "Half of Adam's state: one second moment per head, neuron or tensor of a transformer.",
             "Blocks come from parameter names: unmatched names fall back to one v per tensor; "
             "add the model's names before the first step.",
             "Adam-mini: one second moment per block")),
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
         excluded=_LR_FREE,
         sheet=Sheet(
             r"\text{Adam with }\eta_k=d_k,\ d_{k+1}=\max(d_k,\hat d_{k+1}),\ "
             r"\hat d_{k+1}=\frac{r_{k+1}}{(1-\sqrt{\beta_2})\|s_{k+1}\|_1},\ "
             r"s\text{: an EMA of }d_kg_k",
             "Adam(W) without a learning rate (decouple=True for AdamW's decay); "
             "lr stays 1 and scales d.",
             "use_bias_correction defaults to False: the early steps, several times "
             "the rate, inflate d and some seeds never train. Set it True.",
             "Why D-Adaptation overshot: the first steps")),
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
         excluded=_LR_FREE,
         sheet=Sheet(
             r"\text{Adam }\eta_t=d_t,\ d_{t+1}=\max(d_t,\hat d),\ \hat d="
             r"\frac{\sum_i\lambda_i\langle g_i,x_0-x_i\rangle}{\|\sum_i\lambda_ig_i"
             r"\|_1},\ \lambda_i\propto\beta_3^{t-i}d_i^2",
             "Adam(W) without a learning rate: D-Adaptation's estimate, gradients "
             "weighted by d²; pair it with a cosine decay.",
             "use_bias_correction defaults to False: every step runs above d·lr "
             "(several times at first). Even corrected, it trailed tuned AdamW here.",
             "On a network, against tuned AdamW")),
    Rule("AdaBelief", "optedu.optim.adabelief", chapter="radam",
         parent="Adam",
         change=("Divides by the average squared prediction error (g − m)² instead of g²: "
                 "steps grow where the gradient is as predicted."),
         reference=("pytorch_optimizer", "AdaBelief"), test="optim/test_adabelief.py",
         # ``step`` is in the group, an int (no bytes)
         state=("exp_avg", "exp_avg_var", When("max_exp_avg_var", "ams_bound")),
         memory_settings=({}, dict(ams_bound=True, rectify=True)),
         small_run=dict(lr=0.01, weight_decay=0.01, eps=1e-8),
         decay="weight_decouple",
         excluded=("added after the grid was run; it is measured against pytorch_optimizer "
                   "and taught in the chapter 'RAdam'"),
         sheet=Sheet(
             r"s_t=\beta_2s_{t-1}+(1-\beta_2)(g_t-m_t)^2+\epsilon,\ \theta_t=\theta_{t-1}"
             r"-\eta\frac{\hat m_t}{\sqrt{\hat s_t}+\epsilon}",
             "Adam with long steps where the gradient is as predicted (small g − m) and "
             "short ones where it surprises.",
             "ε joins s at every step: √ŝ never falls below about √(ε/(1−β₂)), 3e-7 at the "
             "default 1e-16 (not Adam's 1e-8) and 3e-3 with Adam's eps=1e-8.",
             "AdaBelief: Adam's divisor from the prediction error")),
    Rule("LBFGS", "optedu.optim.lbfgs", chapter="lbfgs",
         parent="",
         change=("Quasi-Newton: an inverse Hessian built from the last few pairs of step and "
                 "gradient differences."),
         reference=("torch.optim", "LBFGS"), test="optim/test_lbfgs.py",
         state="lbfgs",
         memory_settings=(dict(history_size=3, max_iter=9),),
         small_run=dict(lr=0.5, max_iter=3, history_size=3),
         sharded="refused",
         excluded="a full-batch method: each step re-evaluates the loss through a closure",
         sheet=Sheet(
             r"\theta_{k+1}=\theta_k-t_kH_kg_k,\ H_kg_k\text{ by two loops "
             r"over the last }m\text{ pairs }(s_i,y_i)",
             "Deterministic, smooth, full-batch losses of modest size "
             "(logistic regression, style transfer).",
             "Mini-batches break the curvature pairs (y from two different "
             "losses); without a line search the chapter's run blew up.",
             "Why L-BFGS is rare in deep learning")),
)

#: the rows by class name
RULES: dict[str, Rule] = {rule.name: rule for rule in CATALOGUE}
