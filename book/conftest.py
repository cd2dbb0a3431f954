"""pytest configuration for nbval runs of the chapters: ``pytest -p nbval --nbval book``
(pyproject.toml leaves the nbval plugin out of a plain ``pytest``: its import takes 5 s).

The stored outputs are what the website shows: static figures, never live widgets. The kernels
nbval starts inherit this variable, and optedu.instruments.landscapes.explore draws small multiples when it
is set (tools/run_notebooks.py sets it too). They also inherit torch's CPU kernels pinned to
AVX2 (optedu.instruments.reproducible), so that the stored outputs reproduce on any x86-64 processor.
"""

import os

from optedu.instruments.reproducible import pin_cpu_kernels

os.environ.setdefault("OPTEDU_STATIC", "1")
pin_cpu_kernels()
