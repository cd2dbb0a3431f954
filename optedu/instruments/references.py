"""The reference packages' modules, imported as the chapters and tests compare them.

galore-torch 1.0 and apollo-torch 1.0.3 import ``transformers`` at import time only for a
version check (``require_version("torch>=1.5.0")`` in their AdamW's constructor), and their
package ``__init__`` imports their 8-bit variants, which import bitsandbytes (seconds). The
modules compared with optedu (``galore_torch.adamw``, ``galore_projector``;
``apollo_torch.apollo``, ``random_projector``, ``svd_projector``) call nothing else of either.
:func:`reference_module` imports such a module without its package's ``__init__``, with a
stand-in for that version check while it imports (taken out again after: a module left in
``sys.modules`` without a spec breaks ``importlib.util.find_spec("transformers")``, which torch's
own code asks). Nothing of the stand-in takes part in a step.

timm 1.0.31 (the cautious mask's other rescale, in the second conventions ledger) is a
package of models whose ``timm/__init__`` and ``timm/optim/__init__`` import its models, data
and utilities, and through them torchvision, which is not installed (it would pin another
torch). ``timm.optim.adamw`` itself imports torch and two helper modules only;
:func:`reference_module` imports it as ``reference_module("timm.optim", "adamw")``.

Imports: the standard library only.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator

__all__ = ["WITHOUT_INIT", "reference_module", "stubbed_transformers"]

# the packages whose modules are imported without their ``__init__``
WITHOUT_INIT = frozenset({"galore_torch", "apollo_torch", "timm"})


@contextlib.contextmanager
def stubbed_transformers() -> Iterator[None]:
    """``transformers.utils.versions.require_version`` (a no-op) in ``sys.modules`` while the
    block runs, if transformers is not installed; removed after it."""
    if importlib.util.find_spec("transformers") is not None:
        yield
        return
    root = types.ModuleType("transformers")
    utils = types.ModuleType("transformers.utils")
    versions = types.ModuleType("transformers.utils.versions")
    versions.require_version = lambda requirement, hint=None: None  # type: ignore[attr-defined]
    root.utils, utils.versions = utils, versions  # type: ignore[attr-defined]
    stubs = {"transformers": root, "transformers.utils": utils,
             "transformers.utils.versions": versions}
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for name in stubs:
            sys.modules.pop(name, None)


def reference_module(package: str, module: str) -> types.ModuleType:
    """``package.module`` imported without running ``package/__init__.py`` (nor, for a
    dotted ``package`` such as ``"timm.optim"``, any ``__init__`` above it).

    Each level of the package is registered as a bare namespace with its real ``__path__`` and
    spec, so the module's relative imports (``.galore_projector``) resolve as usual; the module
    keeps the stand-in ``require_version`` it imported (:func:`stubbed_transformers`).

    >>> reference_module("galore_torch", "adamw").AdamW.__name__
    'AdamW'
    """
    with stubbed_transformers():
        parts = package.split(".")
        for level in (".".join(parts[:k]) for k in range(1, len(parts) + 1)):
            if level in sys.modules:
                continue
            spec = importlib.util.find_spec(level)   # the parent is bare by now: not run
            if spec is None or spec.submodule_search_locations is None:
                raise ValueError(f"Invalid package value: {package!r} ({level!r} is not an "
                                 f"installed package)")
            bare = types.ModuleType(level)
            bare.__path__ = list(spec.submodule_search_locations)
            bare.__spec__ = spec
            sys.modules[level] = bare
        return importlib.import_module(f"{package}.{module}")
