r"""Gradient accumulation, and the learning rate when the batch grows.

A batch of :math:`B` examples that does not fit in memory is cut into
micro-batches :math:`S_1, \dots, S_k` of sizes :math:`n_j`; each micro-batch
loss is a mean, :math:`L_j = \frac{1}{n_j}\sum_{i \in S_j} \ell_i`, and
``backward()`` adds its gradient, times a weight :math:`w_j`, into ``.grad``.
The large batch's mean loss is

.. math::

    L = \frac{1}{B}\sum_{i=1}^{B} \ell_i = \sum_{j=1}^{k} \frac{n_j}{B} L_j ,

so the weights that reproduce it are :math:`w_j = n_j / B`
(:func:`size_weights`), which is :math:`1/k` only when the micro-batches are
equal. :func:`accumulate` runs the loop; ``clip_each`` clips every
micro-batch's contribution before it is added (the pitfall: the clipped sum
is not the clipped large-batch gradient).

:func:`scaled_lr` is the learning rate for a batch ``factor`` times larger
under the linear rule (Goyal et al., 2017) or the square-root rule
(Krizhevsky, 2014; Malladi et al., 2022 for Adam), and
:func:`train_epochs` the small problem the chapter tests them on: softmax
regression or an MLP on scikit-learn's digits, full-data loss per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from optedu.optim._validation import check_greater, check_integer

RULES = ("none", "linear", "sqrt")


def size_weights(sizes: Sequence[int]) -> list[float]:
    r"""The weights :math:`w_j = n_j / \sum_l n_l` that make the weighted sum
    of micro-batch *mean* losses the large batch's mean loss.

    >>> size_weights([4, 4, 8])
    [0.25, 0.25, 0.5]
    """
    for n in sizes:
        check_integer("size", n, 1)
    total = sum(sizes)
    return [n / total for n in sizes]


def accumulate(model: nn.Module,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
               weights: Sequence[float] | None = None,
               clip_each: float | None = None) -> None:
    r"""Add :math:`\sum_j w_j \nabla L_j` into the parameters' ``.grad``,
    one micro-batch at a time, as a training loop does before its step.

    Args:
        model: the model; its ``.grad`` fields are added to (zero them
            first, as for any backward pass).
        loss_fn: ``loss_fn(output, target)``, a mean over the micro-batch.
        micro_batches: ``(x, y)`` pairs.
        weights: :math:`w_j`; default :math:`1/k` ("divide the loss by
            the accumulation steps"). :func:`size_weights` gives the right
            ones for unequal micro-batches.
        clip_each: if given, each contribution :math:`w_j \nabla L_j` is
            scaled to norm at most ``clip_each`` before it is added (torch's
            ``clip_grad_norm_`` rule): the pitfall, not a recommendation.
    """
    k = len(micro_batches)
    if weights is None:
        weights = [1.0 / k] * k
    if len(weights) != k:
        raise ValueError(f"Invalid weights value: {len(weights)} weights "
                         f"for {k} micro-batches")
    if clip_each is not None:
        check_greater("clip_each", clip_each)
    params = [p for p in model.parameters() if p.requires_grad]
    for (x, y), w in zip(micro_batches, weights):
        loss = w * loss_fn(model(x), y)                 # w_j L_j
        grads = torch.autograd.grad(loss, params)       # w_j ∇L_j
        if clip_each is not None:
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            scale = torch.clamp(clip_each / (norm + 1e-6), max=1.0)
            grads = tuple(g * scale for g in grads)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.grad = g.clone() if p.grad is None else p.grad.add_(g)


def flat_grad(model: nn.Module) -> torch.Tensor:
    """Every parameter's ``.grad`` in one vector (zeros where ``None``)."""
    return torch.cat([
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
        for p in model.parameters()])


def scaled_lr(lr: float, factor: float, rule: str) -> float:
    r"""The learning rate for a batch ``factor`` times larger:
    ``"none"`` :math:`\eta`, ``"linear"`` :math:`\eta\,\kappa`,
    ``"sqrt"`` :math:`\eta\sqrt{\kappa}`.

    >>> scaled_lr(0.1, 4, "sqrt")
    0.2
    """
    check_greater("lr", lr)
    check_greater("factor", factor)
    if rule not in RULES:
        raise ValueError(f"Invalid rule value: {rule!r} (expected one of "
                         f"{RULES})")
    return {"none": lr, "linear": lr * factor,
            "sqrt": lr * math.sqrt(factor)}[rule]


def digits(dtype: torch.dtype = torch.float64
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits (1797 images of 8 × 8 pixels, 10 classes),
    each pixel standardised over the data set; ``(x, y)``."""
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.data, dtype=dtype)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return x, torch.tensor(data.target, dtype=torch.long)


def make_classifier(n_in: int, n_out: int, hidden: int = 0,
                    seed: int = 0, dtype: torch.dtype = torch.float64
                    ) -> nn.Module:
    """Softmax regression (``hidden=0``) or a one-hidden-layer tanh MLP,
    seeded."""
    torch.manual_seed(seed)
    if hidden == 0:
        return nn.Linear(n_in, n_out, dtype=dtype)
    return nn.Sequential(nn.Linear(n_in, hidden, dtype=dtype), nn.Tanh(),
                         nn.Linear(hidden, n_out, dtype=dtype))


def train_epochs(make_optimizer: Callable[..., torch.optim.Optimizer],
                 x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int,
                 hidden: int = 0, seed: int = 0, return_model: bool = False
                 ) -> list[float] | tuple[list[float], nn.Module]:
    """Train a classifier by mini-batch cross-entropy, reshuffling each
    epoch (seeded; the last short batch kept); return the full-data loss
    before training and after every epoch (``epochs + 1`` numbers, ``inf``
    once it is no longer finite), and the trained model if
    ``return_model``."""
    check_integer("batch", batch, 1)
    check_integer("epochs", epochs, 0)
    model = make_classifier(x.shape[1], int(y.max()) + 1, hidden, seed,
                            x.dtype)
    opt = make_optimizer(model.parameters())
    gen = torch.Generator().manual_seed(seed)

    def full_loss() -> float:
        with torch.no_grad():
            value = F.cross_entropy(model(x), y).item()
        return value if math.isfinite(value) else math.inf

    losses = [full_loss()]
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for idx in order.split(batch):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        losses.append(full_loss())
        if losses[-1] == math.inf:
            losses += [math.inf] * (epochs + 1 - len(losses))
            break
    return (losses, model) if return_model else losses
