"""The update rules: the base class, the argument checks, and one module per rule.

* :mod:`.optimizer`: the base :class:`Optimizer` every rule shares (``param_groups``, ``state``,
  ``step``, state dicts and hooks as torch.optim keeps them) and its small helpers;
* :mod:`._validation`: every argument check, in one wording (torch's where it has one);
* :mod:`._sharding`: parameters cut into pieces (FSDP2's DTensors): detect them, refuse a
  rule with a clear error, or add a whole-tensor sum over the mesh;
* the rules, one module each, named after its rule (``adam.py`` holds Adam and AdamW,
  ``sam.py`` SAM and ASAM), with the rule's one-tensor function and its torch-compatible class:
  every rule module is the ``module`` of a row of :mod:`.catalogue`, which says its chapter, its
  family (the rule it changes, and how) and the reference it is proved equal to. The catalogue
  is their list, not this docstring (``tests/test_layout.py`` fails on a module here that is
  neither a row's nor named in this docstring);
* :mod:`.catalogue`: one row per optimizer class (module, chapter, lineage, reference and its
  test, state layout, small-run settings, benchmark), which every table of the package reads;
* :mod:`.foreach`: the multi-tensor path's machinery (``foreach=True``); :mod:`.fused`: the
  compiled path's (``fused=True``); a rule's forms (``adam_foreach``, ``adam_fused``) sit beside
  its one-tensor function in its module, tested equal to it;
* :mod:`.variants`: rules as other frameworks, papers or sources write them, for comparison.

Imports: only the standard library, torch, and this folder. A rule module imports the base and
the checks (and a rule it is built on: LAMB uses LARS's trust ratio, MARS's Shampoo form
Muon's Newton–Schulz iteration); nothing here imports
another folder of optedu. The public names are re-exported by :mod:`optedu` (``optedu.Adam``,
``optedu.adam``): import them from there.
"""
