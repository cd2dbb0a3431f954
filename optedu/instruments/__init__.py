"""The chapters' instruments: how the book shows and checks things, not what it teaches.

* :mod:`.display`: numbers for reading (2.6 × 10⁻⁶, bounds), ``glue`` and its stale-number note
  in reader copies, figures as 2× palette PNGs;
* :mod:`.chapter`: the chapter kit: every chapter's set-up, its glue helpers, several runs'
  values as prose, a small regression loop;
* :mod:`.parity`: the optedu-beside-torch harness the tests and chapters share;
* :mod:`.references`: reference packages' modules imported as they are compared (galore-torch
  and apollo-torch without transformers or their ``__init__``);
* :mod:`.source`: ``show_source``: optedu's code as a chapter shows it;
* :mod:`.landscapes`: 2-D test surfaces, trajectories and their plots, sliders in Jupyter;
* :mod:`.moving`: the website's moving figures in Jupyter (widgets in a reader's kernel, the
  opening scene as a static figure elsewhere), run by optedu's rules;
* :mod:`.layouts`: a figure drawn again at the width it is read at (the site's column on a
  laptop and on a phone), its panels regridded, its text kept at its size;
* :mod:`.bench`: timing and traffic counting for the step benchmark;
* :mod:`.reproducible`: torch's CPU kernels capped at AVX2, so stored outputs reproduce.
* :mod:`.store`: runs stored as JSON lines with their meta data, in a data folder passed in
  (:func:`.store.folder` resolves the default: ``$OPTEDU_EXPERIMENTS`` or the repository's
  ``experiments/``).

Imports: :mod:`optedu.optim`, :mod:`optedu.lr_scheduler` and :mod:`optedu.training` (the
schedules and the clipping that :mod:`.moving` draws) and this folder only; nothing in optedu but :mod:`optedu.practice`
imports from here.
"""
