"""Comparison variants of the training tools: a gradient-norm monitor and parameter-group rules
as other sources write them, run by the chapters beside optedu's. Imports: :mod:`optedu.optim`
and :mod:`optedu.training` only.
"""
