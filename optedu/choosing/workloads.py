"""Workloads: small but real training problems, each with a fixed model, data, batch size,
step budget and validation target, as AlgoPerf defines a workload (Dahl et al., 2023).

Every workload ships: its data comes from scikit-learn's bundled datasets or the standard
library, nothing is downloaded. The data and its split are fixed; a run's ``seed`` sets the
model's initial weights and the order of the training batches, nothing else. Every metric is
"lower is better" and is measured on the validation split.

Five kinds, each a base workload and a *held-out variant* (another activation, normalisation
or scaling of the inputs); AlgoPerf uses such variants to catch an optimizer tuned to one
workload: a search space that only works on the base problem fails on its variant.

==================  ==========================================  ============================
base                model                                        held-out variant
==================  ==========================================  ============================
digits_logreg       linear, softmax (convex)                     raw pixels 0 to 16
digits_mlp          64-128-128-10, ReLU                          tanh
digits_cnn          two 3×3 convolutions, max pooling            BatchNorm
digits_autoencoder  64-32-8-32-64, ReLU                          sigmoid
char_transformer    2 pre-LN blocks, width 64, context 32        post-LN
==================  ==========================================  ============================

Each target comes from a calibration (:mod:`optedu.choosing.calibrate`, run by
``tools/calibrate_targets.py``): the best of three tuned baselines, median over three seeds.
A run of each takes well under a second on one thread, the transformer's about three.
"""

from __future__ import annotations

import functools
import platform
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypedDict

import torch
from torch import nn

__all__ = ["Data", "Workload", "WORKLOADS", "TARGET_RULE", "get", "base_workloads", "held_out",
           "digits", "help_text", "text_windows", "Splits", "digit_splits", "relu_mlp"]


