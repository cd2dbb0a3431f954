"""Parameter-group rules as other sources write them, for comparison with
``optedu.training.param_groups``.

* :func:`layerwise_lr_decay_by_name` -- VARIANT: the long lesson's
  layer-wise learning-rate decay, which picks a layer's parameters by a name
  fragment (``layer.i.`` / ``layers.i.``) and its no-decay tensors by other
  name fragments. Written as the lesson writes it; parameters whose names
  match no ``layer.i.`` (embeddings, a final norm, the head) end up in no
  group.
* :func:`no_decay_by_name` and :func:`no_decay_by_ndim_or_name` --
  VARIANT: the lesson's two no-decay rules (name fragments; ``ndim == 1``
  or a name containing ``norm`` / ``bias``).
* :func:`electra_layer_lrs` -- VARIANT: ELECTRA's ``_get_layer_lrs``
  (google-research/electra, ``model/optimization.py``), the learning rate
  of each name key, transcribed.

None of these is used by optedu's builders; the tests and the param_groups
chapter run them beside :func:`optedu.training.param_groups.layerwise_lr_groups` and
:func:`optedu.training.param_groups.no_decay_groups`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["NAME_FRAGMENTS", "no_decay_by_name", "no_decay_by_ndim_or_name",
           "layerwise_lr_decay_by_name", "configure_layerwise_lr_decay",
           "electra_layer_lrs"]

#: The long lesson's no-decay name fragments (its layer-wise decay).
NAME_FRAGMENTS = ("bias", "norm", "LayerNorm", "layer_norm")


def no_decay_by_name(name: str) -> bool:
    """VARIANT (the long lesson, layer-wise decay): exempt a name containing
    a fragment of :data:`NAME_FRAGMENTS`. Case-sensitive, so GPT-2-style
    ``ln_1``/``ln_f`` weights are decayed."""
    return any(fragment in name for fragment in NAME_FRAGMENTS)


def no_decay_by_ndim_or_name(name: str, param: torch.Tensor) -> bool:
    """VARIANT (the long lesson, AdamW helper): exempt 1-D tensors and the
    names containing ``norm`` or ``bias`` (case-insensitive)."""
    return param.ndim == 1 or "norm" in name.lower() or "bias" in name.lower()


def layerwise_lr_decay_by_name(model: nn.Module, base_lr: float,
                               n_layers: int = 12, lr_decay: float = 0.8,
                               weight_decay: float = 0.01
                               ) -> list[dict[str, Any]]:
    """VARIANT (the long lesson): groups of its configure_layerwise_lr_decay.

    Its docstring promises ``base_lr * lr_decay ** (n_layers - i)`` for
    "layer i", layer 0 being the embeddings and layer ``n_layers`` the top.
    Its code, reproduced here, takes a parameter into group ``i`` when its
    name contains ``layer.i.`` or ``layers.i.``; within a layer, names with a
    fragment of :data:`NAME_FRAGMENTS` get ``weight_decay = 0``. So "layer 0"
    is the first *block*, the top block trains at ``lr_decay * base_lr``,
    and parameters named otherwise are in no group.
    """
    param_groups: list[dict[str, Any]] = []
    for layer_idx in range(n_layers + 1):
        layer_lr = base_lr * (lr_decay ** (n_layers - layer_idx))
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if f"layer.{layer_idx}." in name or f"layers.{layer_idx}." in name:
                if no_decay_by_name(name):
                    no_decay.append(param)
                else:
                    decay.append(param)
        if decay:
            param_groups.append({"params": decay, "lr": layer_lr,
                                 "weight_decay": weight_decay})
        if no_decay:
            param_groups.append({"params": no_decay, "lr": layer_lr,
                                 "weight_decay": 0.0})
    return param_groups


def configure_layerwise_lr_decay(model: nn.Module, base_lr: float,
                                 n_layers: int = 12, lr_decay: float = 0.8,
                                 weight_decay: float = 0.01
                                 ) -> torch.optim.AdamW:
    """VARIANT (the long lesson): ``torch.optim.AdamW`` on
    :func:`layerwise_lr_decay_by_name`'s groups with ``lr=base_lr``, as the
    lesson returns it. torch accepts the missing parameters."""
    return torch.optim.AdamW(
        layerwise_lr_decay_by_name(model, base_lr, n_layers, lr_decay,
                                   weight_decay),
        lr=base_lr)


def electra_layer_lrs(learning_rate: float, layer_decay: float,
                      n_layers: int) -> dict[str, float]:
    """VARIANT (ELECTRA's released code): the learning rate of each
    variable-name key.

    Transcribed from ``_get_layer_lrs`` in google-research/electra
    ``model/optimization.py``: embeddings at depth 0, ``encoder/layer_i/``
    at ``i + 1``, ``task_specific/`` at ``n_layers + 2``, and rate
    ``learning_rate * layer_decay ** (n_layers + 2 - depth)``. Depth
    ``n_layers + 1`` holds nothing, so the top block trains at
    ``layer_decay ** 2`` times the head's rate; the authors call that a
    leftover of a removed pooler (google-research/electra issue 51). A
    variable that matches no key makes ELECTRA's optimizer raise
    ``ValueError``.
    """
    key_to_depths = {"/embeddings/": 0, "/embeddings_project/": 0,
                     "task_specific/": n_layers + 2}
    for layer in range(n_layers):
        key_to_depths[f"encoder/layer_{layer}/"] = layer + 1
    return {key: learning_rate * (layer_decay ** (n_layers + 2 - depth))
            for key, depth in key_to_depths.items()}
