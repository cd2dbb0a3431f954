"""Comparison variants of the update rules: a rule as another framework, a paper or a popular
source writes it.

Each is a small function or class labelled as a variant, tested, and run by a chapter beside
the rule that torch (and optedu's own rule) implements, so the difference is executed rather
than asserted. Nothing in optedu's optimizers uses them. Imports: :mod:`optedu.optim` only.
Variants of the training tools, schedules and Nesterov's forms live beside what they vary:
:mod:`optedu.training.variants`, :mod:`optedu.lr_scheduler.variants`,
:mod:`optedu.theory.variants`.
"""
