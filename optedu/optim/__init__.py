"""The update rules: the base class, the argument checks, and one module per rule.

* :mod:`.optimizer`: the base :class:`Optimizer` every rule shares (``param_groups``, ``state``,
  ``step``, state dicts and hooks as torch.optim keeps them) and its small helpers;
* :mod:`._validation`: every argument check, in one wording (torch's where it has one);
* :mod:`._sharding`: parameters cut into pieces (FSDP2's DTensors): detect them, refuse a
  rule with a clear error, or add a whole-tensor sum over the mesh;
* one module per rule, each with its one-tensor function and its torch-compatible class:
  :mod:`.sgd`, :mod:`.adagrad`, :mod:`.rmsprop`, :mod:`.adam` (Adam and AdamW), :mod:`.adadelta`,
  :mod:`.adamax`, :mod:`.nadam`, :mod:`.radam`, :mod:`.sparse_adam`, :mod:`.adafactor`,
  :mod:`.came` (CAME: Adafactor with momentum and a factored confidence),
  :mod:`.muon`, :mod:`.lion`, :mod:`.lars`, :mod:`.lamb`, :mod:`.schedule_free`, :mod:`.rprop`,
  :mod:`.asgd`, :mod:`.lbfgs`; :mod:`.sam` (SAM and ASAM, around any of them);
  the learning-rate-free :mod:`.dadapt_sgd`, :mod:`.dadapt_adam`, :mod:`.prodigy`,
  :mod:`.dog` (DoG and LDoG); beyond the diagonal, :mod:`.shampoo` (Shampoo), :mod:`.distributed_shampoo` (Distributed
  Shampoo: blocks, grafting, stale roots, as AlgoPerf's winner ran it) and :mod:`.soap`
  (SOAP: Adam in Shampoo's eigenbasis), :mod:`.kron` (PSGD-Kron: a Kronecker-factored
  preconditioner fitted by Li's criterion); the recent :mod:`.adopt` (ADOPT), :mod:`.laprop`
  (LaProp: the momentum of the normalised gradient) and :mod:`.ademamix` (AdEMAMix);
  :mod:`.mars` (MARS: a STORM-style corrected momentum) and :mod:`.cautious` (the cautious
  mask; CautiousAdamW, CautiousLion), :mod:`.adan` (Adan: Nesterov momentum from the
  gradient's change); against loss spikes, :mod:`.adam_atan2` (Adam-atan2: no ε) and
  :mod:`.stable_adamw` (StableAdamW: AdamW with a per-tensor update clip); after Muon, :mod:`.normuon` (NorMuon: Muon with a
  second moment per row) and :mod:`.muonclip` (MuonClip: Muon and Kimi K2's QK-clip) and :mod:`.scion`
  (Scion: a norm-ball step, one norm per layer); the
  low-memory :mod:`.galore` (GaLore), :mod:`.apollo` (APOLLO) and :mod:`.adam_mini` (Adam-mini); the
  second-order :mod:`.sophia_h` (SophiaH: a clipped step by Hutchinson's Hessian diagonal);
* :mod:`.catalogue`: one row per optimizer class (module, chapter, lineage, reference and its
  test, state layout, small-run settings, benchmark), which every table of the package reads;
* :mod:`.foreach`: the multi-tensor path of SGD and Adam/AdamW (``foreach=True``), tested equal
  to the one-tensor functions; :mod:`.fused`: the compiled path (``fused=True``), the
  machinery of ``adam_fused`` and its kin;
* :mod:`.variants`: rules as other frameworks, papers or sources write them, for comparison.

Imports: only the standard library, torch, and this folder. A rule module imports the base and
the checks (and a rule it is built on: LAMB uses LARS's trust ratio, MARS's Shampoo form
Muon's Newton–Schulz iteration); nothing here imports
another folder of optedu. The public names are re-exported by :mod:`optedu` (``optedu.Adam``,
``optedu.adam``): import them from there.
"""
