r"""Split a model between Muon and AdamW.

Muon (:class:`optedu.Muon`, ``torch.optim.Muon``) orthogonalises the update
of a weight *matrix* that maps one hidden activation to another; it refuses
anything that is not 2-D. Everything else goes to AdamW. The rule of
:func:`muon_adamw_groups` (Jordan et al., 2024; Liu et al., 2025):

* **Muon**: trainable 2-D parameters, except those registered by an
  ``nn.Embedding`` / ``nn.EmbeddingBag`` and those of the output ``head``;
* **AdamW**: the rest -- embeddings (a lookup table: each step touches the
  rows of the tokens seen, not a linear map of a dense input), the output
  head (its outputs are logits, not hidden features), biases, the scales and
  shifts of normalisation layers, and tensors with more than two dimensions
  (convolution kernels, which torch's Muon refuses; Keller Jordan's own
  code flattens them instead).

A head tied to the embedding is one parameter, registered by the embedding:
it goes to AdamW either way.

The head must be named (``head=None`` says "this model has no output
layer"): no rule finds it reliably, and a head left in Muon is the usual
mistake. A 2-D ``nn.Parameter`` registered directly by a custom module (a
learned positional table, say) is not recognised as an embedding and goes
to Muon: move such a tensor to the AdamW list yourself.
"""

from __future__ import annotations

from collections.abc import Collection

from torch import nn

from .param_groups import (EMBEDDING_TYPES, Group, _group, _owners, check_groups, split_no_decay,
                           trainable_parameters)
from optedu.optim._validation import invalid

__all__ = ["muon_adamw_groups"]


def muon_adamw_groups(model: nn.Module, head: nn.Module | str | None,
                      *, adamw_weight_decay: float | None = None,
                      no_decay: Collection[str] = ("bias", "norm")
                      ) -> tuple[list[Group], list[Group]]:
    """``(muon_groups, adamw_groups)``: hidden matrices for Muon, the rest
    for AdamW.

    Args:
        model: the network; only trainable parameters are grouped.
        head: the output layer, kept out of Muon (required): a submodule
            of ``model`` or the name prefix of its parameters (``"head"``,
            tied or frozen ones included). ``None``: the model has no head
            (every non-embedding matrix goes to Muon). A head that is not
            part of ``model`` raises ``ValueError``.
        adamw_weight_decay: if given, the AdamW parameters are split by
            :func:`optedu.training.param_groups.split_no_decay` into a group with
            this decay and one with ``weight_decay = 0`` (``no_decay``
            kinds); else one AdamW group that takes the optimizer's
            default.
        no_decay: kinds exempt from the AdamW decay (see
            :func:`~optedu.training.param_groups.split_no_decay`).

    Each list holds at most the non-empty groups, each with ``"params"``
    and ``"param_names"``; together they hold every trainable parameter
    exactly once (checked by :func:`~optedu.training.param_groups.check_groups`).
    Pass them as ``Muon(muon_groups, lr=...)`` and
    ``AdamW(adamw_groups, lr=...)``, and step both.
    """
    trainable = trainable_parameters(model)
    owners = _owners(model)
    # every name, a tied tensor under each of its names, frozen ones too
    every = dict(model.named_parameters(remove_duplicate=False))
    if isinstance(head, str):
        head_params = [p for n, p in every.items()
                       if n == head or n.startswith(head + ".")]
        if not head_params:
            raise invalid("head", repr(head), "a submodule, or the name "
                          "prefix of parameters of the model")
    elif isinstance(head, nn.Module):
        known = {id(p) for p in every.values()}
        head_params = [p for p in head.parameters() if id(p) in known]
        if not head_params:
            raise invalid("head", type(head).__name__, "a submodule of the "
                          "model, with parameters")
    elif head is None:
        head_params = []
    else:
        raise invalid("head", repr(head), "an nn.Module, a name or None")
    head_ids = {id(p) for p in head_params}
    in_head = {n for n, p in trainable.items() if id(p) in head_ids}

    def for_muon(name: str) -> bool:
        return (trainable[name].ndim == 2 and name not in in_head
                and not isinstance(owners.get(name), EMBEDDING_TYPES))

    muon_names = [n for n in trainable if for_muon(n)]
    adamw_names = [n for n in trainable if not for_muon(n)]
    muon_groups = [_group([trainable[n] for n in muon_names], muon_names)]
    adamw_groups = [_group([trainable[n] for n in adamw_names], adamw_names)]
    muon_groups = [g for g in muon_groups if g["params"]]
    adamw_groups = [g for g in adamw_groups if g["params"]]
    if adamw_weight_decay is not None and adamw_groups:
        # split_no_decay checks that its groups cover the model, so the
        # Muon group rides along, marked, and is dropped again
        marked = [{**g, "_muon": True} for g in muon_groups]
        split = split_no_decay(adamw_groups + marked, model,
                               adamw_weight_decay, no_decay)
        adamw_groups = [g for g in split if "_muon" not in g]
    check_groups(muon_groups + adamw_groups, model)
    return muon_groups, adamw_groups
