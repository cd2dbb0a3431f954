r"""Parameter groups for fine-tuning: which tensors get weight decay, and
which learning rate.

An optimizer takes its parameters as a list of dicts, one per *parameter
group*: each dict holds ``"params"`` and any hyperparameters (``"lr"``,
``"weight_decay"``, ...) that override the optimizer's defaults for those
tensors. The builders here return such lists, ready for any ``torch.optim``
or optedu optimizer:

* :func:`no_decay_groups` -- weight decay on weight matrices only; biases
  and the affine weights of normalisation layers (and, if asked, embeddings)
  get ``weight_decay = 0``.
* :func:`layerwise_lr_groups` -- layer-wise learning-rate decay (LLRD): the
  head trains at ``base_lr`` and each layer below at ``decay`` times the
  rate of the layer above (Howard & Ruder, 2018); ``head_gap=2`` gives
  ELECTRA's numbering (Clark et al., 2020).
* :func:`backbone_head_groups` -- one rate for a pretrained backbone,
  another for a new head.
* :func:`split_no_decay` -- splits any groups into decayed and undecayed
  halves, so LLRD and the no-decay rule compose.

Every group also carries ``"param_names"``, the key torch.optim (since 2.6)
uses for names, and every builder ends with :func:`check_groups`: each
trainable parameter (``requires_grad``) of the model must sit in exactly one
group, or a ``ValueError`` names the ones that do not. Frozen parameters are
left out. :func:`describe_groups` prints the groups as a table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from optedu.optim._validation import check_integer, check_interval, check_non_negative, invalid

__all__ = [
    "NORM_TYPES", "EMBEDDING_TYPES", "trainable_parameters", "check_groups",
    "split_no_decay", "no_decay_groups", "block_depth",
    "layerwise_lr_groups", "backbone_head_groups", "describe_groups",
]

Group = dict[str, Any]

#: Modules whose parameters are normalisation scales and shifts (BatchNorm*,
#: InstanceNorm* and their lazy and sync variants share ``_NormBase``).
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
NO_DECAY_KINDS = ("bias", "norm", "embedding", "1d")
# a numbered block: "layers.3.", "layer.3.", "blocks.3.", "block.3.",
# "h.3." (GPT-2)
_BLOCK = re.compile(r"(?:^|\.)(?:layers|layer|blocks|block|h)\.(\d+)\.")


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """``{name: parameter}`` for every parameter with ``requires_grad``;
    a tied tensor once."""
    return {name: p for name, p in model.named_parameters()
            if p.requires_grad}


def _owners(model: nn.Module) -> dict[str, nn.Module]:
    """The module that registers each parameter, by the parameter's name."""
    return {f"{prefix}.{local}" if prefix else local: module
            for prefix, module in model.named_modules()
            for local, _ in module.named_parameters(recurse=False)}


def _group(params: Sequence[torch.Tensor], names: Sequence[str],
           **hyper: Any) -> Group:
    return {"params": list(params), "param_names": list(names), **hyper}


def check_groups(groups: Iterable[Group], model: nn.Module) -> None:
    """Raise ``ValueError`` unless every trainable parameter of ``model`` is
    in exactly one group.

    The message names the parameters found in no group, in more than one
    group (or twice in one), and counts tensors that are not parameters of
    ``model``. Frozen parameters may be absent.
    """
    trainable = trainable_parameters(model)
    counts = Counter(p for group in groups for p in group["params"])
    missing = [name for name, p in trainable.items() if counts[p] == 0]
    duplicated = [name for name, p in model.named_parameters()
                  if counts[p] > 1]
    known = set(model.parameters())
    foreign = sum(1 for p in counts if p not in known)
    problems = []
    if missing:
        problems.append(f"{len(missing)} trainable parameter(s) in no group: "
                        f"{', '.join(missing)}")
    if duplicated:
        problems.append(f"{len(duplicated)} parameter(s) in more than one "
                        f"place: {', '.join(duplicated)}")
    if foreign:
        problems.append(f"{foreign} tensor(s) that are not parameters of "
                        "the model")
    if problems:
        raise ValueError("Invalid parameter groups: " + "; ".join(problems))


