"""Choosing an optimizer: a workload benchmark on AlgoPerf's method, at laptop scale.

* :mod:`.workloads`: small training problems that ship with the package's dependencies (no
  downloads), each with a model, data, batch size, step budget and validation target, and a
  held-out variant of each;
* :mod:`.calibrate`: the validation targets, set by tuned baselines (AlgoPerf's
  target-setting runs, small);
* :mod:`.contestants`: the optimizers that compete, each with its schedule, one
  workload-agnostic search space and its defaults;
* :mod:`.search`: quasi-random trials drawn from a search space (fixed seed);
* :mod:`.trial`: one training run, from a seed to the validation curve and the steps it took
  to reach the target;
* :mod:`.profiles`: AlgoPerf's scoring: performance profiles over workloads and the area under
  them;
* :mod:`.runner`: the grid (``make experiments``): both rulesets, resumable, stored in
  the data folder (:func:`optedu.instruments.store.folder`);
* :mod:`.results`: the stored grid read back: times to target, scores, spread over seeds;
* :mod:`.sweeps`: one or two hyperparameters on a fixed grid, the others at their defaults
  (``make experiments-sweeps``): learning-rate curves, learning rate against weight decay;
* :mod:`.figures`: the part's tables and figures;
* :mod:`.lm`: a small decoder-only language model, byte by byte on the standard library's
  source, and its ladder of sizes (a workload, and the ladder chapter's model).

The benchmark's records are read and written by :mod:`optedu.instruments.store`. The other
chapters' experiments (folklore, learning-rate finding, warmup, flat minima, ...) live in
:mod:`optedu.experiments`.

Imports: :mod:`optedu.optim`, :mod:`optedu.lr_scheduler`, :mod:`optedu.training`,
:mod:`optedu.precision`, :mod:`optedu.theory` (the curvature tools), :mod:`optedu.instruments`
(the CPU-kernel pin) and this folder.
"""
