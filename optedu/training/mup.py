r"""µP, the maximal update parametrisation (Yang et al., 2021, "Tensor Programs V").

Train a narrow model, copy its hyperparameters to a wide one: under µP the best learning rate
does not move with width, because every layer's activations *and their updates* stay of
order one as the width :math:`n` grows. Three things change with width, each relative to a
*base* model of width :math:`n_0` where µP and the standard parametrisation coincide. With
the width multiplier :math:`m = n / n_0` of a parameter's width dimension (its fan-in for a
hidden weight), the rules are those of the paper's Table 3 in the equivalent form that
Microsoft's ``mup`` implements, with the readout's :math:`1/m` as a multiplier on its input
rather than in its initialisation and learning rate:

.. math::

    \begin{array}{l|ccc}
     & \text{input weights, all biases} & \text{hidden weights} & \text{output weights} \\
    \hline
    \text{initial variance} & 1/\text{fan}_\text{in} & 1/\text{fan}_\text{in}
        & \sigma_0^2 \text{ (constant in } n) \\
    \text{multiplier} & 1 & 1 & \alpha / m \\
    \text{SGD learning rate} & \eta\, m & \eta\, \frac{m_\text{out}}{m_\text{in}} & \eta\, m \\
    \text{Adam learning rate} & \eta & \eta / m & \eta
    \end{array}

An *input* weight maps a fixed dimension to the width (fan-out grows: an embedding table, the
first layer); a *hidden* weight maps width to width (both grow: "matrix-like"); an *output*
weight maps the width to a fixed dimension (the readout; fan-in grows). A bias or a
normalisation scale has one width dimension ("vector-like"); a tensor with none is "scalar"
and keeps :math:`\eta`. The output multiplier :math:`\alpha/m` is applied to the readout's
*input*: :class:`MuReadout` computes :math:`W (\alpha x / m) + b`. Weight decay is scaled
inversely to the learning rate, so that the product :math:`\eta\lambda` (what AdamW and
coupled SGD decay per step) does not change with width.

Why: a hidden weight's Adam update has entries of size :math:`\eta` whatever the width and is
correlated with the input it multiplies, so it moves each output by :math:`\eta\, n`; dividing
by :math:`m` keeps that move :math:`O(1)`. SGD's gradient of a hidden weight already carries
the :math:`1/n` of the input's size, so SGD keeps :math:`\eta`, while its input weights and
biases receive gradients of size :math:`1/n` and need :math:`\eta\, m`.

Here:

* :class:`Dim` and :class:`Shape`: each dimension's base and current size, from a base model
  and a *delta* model that differs from it only in the dimensions that grow
  (:func:`shapes_of`);
* :class:`MuReadout`, the readout layer (``mup.MuReadout``'s arguments and defaults), and
  :func:`set_base_shapes`, which gives each readout its width multiplier and rescales the
  default initialisation of readouts and biases to µP's, as ``mup.set_base_shapes`` does;
* :func:`mup_param_groups`: parameter groups with the scaled rates and decays, for ANY optedu
  or ``torch.optim`` optimizer (``kind="adam"`` for Adam, AdamW and any rule that normalises the
  gradient entrywise; ``kind="sgd"`` for SGD-like rules);
* :func:`normal_`, :func:`uniform_`, :func:`kaiming_normal_`: the µP versions of the initialisers
  for a width-independent standard deviation, as ``mup.init`` has them;
* :func:`coord_check` and :func:`plot_coord_check`: the coordinate check, mean absolute
  activations per layer against width over the first steps.

Differences from ``mup`` 1.0.0: shapes live in a returned dict, not in a ``p.infshape``
attribute; the group builder returns groups (the caller picks the optimizer) and drops empty
groups, which ``MuAdam`` and ``MuSGD`` keep; the caller's group dicts are not modified; bad input
raises ``ValueError`` rather than failing an ``assert``.

References: G. Yang, E. J. Hu, I. Babuschkin, S. Sidor, X. Liu, D. Farhi, N. Ryder, J. Pachocki,
W. Chen and J. Gao, *Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer*, NeurIPS 2021 (arXiv:2203.03466); microsoft/mup 1.0.0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

if TYPE_CHECKING:
    from torch.nn.init import _NonlinearityType    # the names calculate_gain knows

from optedu.optim._validation import check_integer, check_non_negative, invalid

__all__ = ["Dim", "Shape", "shapes_of", "MuReadout", "set_base_shapes", "KINDS",
           "mup_param_groups", "normal_", "uniform_", "kaiming_normal_", "CoordCheck",
           "coord_check", "plot_coord_check"]

KINDS = ("adam", "sgd")
Group = dict[str, Any]


@dataclass(frozen=True)
class Dim:
    """One dimension of a parameter: its current ``size`` and, for a width dimension, the
    ``base`` size it had in the base model (``None``: a fixed dimension)."""

    size: int
    base: int | None = None

    @property
    def is_width(self) -> bool:
        return self.base is not None

    @property
    def mult(self) -> float:
        """The width multiplier :math:`n / n_0` (1 for a fixed dimension)."""
        return self.size / self.base if self.base is not None else 1.0


@dataclass(frozen=True)
class Shape:
    """A parameter's dimensions, ``(fan_out, fan_in, ...)`` for a weight."""

    dims: tuple[Dim, ...]

    @property
    def n_width(self) -> int:
        """How many dimensions grow: 2 matrix-like, 1 vector-like, 0 scalar."""
        return sum(d.is_width for d in self.dims)

    @property
    def mult(self) -> float:
        """The multiplier of the *last* width dimension (the fan-in of a hidden weight)."""
        return next((d.mult for d in reversed(self.dims) if d.is_width), 1.0)

    @property
    def fan_in(self) -> Dim:
        return self.dims[1]

    @property
    def fan_out(self) -> Dim:
        return self.dims[0]