def split_no_decay(groups: Iterable[Group], model: nn.Module,
                   weight_decay: float,
                   no_decay: Collection[str] = ("bias", "norm")
                   ) -> list[Group]:
    """Split each group in two: its decayed tensors (``weight_decay``) and
    the rest (``0``).

    ``no_decay`` names the kinds of tensor exempt from decay:

    * ``"bias"``: the parameter's own name ends in ``bias`` (``bias``,
      ``in_proj_bias``);
    * ``"norm"``: registered by a module in :data:`NORM_TYPES` (found by
      type, whatever its name);
    * ``"embedding"``: registered by ``nn.Embedding`` / ``nn.EmbeddingBag``;
    * ``"1d"``: any tensor with at most one dimension (the rule of GPT's
      released ``opt.py``, and of nanoGPT).

    The other hyperparameters of a group are kept; empty halves are dropped.
    """
    unknown = sorted(set(no_decay) - set(NO_DECAY_KINDS))
    if unknown:
        raise invalid("no_decay", unknown, f"some of {NO_DECAY_KINDS}")
    check_non_negative("weight_decay", weight_decay)
    owners = _owners(model)
    name_of: dict[torch.Tensor, str] = {
        p: name for name, p in model.named_parameters()}

    def exempt(p: torch.Tensor) -> bool:
        name = name_of.get(p, "")
        owner = owners.get(name)
        own_name = name.rsplit(".", 1)[-1]
        return (("bias" in no_decay and own_name.endswith("bias"))
                or ("norm" in no_decay and isinstance(owner, NORM_TYPES))
                or ("embedding" in no_decay
                    and isinstance(owner, EMBEDDING_TYPES))
                or ("1d" in no_decay and p.ndim <= 1))

    result = []
    for group in groups:
        hyper = {k: v for k, v in group.items()
                 if k not in ("params", "param_names")}
        for keep, decay in ((False, weight_decay), (True, 0.0)):
            members = [p for p in group["params"] if exempt(p) == keep]
            if members:
                names = [name_of.get(p, "?") for p in members]
                result.append(_group(members, names,
                                     **{**hyper, "weight_decay": decay}))
    check_groups(result, model)
    return result


def no_decay_groups(model: nn.Module, weight_decay: float,
                    no_decay: Collection[str] = ("bias", "norm")
                    ) -> list[Group]:
    """Two groups: trainable tensors with ``weight_decay``, and the
    ``no_decay`` kinds with 0.

    See :func:`split_no_decay` for the kinds. GPT's paper states the rule
    first (Radford et al., 2018: decay 0.01 "on all non bias or gain
    weights"); its released ``opt.py`` (openai/finetune-transformer-lm)
    decays only tensors with more than one dimension, as ``"1d"`` does.
    BERT's released code, not its paper, excludes by name instead:
    google-research/bert ``optimization.py`` passes
    ``exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]``
    (regular expressions searched in variable names). AdamW's decay
    (Loshchilov & Hutter, 2019) pulls a LayerNorm scale towards 0, not
    towards its natural value 1.
    """
    trainable = trainable_parameters(model)
    everything = _group(list(trainable.values()), list(trainable))
    return split_no_decay([everything], model, weight_decay, no_decay)


def block_depth(model: nn.Module, *,
                head_gap: int = 1) -> Callable[[str], int]:
    """The default ``layer_of`` of :func:`layerwise_lr_groups`, built from
    ``model``'s names.

    Block ``i`` (a name containing ``layers.i.``, ``blocks.i.``,
    ``layer.i.``, ``block.i.`` or ``h.i.``) has depth ``i + 1``; embeddings
    (``nn.Embedding`` parameters, or names containing ``emb``, ``wte`` or
    ``wpe``) depth 0; everything else -- the head, a final norm -- depth
    ``L + head_gap``, where ``L`` is the number of blocks. ``head_gap=1``
    (the default) numbers the depths without a hole; ``head_gap=2`` is
    ELECTRA's numbering (``_get_layer_lrs`` in google-research/electra
    ``model/optimization.py`` puts ``task_specific/`` at ``n_layers + 2``),
    which leaves depth ``L + 1`` empty, where a pooler used to be
    (electra issue 51).
    """
    check_integer("head_gap", head_gap, 1)
    owners = _owners(model)
    trainable = trainable_parameters(model)
    indices = {int(m.group(1)) for name in trainable
               if (m := _BLOCK.search(name))}
    if not indices:
        raise ValueError("No numbered layers (layers.0., blocks.0., ...) "
                         "found: pass layer_of")
    top = max(indices) + 1 + head_gap

    def layer_of(name: str) -> int:
        if match := _BLOCK.search(name):
            return int(match.group(1)) + 1
        if (isinstance(owners.get(name), EMBEDDING_TYPES)
                or re.search(r"emb|wte|wpe", name)):
            return 0
        return top

    return layer_of


