"""``python -m optedu.experiments NAME``: run a chapter's grid (:mod:`.runner`)."""

import sys

from .runner import main

sys.exit(main())