ShapesLike = nn.Module | Mapping[str, Sequence[int]]


def _sizes(x: ShapesLike) -> dict[str, tuple[int, ...]]:
    if isinstance(x, nn.Module):
        return {name: tuple(p.shape) for name, p in x.named_parameters()}
    return {name: tuple(s) for name, s in x.items()}


def shapes_of(model: ShapesLike, base: ShapesLike,
              delta: ShapesLike | None = None) -> dict[str, Shape]:
    """Each parameter's :class:`Shape`: a dimension is a width dimension where ``base`` and
    ``delta`` differ in size (without ``delta``: where ``base`` and ``model`` differ).

    Each argument is a model or a dict ``{name: shape}``; they must name the same parameters
    with the same number of dimensions.
    """
    sizes, base_sizes = _sizes(model), _sizes(base)
    grows = _sizes(delta) if delta is not None else sizes
    for label, other in (("base", base_sizes), ("delta", grows)):
        if set(other) != set(sizes) or any(len(other[k]) != len(sizes[k]) for k in sizes):
            extra = sorted(set(other) ^ set(sizes)) or [
                k for k in sizes if len(other[k]) != len(sizes[k])]
            raise invalid(label, ", ".join(extra), "the same parameter names and numbers of "
                          "dimensions as the model")
    return {name: Shape(tuple(Dim(n, n0 if n0 != d else None)
                              for n, n0, d in zip(sizes[name], base_sizes[name], grows[name])))
            for name in sizes}


