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
  ``experiments/``;
* :mod:`.results`: the stored grid read back: times to target, scores, spread over seeds;
* :mod:`.sweeps`: one or two hyperparameters on a fixed grid, the others at their defaults
  (``make experiments-sweeps``): learning-rate curves, learning rate against weight decay;
* :mod:`.figures`: the part's tables and figures.
* :mod:`.folklore`: warmup against none, and the best rate per batch size, on the
  workloads (``make experiments-folklore``), for the chapter "The folklore, tested".
* :mod:`.lr_experiments`: the learning-rate range test on every base workload, and 1cycle and
  ReduceLROnPlateau against warmup with cosine (``make experiments-lr``), for the chapter
  "Finding the learning rate in practice".
* :mod:`.warmup_runs`: the largest peak rate that trains per warmup length, and the
  sharpness with and without warmup (``make experiments-warmup``), for the chapter "Why
  warmup works".
* :mod:`.flat_runs`: SGD with momentum and Adam, alone, with SAM and with ASAM, on a small
  problem that overfits, with the sharpness at the end (``make experiments-flat``), for the
  chapter "Flat minima and sharpness-aware minimisation".
* :mod:`.lrfree_runs`: D-Adaptation, Prodigy and DoG against AdamW and schedule-free AdamW
  tuned over a grid of rates, with schedules and the initial estimate swept (``make
  experiments-lrfree``), for the chapter "Learning-rate-free optimizers".
* :mod:`.wsd_runs`: warmup–stable–decay against cosine at three budgets, one run branched into
  decays (``make experiments-wsd``), for the chapter "Warmup–stable–decay".
* :mod:`.mup_runs`: Adam's best learning rate against width, standard parametrisation and µP
  (``make experiments-mup``), for the chapter "Learning rates that transfer across width".
* :mod:`.batch_runs`: steps to a target loss against the batch size and the gradient noise
  scale along training (``make experiments-batch``), for the chapter "How large a batch?".
* :mod:`.spike_runs`: a small transformer at a rate ten times too high, with each remedy
  (QK-norm, soft cap, QK-clip, β₂, clipping, warmup) (``make experiments-spikes``), for the
  chapter "Loss spikes".
* :mod:`.shampoo_runs`: Shampoo (pytorch_optimizer's, no grafting), Shampoo grafted onto
  AdamW's step length, and AdamW over grids of rates on the autoencoder (``make
  experiments-shampoo``), for the chapter "Shampoo: Kronecker-factored preconditioning".
* :mod:`.soap_runs`: SOAP against AdamW tuned alike, its refresh period swept, the exact
  refresh against the paper's (``make experiments-soap``), for the chapter "SOAP: Adam in
  Shampoo's eigenbasis".
* :mod:`.kron_runs`: PSGD-Kron against AdamW on the digits MLP, four rates each, three seeds
  (``make experiments-kron``), for the chapter "PSGD: fitting a preconditioner".
* :mod:`.two_momenta_runs`: ADOPT, LaProp and AdEMAMix against AdamW on the digits MLP
  (``make experiments-two-momenta``), for the chapter "Two momenta".
* :mod:`.mars_runs`: MARS (AdamW and Lion forms) and cautious AdamW against AdamW on the
  digits MLP (``make experiments-mars``), for the chapter "Variance reduction and caution".
* :mod:`.after_muon_runs`: AdamW, Muon, Muon with Polar Express and NorMuon on the digits
  MLP (``make experiments-after-muon``), for the chapter "After Muon".
* :mod:`.low_memory_runs`: AdamW, GaLore, APOLLO, APOLLO-Mini and Adam-mini on the digits
  MLP (``make experiments-low-memory``), for the chapter "Training in less memory".

Imports: :mod:`optedu.optim`, :mod:`optedu.lr_scheduler`, :mod:`optedu.training`,
:mod:`optedu.precision`, :mod:`optedu.theory` (the curvature tools), :mod:`optedu.instruments`
(the CPU-kernel pin) and this folder.
"""
