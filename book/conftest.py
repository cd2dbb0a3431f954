"""pytest configuration for nbval runs of the chapters (``pytest --nbval book``).

The stored outputs are what the website shows: static figures, never live widgets. The kernels
nbval starts inherit this variable, and optedu.landscapes.explore draws small multiples when it
is set (tools/run_notebooks.py sets it too).
"""

import os

os.environ.setdefault("OPTEDU_STATIC", "1")
