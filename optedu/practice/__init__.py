"""The practice part's generators: pages built from the chapters and the rules.

* :mod:`.quiz`: the interview questions, read from the chapters (``questions.json`` ships them),
  and :class:`~optedu.practice.quiz.Quiz` for practice in Jupyter or a terminal;
* :mod:`.casebook`: the broken training runs of the casebook;
* :mod:`.cheatsheet`: the cheat sheet's rows (rule, use, pitfall, defaults, bytes), and
  :mod:`.cheatsheet_entries`, its written lines (read from the catalogue's rows), the
  schedules' closed forms and the settings it measures with;
* :mod:`.conventions`: how frameworks and papers write each rule, and runners for torch and
  optax.

Imports: anything in optedu; nothing in optedu imports from here.
"""
