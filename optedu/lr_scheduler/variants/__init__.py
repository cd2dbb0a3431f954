"""Comparison variants of the schedules: a schedule as another source writes it, run by the
schedules chapter beside :mod:`optedu.lr_scheduler.schedules`. Imports: :mod:`optedu.optim` and
:mod:`optedu.lr_scheduler` only.
"""
