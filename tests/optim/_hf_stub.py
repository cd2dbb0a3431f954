"""The references galore-torch and apollo-torch, imported as the tests compare them: see
:mod:`optedu.instruments.references` (a stand-in for transformers' version check while they
import, and no package ``__init__``, which would import bitsandbytes)."""

from optedu.instruments.references import reference_module as load

__all__ = ["load"]