def layerwise_lr_groups(model: nn.Module, base_lr: float, decay: float,
                        layer_of: Callable[[str], int | None] | None = None,
                        *, weight_decay: float | None = None,
                        no_decay: Collection[str] = ("bias", "norm"),
                        head_gap: int = 1) -> list[Group]:
    r"""Layer-wise learning-rate decay: one group per depth,
    :math:`\eta_d = \eta\,\gamma^{D-d}`.

    With :math:`D` the largest depth, the top group (the head, by default)
    trains at ``base_lr`` and each depth below at ``decay`` times the rate
    above. With the default numbering of :func:`block_depth` (embeddings 0,
    block ``i`` at ``i + 1``, head at ``L + 1`` for ``L`` blocks) the top
    block trains at :math:`\gamma\eta` and the embeddings at
    :math:`\gamma^{L+1}\eta`. ULMFiT's discriminative fine-tuning
    (Howard & Ruder, 2018) uses :math:`\gamma = 1/2.6`.

    ELECTRA (Clark et al., 2020) numbers differently: its released code
    puts the task head at depth ``L + 2`` and leaves ``L + 1`` empty, so
    its top block trains at :math:`\gamma^2\eta` and its embeddings at
    :math:`\gamma^{L+2}\eta`. ``head_gap=2`` reproduces it. Its authors
    call the empty depth a leftover of a removed pooler, kept so results
    stay reproducible (google-research/electra, issue 51).

    Args:
        model: the network; only its trainable parameters are grouped.
        base_lr: :math:`\eta`, the rate of the deepest group.
        decay: :math:`\gamma \in (0, 1]`, the factor per layer.
        layer_of: maps a parameter name to its depth (an int ``>= 0``);
            ``None`` leaves the parameter out, which :func:`check_groups`
            reports. Default: :func:`block_depth`.
        weight_decay: if given, each depth is split by
            :func:`split_no_decay` with ``no_decay``.
        head_gap: depths between the top block and the head in the default
            ``layer_of`` (1, or 2 for ELECTRA's numbering); only with
            ``layer_of=None``.
    """
    check_non_negative("lr", base_lr)
    check_interval("decay", decay, 0, 1, open_low=True)
    if layer_of is not None and head_gap != 1:
        raise invalid("head_gap", head_gap,
                      "1: it applies to the default layer_of only")
    if layer_of is None:
        layer_of = block_depth(model, head_gap=head_gap)
    trainable = trainable_parameters(model)
    by_depth: dict[int, list[str]] = {}
    for name in trainable:
        depth = layer_of(name)
        if depth is None:
            continue
        check_integer(f"layer_of({name!r})", depth, 0)
        by_depth.setdefault(depth, []).append(name)
    top = max(by_depth, default=0)
    groups = [_group([trainable[n] for n in names], names,
                     lr=base_lr * decay ** (top - depth))
              for depth, names in sorted(by_depth.items())]
    if weight_decay is not None:
        return split_no_decay(groups, model, weight_decay, no_decay)
    check_groups(groups, model)
    return groups


def backbone_head_groups(model: nn.Module, head: nn.Module | str,
                         backbone_lr: float, head_lr: float, *,
                         weight_decay: float | None = None,
                         no_decay: Collection[str] = ("bias", "norm")
                         ) -> list[Group]:
    """Two groups: the backbone at ``backbone_lr``, the head at ``head_lr``.

    ``head`` is a submodule of ``model`` or the name prefix of its
    parameters (``"classifier"``). With ``weight_decay``, each group is
    split by :func:`split_no_decay`.
    """
    check_non_negative("backbone_lr", backbone_lr)
    check_non_negative("head_lr", head_lr)
    trainable = trainable_parameters(model)
    if isinstance(head, str):
        in_head = {n for n in trainable
                   if n == head or n.startswith(head + ".")}
        if not in_head:
            raise invalid("head", repr(head), "a submodule, or the name "
                          "prefix of trainable parameters")
        head_params = [trainable[n] for n in trainable if n in in_head]
    else:
        head_params = [p for p in head.parameters() if p.requires_grad]
    head_set = set(head_params)
    backbone = {n: p for n, p in trainable.items() if p not in head_set}
    name_of = {p: n for n, p in model.named_parameters()}
    head_names = [name_of.get(p, "?") for p in head_params]
    groups = [_group(list(backbone.values()), list(backbone),
                     lr=backbone_lr),
              _group(head_params, head_names, lr=head_lr)]
    groups = [g for g in groups if g["params"]]
    if weight_decay is not None:
        return split_no_decay(groups, model, weight_decay, no_decay)
    check_groups(groups, model)
    return groups


def _short(names: Sequence[str], width: int) -> str:
    text = ", ".join(names)
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_groups(groups: Iterable[Group], model: nn.Module,
                    width: int = 60) -> str:
    """A table, one row per group: tensors, scalars, ``lr``,
    ``weight_decay`` and names.

    Names come from ``model`` (so groups built by hand work too); a
    hyperparameter a group does not set shows as ``default``. A last line
    lists trainable parameters found in no group.
    """
    groups = list(groups)
    name_of = {p: n for n, p in model.named_parameters()}
    rows: list[tuple[str, ...]] = [
        ("group", "tensors", "numel", "lr", "weight_decay", "names")]
    for i, group in enumerate(groups):
        params = list(group["params"])
        hyper = [f"{group[k]:.4g}" if k in group else "default"
                 for k in ("lr", "weight_decay")]
        names = [name_of.get(p, "?") for p in params]
        rows.append((str(i), str(len(params)),
                     str(sum(p.numel() for p in params)), *hyper,
                     _short(names, width)))
    widths = [max(len(row[c]) for row in rows) for c in range(5)]
    lines = ["  ".join(row[c].rjust(widths[c]) for c in range(5))
             + "  " + row[5] for row in rows]
    seen = {p for group in groups for p in group["params"]}
    missing = [n for n, p in trainable_parameters(model).items()
               if p not in seen]
    if missing:
        lines.append(f"in no group ({len(missing)}): "
                     f"{_short(missing, width)}")
    return "\n".join(lines)
