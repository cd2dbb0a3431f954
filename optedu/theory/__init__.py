"""Theory the chapters execute: what a rule does on a problem simple enough to solve.

* :mod:`.quadratic`: quadratic theory: tunings, iteration matrices, stability, an SGD runner;
* :mod:`.momentum`: momentum's EMA and Sutskever forms, and their equivalence;
* :mod:`.nesterov`: Nesterov's look-ahead form beside torch's;
* :mod:`.curvature`: Hessian-vector products, the sharpness (top Hessian eigenvalue, plain or
  preconditioned, by Lanczos or power iteration) and Hutchinson's trace estimate;
* :mod:`.preconditioners`: every optimizer as θ ← θ − ηPg: its matrix P built dense for a
  small network (from the gradient statistics it keeps), and the spectrum of PH;
* :mod:`.variants`: Nesterov's method as other sources write it, for comparison.

Imports: :mod:`optedu.optim` and this folder only.
"""