class MuReadout(nn.Linear):
    r"""The readout (output) layer of µP: :math:`y = W\,(\alpha\, x / m) + b`.

    A linear map from the width to a fixed dimension (logits, say), whose input is multiplied
    by ``output_mult`` :math:`\alpha` and divided by the width multiplier :math:`m` of its
    fan-in. :func:`set_base_shapes` sets :math:`m`; before, the layer refuses to run. With
    ``readout_zero_init`` the weight and bias start at zero (the paper's recommendation);
    else torch's default initialisation, which :func:`set_base_shapes` rescales to a variance
    constant in width. Arguments as ``nn.Linear``'s and ``mup.MuReadout``'s.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None, *, readout_zero_init: bool = False,
                 output_mult: float = 1.0) -> None:
        self.output_mult = output_mult
        self.readout_zero_init = readout_zero_init
        self.width_mult: float | None = None
        super().__init__(in_features, out_features, bias, device, dtype)

    def reset_parameters(self) -> None:
        if self.readout_zero_init:
            with torch.no_grad():
                self.weight.zero_()
                if self.bias is not None:
                    self.bias.zero_()
        else:
            super().reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.width_mult is None:
            raise RuntimeError("MuReadout has no width multiplier: call set_base_shapes")
        return super().forward(self.output_mult * x / self.width_mult)   # W (α x / m) + b


def _rescale(tensor: torch.Tensor | None, factor: float) -> None:
    if tensor is not None:
        with torch.no_grad():
            tensor.mul_(factor)


def set_base_shapes(model: nn.Module, base: ShapesLike, delta: ShapesLike | None = None, *,
                    rescale_params: bool = True, check_readout: bool = True
                    ) -> dict[str, Shape]:
    r"""The shapes of ``model``'s parameters (:func:`shapes_of`), with two side effects.

    Each :class:`MuReadout` gets its width multiplier :math:`m` (its fan-in's). With
    ``rescale_params`` (call it once, on a freshly initialised model), torch's default
    initialisation becomes µP's, as ``mup.set_base_shapes`` does: a readout's weight and bias
    are multiplied by :math:`\sqrt{m}` (torch's variance :math:`1/\text{fan}_\text{in}` becomes
    :math:`1/\text{fan}_{\text{in},0}`, constant in width), and the bias of every other
    ``nn.Linear`` and convolution by :math:`\sqrt{m_\text{in}}` (its fan-in's multiplier).
    Hidden and input weights keep torch's :math:`1/\text{fan}_\text{in}`, already µP's. A
    readout whose weight is tied to an embedding's table keeps it as it is (``mup`` multiplies
    the shared table by :math:`\sqrt{m}`, so the embedding's variance grows with width).

    ``check_readout``: a plain ``nn.Linear`` whose fan-in grows and fan-out does not is a
    readout left in standard parametrisation; it raises ``ValueError`` unless this is False.
    """
    shapes = shapes_of(model, base, delta)
    shape_of: dict[torch.Tensor, Shape] = {p: shapes[n] for n, p in model.named_parameters()}
    tied = [p for p, owners in Counter(
        p for _, p in model.named_parameters(remove_duplicate=False)).items() if owners > 1]
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    for name, layer in layers:
        shape = shape_of[layer.weight]
        if isinstance(layer, MuReadout):
            layer.width_mult = shape.mult
        elif (check_readout and isinstance(layer, nn.Linear)
              and shape.fan_in.is_width and not shape.fan_out.is_width):
            raise invalid("model", f"{name!r} (an nn.Linear from the width to a fixed size)",
                          "a MuReadout there, or check_readout=False")
    if rescale_params:
        for name, layer in layers:
            if getattr(layer, "_mup_rescaled", False):
                raise RuntimeError(f"{name!r} was rescaled before: pass rescale_params=False")
            shape = shape_of[layer.weight]
            if isinstance(layer, MuReadout):
                _rescale(layer.bias, shape.mult ** 0.5)
                if not any(layer.weight is p for p in tied):    # not an embedding's table
                    _rescale(layer.weight, shape.mult ** 0.5)
            else:
                _rescale(layer.bias, shape.fan_in.mult ** 0.5)
            # torch's stub takes tensors and modules only; any value is set
            layer._mup_rescaled = True  # type: ignore[assignment]
    return shapes


def _scaling(shape: Shape, kind: str) -> tuple[str, float]:
    """(role, factor) of one parameter: a "matrix" divides lr by the factor and multiplies the
    weight decay by it; a "vector" or "scalar" multiplies lr and divides the decay."""
    if shape.n_width > 2:
        raise invalid("shape", shape, "at most two width dimensions")
    if shape.n_width == 2:
        if kind == "adam":                           # hidden: η / m, λ m
            return "matrix", shape.mult
        return "matrix", shape.fan_in.mult / shape.fan_out.mult   # η m_out / m_in
    if kind == "adam":                               # input, output, biases: η
        return "vector", 1.0
    if shape.n_width == 1:                           # input, output, biases: η m, λ / m
        return "vector", shape.mult
    return "scalar", 1.0


def mup_param_groups(model: nn.Module, shapes: Mapping[str, Shape], kind: str,
                     groups: Iterable[Group] | None = None, *, lr: float,
                     weight_decay: float = 0.0) -> list[Group]:
    r"""µP's parameter groups for an optimizer of ``kind`` ``"adam"`` or ``"sgd"``.

    Each input group (default: one group of every trainable parameter) keeps its own
    hyperparameters (``lr`` and ``weight_decay`` default to the arguments) and is split by the
    scaling its tensors need:

    * ``"adam"``: hidden weights (two width dimensions) at :math:`\eta/m` with decay
      :math:`\lambda m`, one group per multiplier; every other tensor at :math:`\eta`,
      :math:`\lambda`;
    * ``"sgd"``: hidden weights at :math:`\eta\, m_\text{out}/m_\text{in}` with decay
      :math:`\lambda\, m_\text{in}/m_\text{out}`; tensors with one width dimension (input and
      output weights, biases) at :math:`\eta\, m` with decay :math:`\lambda/m`; tensors with
      none at :math:`\eta`, :math:`\lambda`.

    The groups come in ``MuAdam``'s and ``MuSGD``'s order (hidden, then one-width, then fixed,
    for each input group), each with ``"param_names"``; empty ones are dropped. Pass them to any
    optimizer: ``torch.optim.AdamW(mup_param_groups(model, shapes, "adam", lr=1e-3))``.
    """
    if kind not in KINDS:
        raise invalid("kind", repr(kind), "'adam' or 'sgd'")
    check_non_negative("lr", lr)
    check_non_negative("weight_decay", weight_decay)
    name_of: dict[torch.Tensor, str] = {p: n for n, p in model.named_parameters()}
    if groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    result: list[Group] = []
    for group in groups:
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        hyper = {k: v for k, v in group.items() if k not in ("params", "param_names")}
        hyper.setdefault("lr", lr)
        hyper.setdefault("weight_decay", weight_decay)
        split: dict[tuple[str, float], list[torch.Tensor]] = {}
        for p in params:
            if p not in name_of:
                raise invalid("groups", f"a tensor of shape {tuple(p.shape)}",
                              "parameters of the model")
            split.setdefault(_scaling(shapes[name_of[p]], kind), []).append(p)
        order = {"matrix": 0, "vector": 1, "scalar": 2}
        for (role, f), members in sorted(split.items(), key=lambda kv: order[kv[0][0]]):
            scaled = ((hyper["lr"] / f, hyper["weight_decay"] * f) if role == "matrix"
                      else (hyper["lr"] * f, hyper["weight_decay"] / f))
            result.append({**hyper, "params": members,
                           "param_names": [name_of[p] for p in members],
                           "lr": scaled[0], "weight_decay": scaled[1]})
    return result


# --- initialisation: a width-independent std, scaled by m^{-1/2} on hidden weights -------------

def _std_scale(shape: Shape) -> float:
    if shape.n_width > 2:
        raise invalid("shape", shape, "at most two width dimensions")
    return shape.mult ** -0.5 if shape.n_width == 2 else 1.0


def normal_(tensor: torch.Tensor, shape: Shape, mean: float = 0.0,
            std: float = 1.0) -> torch.Tensor:
    r"""``torch.nn.init.normal_`` for a ``std`` that does not depend on width: a hidden weight
    gets :math:`\mathcal N(\mu s, (\sigma s)^2)`, :math:`s = m^{-1/2}` (variance
    :math:`\propto 1/\text{fan}_\text{in}`), any other tensor the plain draw (as
    ``mup.normal_``)."""
    if mean != 0 and shape.n_width == 2:
        raise invalid("mean", mean, "0 for a hidden weight")
    s = _std_scale(shape)
    with torch.no_grad():
        return tensor.normal_(mean * s, std * s)


def uniform_(tensor: torch.Tensor, shape: Shape, a: float = 0.0,
             b: float = 1.0) -> torch.Tensor:
    r"""``torch.nn.init.uniform_`` likewise: :math:`U(a s, b s)` on a hidden weight."""
    if a != -b and shape.n_width == 2:
        raise invalid("a", a, "-b for a hidden weight")
    s = _std_scale(shape)
    with torch.no_grad():
        return tensor.uniform_(a * s, b * s)


def kaiming_normal_(tensor: torch.Tensor, shape: Shape, a: float = 0.0,
                    mode: Literal["fan_in", "fan_out"] = "fan_in",
                    nonlinearity: _NonlinearityType = "leaky_relu") -> torch.Tensor:
    r"""``torch.nn.init.kaiming_normal_`` made µP, as ``mup.kaiming_normal_``: the std
    :math:`g/\sqrt{\text{fan}}` is multiplied by :math:`\sqrt{m}` of the fan's dimension when it
    is the only width dimension (a readout with ``mode="fan_in"``: constant in width), and by
    :math:`\sqrt{m_\text{out}/m_\text{in}}` on a hidden weight with ``mode="fan_out"``."""
    if mode not in ("fan_in", "fan_out"):
        raise invalid("mode", repr(mode), "'fan_in' or 'fan_out'")
    fan = nn.init._calculate_correct_fan(tensor, mode)
    std = nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    dim = shape.fan_in if mode == "fan_in" else shape.fan_out
    if shape.n_width == 1 and dim.is_width:
        std *= dim.mult ** 0.5
    elif shape.n_width == 2 and mode == "fan_out":
        std *= math.sqrt(shape.fan_out.mult / shape.fan_in.mult)
    elif shape.n_width > 2:
        raise invalid("shape", shape, "at most two width dimensions")
    with torch.no_grad():
        return tensor.normal_(0, std)


# --- the coordinate check ----------------------------------------------------------------------

@dataclass
class CoordCheck:
    """Mean absolute activations: ``values[s, l, w]`` at step ``s`` (after ``s`` updates; 0:
    at initialisation), layer ``layers[l]``, width ``widths[w]``, averaged over seeds."""

    widths: list[int]
    layers: list[str]
    values: torch.Tensor

    def slopes(self) -> torch.Tensor:
        r"""``[s, l]``: the least-squares slope of :math:`\log` value against :math:`\log`
        width. About 0 under µP; 0.5 or more where a layer blows up with width."""
        x = torch.log(torch.tensor(self.widths, dtype=torch.float64))
        y = torch.log(self.values.double())
        xc = x - x.mean()
        return ((y - y.mean(-1, keepdim=True)) * xc).sum(-1) / (xc * xc).sum()


def _leaves(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules()
            if name and not any(True for _ in m.children())]


def coord_check(make_model: Callable[[int], nn.Module], widths: Sequence[int], steps: int = 3,
                *, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
                data: tuple[torch.Tensor, torch.Tensor],
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                = nn.functional.mse_loss,
                layers: Sequence[str] | None = None, seeds: int = 1) -> CoordCheck:
    r"""The coordinate check of Yang et al. (2021, Fig. 5): for each width, build
    ``make_model(width)`` (after ``torch.manual_seed(seed)``) and ``make_optimizer(model)``,
    train ``steps`` steps on the batch ``data = (x, y)``, and record the mean of
    :math:`|h|` over each layer's output :math:`h` (forward hooks) in each step's forward pass.

    ``layers``: module names to record (default: every leaf module of the first model). Under
    µP every curve is flat in width; a layer whose scale grows like :math:`n^{1/2}` or
    :math:`n` is mis-parametrised (:meth:`CoordCheck.slopes`).
    """
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1
                         for w in widths):
        raise invalid("widths", list(widths), "a non-empty list of integers >= 1")
    check_integer("steps", steps, 1)
    check_integer("seeds", seeds, 1)
    x, y = data
    values: torch.Tensor | None = None
    names: list[str] = list(layers) if layers is not None else []
    for w, width in enumerate(widths):
        for seed in range(seeds):
            torch.manual_seed(seed)
            model = make_model(width)
            optimizer = make_optimizer(model)
            if not names:
                names = _leaves(model)
            modules = dict(model.named_modules())
            missing = [n for n in names if n not in modules]
            if missing:
                raise invalid("layers", ", ".join(missing), "names of modules of the model")
            if values is None:
                values = torch.zeros(steps, len(names), len(widths), dtype=torch.float64)
            record: dict[str, float] = {}
            hooks = [modules[n].register_forward_hook(
                lambda _m, _i, out, n=n: record.__setitem__(n, out.detach().abs().mean().item()))
                for n in names]
            try:
                for s in range(steps):
                    optimizer.zero_grad()
                    loss = loss_fn(model(x), y)
                    for k, n in enumerate(names):
                        values[s, k, w] += record[n] / seeds
                    loss.backward()
                    optimizer.step()
            finally:
                for h in hooks:
                    h.remove()
    assert values is not None
    return CoordCheck(list(widths), names, values)


def plot_coord_check(result: CoordCheck, axes=None, *, title: str | None = None):
    """One panel per layer: mean :math:`|h|` against width (log-log), one line per step, as the
    paper's Figure 5. Returns the figure."""
    import matplotlib.pyplot as plt

    n_steps, n_layers, _ = result.values.shape
    if axes is None:
        _, axes = plt.subplots(1, n_layers, figsize=(2.4 * n_layers, 2.4), squeeze=False,
                               sharex=True)
        axes = axes[0]
    colors = plt.get_cmap("viridis")(torch.linspace(0, 0.9, n_steps).tolist())
    for k, (ax, name) in enumerate(zip(axes, result.layers)):
        for s in range(n_steps):
            ax.plot(result.widths, result.values[s, k].tolist(), "o-", ms=3, color=colors[s],
                    label=f"t = {s}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("width")
    axes[0].set_ylabel("mean |activation|")
    axes[-1].legend(fontsize=7)
    figure = axes[0].figure
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
