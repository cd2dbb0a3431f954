"""optax-shampoo 0.0.6 (Google's Distributed Shampoo in JAX, the authors' package), imported
so that it runs on the pinned jax 0.10.2, with three stand-ins that take no part in a step:

* ``flax.struct`` (its ``dataclass`` and ``field``; flax itself is not installed, it would
  bring a dozen packages): a frozen dataclass registered as a jax pytree, fields with
  ``pytree_node=False`` static, and flax's ``replace`` method. The reference builds its state
  and its diagnostics with it.
* ``jax.tree_map``, ``jax.tree_flatten`` and ``jax.tree_unflatten``, removed from jax since:
  the same functions of ``jax.tree_util``, set on the module while :func:`load` runs the
  reference's code (:func:`compat`).
* one line of ``matrix_inverse_pth_root``: the Newton loop's initial error ratio, ``True``, is
  ``jnp.ones_like(new_error)``. jax 0.10 refuses a loop whose carry changes type (a bool in, a
  float out); the value is the same (1 < 1.2: the loop runs, and a loop that never runs keeps
  its first root either way).

Its ``chex`` import is the real package (``requirements.txt``)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import sys
import types
from collections.abc import Iterator

import jax
import jax.numpy as jnp  # noqa: F401  (the patched line names jnp, which the module imports)

_OLD = "[0, new_mat_m_0, new_mat_h_0, new_mat_h_0, new_error, True])"
_NEW = "[0, new_mat_m_0, new_mat_h_0, new_mat_h_0, new_error, jnp.ones_like(new_error)])"
_ALIASES = {"tree_map": jax.tree_util.tree_map, "tree_flatten": jax.tree_util.tree_flatten,
            "tree_unflatten": jax.tree_util.tree_unflatten}


def _flax_struct() -> types.ModuleType:
    struct = types.ModuleType("flax.struct")

    def field(pytree_node: bool = True, **kwargs):
        return dataclasses.field(metadata={"pytree_node": pytree_node}, **kwargs)

    def dataclass(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        fields = dataclasses.fields(cls)
        cls.replace = lambda self, **updates: dataclasses.replace(self, **updates)
        return jax.tree_util.register_dataclass(
            cls, data_fields=[f.name for f in fields if f.metadata.get("pytree_node", True)],
            meta_fields=[f.name for f in fields if not f.metadata.get("pytree_node", True)])

    struct.field, struct.dataclass = field, dataclass
    return struct


@contextlib.contextmanager
def compat() -> Iterator[None]:
    """jax's removed tree functions on the jax module while the block runs."""
    missing = [name for name in _ALIASES if not hasattr(jax, name)]
    for name in missing:
        setattr(jax, name, _ALIASES[name])
    try:
        yield
    finally:
        for name in missing:
            delattr(jax, name)


def load() -> types.ModuleType:
    """``optax_shampoo.distributed_shampoo``, with the stand-ins above (the ``flax`` one in
    ``sys.modules`` only while it imports: a module there without a spec would break
    ``importlib.util.find_spec("flax")`` for other code)."""
    spec = importlib.util.find_spec("optax_shampoo.distributed_shampoo")
    with open(spec.origin) as f:
        source = f.read()
    assert source.count(_OLD) == 1, "optax-shampoo is not 0.0.6"
    module = types.ModuleType(spec.name)
    module.__file__ = spec.origin
    flax = types.ModuleType("flax")
    flax.__path__ = []
    flax.struct = _flax_struct()
    stubs = {"flax": flax, "flax.struct": flax.struct}
    sys.modules.update(stubs)
    sys.modules[spec.name] = module         # as an import leaves it (dataclasses look there)
    try:
        exec(compile(source.replace(_OLD, _NEW), spec.origin, "exec"), module.__dict__)
    finally:
        for name in stubs:
            sys.modules.pop(name, None)
    return module
