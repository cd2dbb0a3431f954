"""Comparison variants of the theory's forms: Nesterov's method as other sources write it.
Imports: :mod:`optedu.optim` and :mod:`optedu.theory` only.
"""
