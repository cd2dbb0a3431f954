"""The chapters' experiments: each a grid of runs stored in the data folder, run by one runner.

A chapter that shows more runs than it can train in its 30 seconds reads them from a stored
file, written by ``make experiments-NAME``. Each experiment is one module here, named after
its file and target, which declares its grid as data (:class:`.grid.Grid`: its name, chapter,
jobs, stored file and the function that runs one job) beside the science it runs and the
functions the chapter reads the records with:

* :mod:`.grid`: :class:`~.grid.Grid`, the generic :class:`~.grid.Job` and its
  :class:`~.grid.Key`, and the registry (every module of this folder but the framework's);
* :mod:`.runner`: runs and resumes any grid (``python -m optedu.experiments NAME``), and
  re-runs stored jobs for the tests;
* the experiments, one module each: :mod:`.after_muon`, :mod:`.averaging`, :mod:`.batch`,
  :mod:`.cost`, :mod:`.flat`, :mod:`.folklore`, :mod:`.kron`, :mod:`.low_memory`, :mod:`.lr`, :mod:`.lrfree`,
  :mod:`.ladder`, :mod:`.mars`, :mod:`.mup`, :mod:`.shampoo`, :mod:`.soap`, :mod:`.spikes`,
  :mod:`.two_momenta`, :mod:`.warmup`, :mod:`.wsd`, :mod:`.zloss` (``make experiments-list``
  lists their chapters, costs and files).

Records are read and written by :mod:`optedu.instruments.store`, in a data folder passed in
(default :func:`optedu.instruments.store.folder`). Adding an experiment is one module here.

Imports: :mod:`optedu.optim`, :mod:`optedu.lr_scheduler`, :mod:`optedu.training`,
:mod:`optedu.precision`, :mod:`optedu.theory`, :mod:`optedu.instruments` and
:mod:`optedu.choosing` (the benchmark's workloads, contestants and trial) and
:mod:`optedu.distributed` (DiLoCo simulated in one process); nothing in optedu
but :mod:`optedu.practice` imports from here.
"""