@dataclass(frozen=True)
class Data:
    """Training and validation tensors: float32 inputs, or int64 token ids for a language
    model (whose ``train_x`` is the training text as one stream and ``train_y`` the same stream
    shifted by one character; its validation tensors are fixed windows)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


@dataclass(frozen=True)
class Workload:
    """One training problem.

    Attributes:
        name: short identifier (``"digits_mlp"``); a held-out variant's name is its base's
            with a suffix (``"digits_mlp_tanh"``).
        summary: one line for tables.
        batch_size, steps: examples per step and the step budget.
        eval_every: steps between two measurements of the validation metric (the last step
            is always measured).
        metric: what ``evaluate`` returns, lower is better (``"error"``, ``"cross-entropy"``,
            ``"mse"``).
        target: the validation value a run must reach; how it was set is in
            ``target_rule``.
        head: the name prefix of the output layer's parameters (kept out of Muon), or
            ``None`` if the model has none.
        base: for a held-out variant, the name of its base workload; ``None`` for a base.
        make_model: ``seed -> nn.Module`` (float32, initial weights from the seed).
        make_data: ``() -> Data`` (cached; the same tensors for every seed).
        loss_fn: ``(model, x, y) -> scalar tensor``, the training loss of a batch.
        metric_fn: ``(model, x, y) -> float``, the validation metric.
        target_rule: how the target was calibrated (:mod:`optedu.choosing.calibrate`).
        target_setter: ``(contestant, lr)``: the baseline and learning rate whose runs set
            the target, so that a test can run them again; ``None`` before calibration.
        make_batches: ``seed -> endless iterator of (x, y)``, replacing the default epochs
            of shuffled examples (a language model samples windows of its text instead);
            ``None`` for the default.
    """

    name: str
    summary: str
    batch_size: int
    steps: int
    eval_every: int
    metric: str
    target: float
    head: str | None
    make_model: Callable[[int], nn.Module] = field(repr=False)
    make_data: Callable[[], Data] = field(repr=False)
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = field(repr=False)
    metric_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], float] = field(repr=False)
    base: str | None = None
    target_rule: str = ""
    target_setter: tuple[str, float] | None = None
    make_batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None = \
        field(default=None, repr=False)

    def model(self, seed: int) -> nn.Module:
        """The model with its initial weights for ``seed``."""
        return self.make_model(seed)

    def data(self) -> Data:
        return self.make_data()

    def batches(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Training batches for ``seed``, without end: ``make_batches(seed)`` if set, else
        each epoch a new permutation from a generator seeded by ``seed``, the last incomplete
        batch of an epoch dropped."""
        if self.make_batches is not None:
            return self.make_batches(seed)
        return self._shuffled(seed)

    def _shuffled(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data = self.data()
        n = len(data.train_x)
        gen = torch.Generator().manual_seed(seed)
        while True:
            order = torch.randperm(n, generator=gen)
            for start in range(0, n - self.batch_size + 1, self.batch_size):
                idx = order[start:start + self.batch_size]
                yield data.train_x[idx], data.train_y[idx]

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(model, x, y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> float:
        """The validation metric, with the model in eval mode (restored afterwards)."""
        was_training = model.training
        model.eval()
        try:
            data = self.data()
            return float(self.metric_fn(model, data.val_x, data.val_y))
        finally:
            model.train(was_training)


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def _named(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    """A ``Sequential`` whose layers have names (``"head"`` rather than ``"4"``)."""
    return nn.Sequential(OrderedDict(layers))


# --- data -------------------------------------------------------------------------------------

@functools.cache
def digits(scale: str = "standard") -> Data:
    """scikit-learn's 8×8 handwritten digits (1,797 images, bundled with the package): a fixed
    split of 1,437 training and 360 validation images (permutation seed 0). ``scale``:
    ``"standard"`` (each pixel standardised with the training split's mean and deviation) or
    ``"raw"`` (pixel values 0 to 16, as stored)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    n_train = 1437
    train_x, val_x = x[:n_train], x[n_train:]
    if scale == "standard":
        mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-3)
        train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    elif scale != "raw":
        raise ValueError(f"Invalid scale: {scale!r}")
    return Data(train_x, y[:n_train], val_x, y[n_train:])


@dataclass(frozen=True)
class Splits:
    """Train, validation and test tensors: the three splits of the chapters' small digits
    experiments (flat minima, learning-rate-free rules)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def digit_splits(n_train: int, n_val: int) -> Splits:
    """``load_digits`` shuffled once (seed 0): the first ``n_train`` images train, the next
    ``n_val`` validate, the rest test; pixels scaled to [0, 1] by 16."""
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x = torch.tensor(x, dtype=torch.float32)[order] / 16
    y = torch.tensor(y, dtype=torch.long)[order]
    a, b = n_train, n_train + n_val
    return Splits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


def relu_mlp(seed: int, hidden: int = 64) -> nn.Sequential:
    """The ReLU network 64-``hidden``-``hidden``-10, torch's default initialisation from
    ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 10))


#: the language model's alphabet: newline and the printable ASCII characters; every other
#: character of the text (about 1,000 of 465,000: accents, typographic quotes and dashes) is
#: one extra token, the last
ALPHABET = "\n" + "".join(chr(code) for code in range(ord(" "), ord("~") + 1))
VOCAB = len(ALPHABET) + 1
#: characters a window of the language model sees
CONTEXT = 32
#: validation windows, evenly spaced over the validation text (a fixed subset: a quick eval)
VAL_WINDOWS = 64
#: windows per training batch of the language model
TEXT_BATCH = 16
#: SHA-256 of the help texts the language-model targets were calibrated on (Python 3.11.7)
TEXT_SHA256 = "71f2ff5d99bdc1f9c48c5c2353ad138201c5ca1c377e0226857ef8fa89b8bcee"


@functools.cache
def help_text() -> Data:
    """The standard library's help texts (``pydoc_data.topics.topics``, what ``help("if")``
    prints; about 465,000 characters) as character ids of :data:`ALPHABET`: the topics in
    sorted order of their keys, joined by blank lines; the first 90 % trains, the last 10 %
    validates. ``train_x`` is the training text but its last character, ``train_y`` the same
    shifted by one (the next character). Validation: :data:`VAL_WINDOWS` windows of
    :data:`CONTEXT` characters and their next characters, at evenly spaced offsets.

    The text is the running interpreter's: Python's patch releases edit it slightly, and the
    calibrated targets hold for the text they were calibrated on (Python 3.11.7's), whose
    SHA-256 is :data:`TEXT_SHA256`. Another text is refused (``RuntimeError``): its runs would
    not be comparable with the stored ones, nor its target calibrated.
    """
    import hashlib

    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key] for key in sorted(topics))
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest != TEXT_SHA256:
        raise RuntimeError(
            f"this Python's help texts (pydoc_data.topics, Python {platform.python_version()}"
            f", SHA-256 {digest[:12]}...) differ from those the language-model targets were "
            f"calibrated on (Python 3.11.7, {TEXT_SHA256[:12]}...): run it with Python "
            f"3.11.7, or recalibrate (tools/calibrate_targets.py)")
    index = {char: i for i, char in enumerate(ALPHABET)}
    ids = torch.tensor([index.get(char, len(ALPHABET)) for char in text], dtype=torch.long)
    n_train = int(0.9 * len(ids))
    train, val = ids[:n_train], ids[n_train:]
    starts = torch.linspace(0, len(val) - CONTEXT - 1, VAL_WINDOWS).long()
    windows = torch.stack([val[s:s + CONTEXT + 1] for s in starts.tolist()])
    return Data(train[:-1], train[1:], windows[:, :-1], windows[:, 1:])


def text_windows(seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches of the language model, without end: :data:`TEXT_BATCH` windows of
    :data:`CONTEXT` characters at offsets drawn uniformly (generator seeded by ``seed``), and
    their next characters."""
    data = help_text()
    xs, ys = data.train_x.unfold(0, CONTEXT, 1), data.train_y.unfold(0, CONTEXT, 1)
    gen = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(len(xs), (TEXT_BATCH,), generator=gen)
        yield xs[starts], ys[starts]


# --- metrics ----------------------------------------------------------------------------------

def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats; for a language model, per character (every position of
    every window)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits.flatten(0, -2), y.flatten())


def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(-1) != y).float().mean())


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error of an autoencoder (``y`` unused: the target is
    ``x``)."""
    return nn.functional.mse_loss(model(x), x)


def _value(loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
           ) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], float]:
    return lambda model, x, y: float(loss(model, x, y))


# --- models -----------------------------------------------------------------------------------

def _linear_model(seed: int) -> nn.Module:
    _seeded(seed)
    return nn.Sequential(nn.Linear(64, 10))


def mlp(seed: int, activation: type[nn.Module] = nn.ReLU, width: int = 128) -> nn.Module:
    """64 → ``width`` → ``width`` → 10, ``activation`` after each hidden layer."""
    _seeded(seed)
    return _named(("fc1", nn.Linear(64, width)), ("act1", activation()),
                  ("fc2", nn.Linear(width, width)), ("act2", activation()),
                  ("head", nn.Linear(width, 10)))


def cnn(seed: int, batch_norm: bool = False) -> nn.Module:
    """The 8×8 image through two stages of 3×3 convolution (16, then 32 channels; with
    ``batch_norm``, a BatchNorm after each, and no convolution bias), ReLU and 2×2 max
    pooling (8×8 → 4×4 → 2×2), then a linear head on the 128 features."""
    _seeded(seed)

    def stage(i: int, c_in: int, c_out: int) -> list[tuple[str, nn.Module]]:
        norm = [(f"bn{i}", nn.BatchNorm2d(c_out))] if batch_norm else []
        return [(f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)),
                *norm, (f"act{i}", nn.ReLU()), (f"pool{i}", nn.MaxPool2d(2))]

    return _named(("image", nn.Unflatten(1, (1, 8, 8))), *stage(1, 1, 16), *stage(2, 16, 32),
                  ("flatten", nn.Flatten()), ("head", nn.Linear(32 * 2 * 2, 10)))


def autoencoder(seed: int, activation: type[nn.Module] = nn.ReLU, code: int = 8) -> nn.Module:
    """64 → 32 → ``code`` → 32 → 64: ``activation`` after the two 32-wide layers, a linear
    code; the head reconstructs the 64 standardised pixels."""
    _seeded(seed)
    return _named(("fc1", nn.Linear(64, 32)), ("act1", activation()),
                  ("code", nn.Linear(32, code)),
                  ("fc2", nn.Linear(code, 32)), ("act2", activation()),
                  ("head", nn.Linear(32, 64)))


class Block(nn.Module):
    """A transformer block: causal multi-head self-attention, then a GELU MLP (4× wide), each
    in a residual branch; the LayerNorms before each branch (``pre_norm``, as GPT-2) or after
    each residual sum (post-LN, as the original transformer)."""

    def __init__(self, width: int, heads: int, pre_norm: bool) -> None:
        super().__init__()
        self.heads, self.pre_norm = heads, pre_norm
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(nn.functional.gelu(self.fc(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attention(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attention(x))
        return self.ln2(x + self.mlp(x))


class CharTransformer(nn.Module):
    """A character-level language model: token and position embeddings, ``layers`` blocks,
    a final LayerNorm (pre-LN only), a linear head to the :data:`VOCAB` logits. Weights drawn
    as GPT-2 draws them (normal, deviation 0.02; biases zero)."""

    def __init__(self, width: int = 64, layers: int = 2, heads: int = 4,
                 pre_norm: bool = True) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, width), nn.Embedding(CONTEXT, width)
        self.blocks = nn.ModuleList(Block(width, heads, pre_norm) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width) if pre_norm else nn.Identity()
        self.head = nn.Linear(width, VOCAB)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.tok(x) + self.pos.weight[:x.shape[1]]
        for block in self.blocks:
            z = block(z)
        return self.head(self.ln_f(z))


def char_transformer(seed: int, pre_norm: bool = True) -> nn.Module:
    _seeded(seed)
    return CharTransformer(pre_norm=pre_norm)


# --- workloads --------------------------------------------------------------------------------

#: how every target below was set (:data:`optedu.choosing.calibrate.RULE`, which a test keeps
#: equal); the targets and their setters are what ``tools/calibrate_targets.py`` printed
TARGET_RULE = ("median over seeds 0, 1, 2 of the best validation value within the first 75% of "
               "the step budget, of the best of adamw, nadamw, nesterov, each at its best of 8 "
               "log-spaced learning rates (seed 0), rounded up to 4 significant digits "
               "(tools/calibrate_targets.py)")

WORKLOADS: dict[str, Workload] = {}


def _register(w: Workload) -> Workload:
    if w.name in WORKLOADS:
        raise ValueError(f"Duplicate workload: {w.name!r}")
    WORKLOADS[w.name] = w
    return w


Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
Metric = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]


class DigitsShared(TypedDict):
    """The fields the digits workloads share (:class:`Workload`'s)."""
    batch_size: int
    eval_every: int
    make_data: Callable[[], Data]


class TextShared(DigitsShared):
    """The fields the text workloads share (:class:`Workload`'s)."""
    steps: int
    metric: str
    head: str | None
    make_batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None
    loss_fn: Loss
    metric_fn: Metric


_DIGITS = DigitsShared(batch_size=64, eval_every=10, make_data=digits)
_raw_digits = functools.partial(digits, "raw")

_register(Workload(
    name="digits_logreg",
    summary="multinomial logistic regression on the digits (convex)",
    steps=300, metric="cross-entropy", target=0.1763, head="0",
    make_model=_linear_model, loss_fn=cross_entropy, metric_fn=_value(cross_entropy),
    **_DIGITS,
    target_setter=("nadamw", 0.04361026750842234), target_rule=TARGET_RULE,
))
_register(Workload(
    name="digits_logreg_raw",
    summary="the same on raw pixel values (0 to 16): an ill-conditioned problem",
    steps=300, metric="cross-entropy", target=0.118, head="0",
    make_model=_linear_model, loss_fn=cross_entropy, metric_fn=_value(cross_entropy),
    **(_DIGITS | {"make_data": _raw_digits}), base="digits_logreg",
    target_setter=("nadamw", 0.019018554321561586), target_rule=TARGET_RULE,
))
_register(Workload(
    name="digits_mlp",
    summary="MLP 64-128-128-10 (ReLU) on the digits",
    steps=200, metric="cross-entropy", target=0.123, head="head",
    make_model=mlp, loss_fn=cross_entropy, metric_fn=_value(cross_entropy),
    **_DIGITS,
    target_setter=("nesterov", 0.09703455784651033), target_rule=TARGET_RULE,
))
_register(Workload(
    name="digits_mlp_tanh",
    summary="the same MLP with tanh",
    steps=200, metric="cross-entropy", target=0.09618, head="head",
    make_model=functools.partial(mlp, activation=nn.Tanh),
    loss_fn=cross_entropy, metric_fn=_value(cross_entropy),
    **_DIGITS, base="digits_mlp",
    target_setter=("nadamw", 0.019018554321561586), target_rule=TARGET_RULE,
))
_register(Workload(
    name="digits_cnn",
    summary="CNN on the 8×8 digits: two 3×3 convolutions (16, 32), max pooling, linear head",
    steps=250, metric="error", target=0.01389, head="head",
    make_model=cnn, loss_fn=cross_entropy, metric_fn=error_rate,
    **_DIGITS,
    target_setter=("nesterov", 0.09703455784651033), target_rule=TARGET_RULE,
))
_register(Workload(
    name="digits_cnn_bn",
    summary="the same CNN with BatchNorm after each convolution",
    steps=250, metric="error", target=0.01389, head="head",
    make_model=functools.partial(cnn, batch_norm=True),
    loss_fn=cross_entropy, metric_fn=error_rate,
    **_DIGITS, base="digits_cnn",
    target_setter=("adamw", 0.1), target_rule=TARGET_RULE,
))
_register(Workload(
    name="digits_autoencoder",
    summary="autoencoder 64-32-8-32-64 (ReLU, linear code) on the digits' pixels",
    steps=500, metric="mse", target=0.3796, head="head",
    make_model=autoencoder, loss_fn=mse, metric_fn=_value(mse),
    **_DIGITS,
    target_setter=("adamw", 0.019018554321561586), target_rule=TARGET_RULE,
))
_register(Workload(
    name="digits_autoencoder_sigmoid",
    summary="the same autoencoder with sigmoid",
    steps=500, metric="mse", target=0.4571, head="head",
    make_model=functools.partial(autoencoder, activation=nn.Sigmoid),
    loss_fn=mse, metric_fn=_value(mse),
    **_DIGITS, base="digits_autoencoder",
    target_setter=("nesterov", 3.0), target_rule=TARGET_RULE,
))
_TEXT = TextShared(batch_size=TEXT_BATCH, steps=300, eval_every=20, metric="cross-entropy",
                   head="head", make_data=help_text, make_batches=text_windows,
                   loss_fn=cross_entropy, metric_fn=_value(cross_entropy))
_register(Workload(
    name="char_transformer",
    summary="character-level transformer LM (pre-LN, 2 layers, width 64, 4 heads, context 32)"
            " on the standard library's help texts",
    target=2.329, make_model=char_transformer, **_TEXT,
    target_setter=("adamw", 0.001577406962315143), target_rule=TARGET_RULE,
))
_register(Workload(
    name="char_transformer_postln",
    summary="the same transformer with post-LN blocks",
    target=2.197, make_model=functools.partial(char_transformer, pre_norm=False),
    **_TEXT, base="char_transformer",
    target_setter=("nadamw", 0.0036170540848218876), target_rule=TARGET_RULE,
))


def get(name: str) -> Workload:
    """The workload called ``name``."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"Invalid workload: {name!r} (known: {sorted(WORKLOADS)})") from None


def base_workloads() -> list[Workload]:
    return [w for w in WORKLOADS.values() if w.base is None]


def held_out(base: str) -> list[Workload]:
    """The held-out variants of the workload ``base``."""
    return [w for w in WORKLOADS.values() if w.base == base]
