"""The first two steps of each optimizer, computed by hand.

One scalar parameter θ₀ = 1 receives the gradients g₁ = 2 and then g₂ = −1 (or 0.1). Each
expected value below is the update rule evaluated with pencil-and-paper arithmetic, written out
so that a reader can follow it; ε is 0 where that keeps the arithmetic exact.
"""

from math import sqrt

import pytest
import torch

import optedu
from optimizers import MATRICES_ONLY, OURS, TWIN


# Muon's examples use the cubic Newton-Schulz coefficients, whose fixed point is 1: on a 1 x 1
# matrix, momentum B ≠ 0 orthogonalises to sign(B) exactly (bfloat16 holds ±1, 1.5 and 0.5)
CUBIC = (1.5, -0.5, 0.0)
W2 = 2**-0.8  # Adafactor's 1 - β̂2 at t = 2 (t^c, c = -0.8)


def mu(t, psi=4e-3, beta1=0.9):
    """NAdam's momentum schedule μ_t = β1 (1 − ½·0.96^(tψ)) at torch's defaults."""
    return beta1 * (1 - 0.5 * 0.96 ** (t * psi))


# (name, optimizer class, kwargs, (g1, g2), (θ1, θ2) by hand)
EXAMPLES = [
    ("sgd", optedu.SGD, dict(lr=0.1), (2.0, -1.0),
     (1 - 0.1 * 2,                      # θ1 = 0.8
      0.8 - 0.1 * -1)),                 # θ2 = 0.9
    ("sgd weight decay", optedu.SGD, dict(lr=0.1, weight_decay=0.1), (2.0, -1.0),
     (1 - 0.1 * (2 + 0.1 * 1),          # g1 + λθ0 = 2.1 → θ1 = 0.79
      0.79 - 0.1 * (-1 + 0.1 * 0.79))),  # g2 + λθ1 = −0.921 → θ2 = 0.8821
    ("sgd momentum", optedu.SGD, dict(lr=0.1, momentum=0.9), (2.0, -1.0),
     (1 - 0.1 * 2,                      # b1 = g1 = 2 (no dampening on the first step)
      0.8 - 0.1 * (0.9 * 2 - 1))),      # b2 = 0.9·2 − 1 = 0.8 → θ2 = 0.72
    ("sgd dampening", optedu.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5), (2.0, -1.0),
     (1 - 0.1 * 2,                      # b1 = g1 = 2, undampened
      0.8 - 0.1 * (0.9 * 2 + 0.5 * -1))),  # b2 = 1.8 − 0.5 = 1.3 → θ2 = 0.67
    ("sgd nesterov", optedu.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), (2.0, -1.0),
     (1 - 0.1 * (2 + 0.9 * 2),          # b1 = 2, d1 = g1 + μ b1 = 3.8 → θ1 = 0.62
      0.62 - 0.1 * (-1 + 0.9 * 0.8))),  # b2 = 0.8, d2 = −1 + 0.72 = −0.28 → θ2 = 0.648
    ("adagrad", optedu.Adagrad, dict(lr=0.1, eps=0.0), (2.0, -1.0),
     (1 - 0.1 * 2 / sqrt(4),            # G1 = 4 → θ1 = 0.9
      0.9 + 0.1 * 1 / sqrt(5))),        # G2 = 5 → θ2 = 0.9 + 0.1/√5
    ("adagrad lr_decay + initial accumulator", optedu.Adagrad,
     dict(lr=0.1, lr_decay=0.5, initial_accumulator_value=1.0, eps=0.0), (2.0, -1.0),
     (1 - 0.1 * 2 / sqrt(1 + 4),        # G1 = 1 + 4, rate 0.1/(1 + 0·0.5)
      (1 - 0.2 / sqrt(5)) + (0.1 / 1.5) * 1 / sqrt(6))),  # G2 = 6, rate 0.1/(1 + 1·0.5)
    ("rmsprop", optedu.RMSprop, dict(lr=0.01, alpha=0.9, eps=0.0), (2.0, -1.0),
     (1 - 0.01 * 2 / sqrt(0.1 * 4),     # v1 = 0.1·4 = 0.4
      (1 - 0.02 / sqrt(0.4)) + 0.01 / sqrt(0.9 * 0.4 + 0.1 * 1))),  # v2 = 0.46
    ("rmsprop centered", optedu.RMSprop, dict(lr=0.01, alpha=0.9, eps=0.0, centered=True),
     (2.0, -1.0),
     (1 - 0.01 * 2 / sqrt(0.4 - 0.2**2),  # ḡ1 = 0.2, v1 − ḡ1² = 0.36 → θ1 = 1 − 0.02/0.6
      (1 - 0.02 / 0.6) + 0.01 / sqrt(0.46 - 0.08**2))),  # ḡ2 = 0.18 − 0.1 = 0.08
    ("rmsprop momentum", optedu.RMSprop, dict(lr=0.01, alpha=0.9, eps=0.0, momentum=0.5),
     (2.0, -1.0),
     (1 - 0.01 * (2 / sqrt(0.4)),       # b1 = g1/√v1
      (1 - 0.01 * 2 / sqrt(0.4)) - 0.01 * (0.5 * 2 / sqrt(0.4) - 1 / sqrt(0.46)))),
    ("adam", optedu.Adam, dict(lr=0.1, eps=0.0), (2.0, -1.0),
     (1 - 0.1 * (0.2 / 0.1) / sqrt(0.004 / 0.001),   # m̂1 = 2, v̂1 = 4 → θ1 = 0.9
      0.9 - 0.1 * (0.08 / 0.19) / sqrt(0.004996 / 0.001999))),  # m2 = 0.08, v2 = 0.004996
    ("adam L2", optedu.Adam, dict(lr=0.1, eps=0.0, weight_decay=0.5), (2.0, -1.0),
     (1 - 0.1,                          # g1 + 0.5·1 = 2.5: first step is lr·sign → θ1 = 0.9
      0.9 - 0.1 * ((0.9 * 0.25 + 0.1 * -0.55) / 0.19)
      / sqrt((0.999 * 0.001 * 6.25 + 0.001 * 0.3025) / 0.001999))),  # g2 + 0.5·0.9 = −0.55
    ("adamw", optedu.AdamW, dict(lr=0.1, eps=0.0, weight_decay=0.1), (2.0, -1.0),
     (1 * (1 - 0.01) - 0.1,             # shrink by 1 − ηλ = 0.99, then the Adam step 0.1
      0.89 * 0.99 - 0.1 * (0.08 / 0.19) / sqrt(0.004996 / 0.001999))),
    ("adam amsgrad", optedu.Adam, dict(lr=0.1, eps=0.0, betas=(0.9, 0.5), amsgrad=True),
     (2.0, 0.1),
     (1 - 0.1 * (0.2 / 0.1) / sqrt(2 / 0.5),   # v1 = 0.5·4 = 2 → θ1 = 0.9
      0.9 - 0.1 * (0.19 / 0.19) / sqrt(2 / 0.75))),  # v2 = 1.005 < v_max = 2 keeps 2
    ("adam maximize", optedu.Adam, dict(lr=0.1, eps=0.0, maximize=True), (2.0, -1.0),
     (1 + 0.1,                          # ascends: the mirror image of "adam"
      1.1 + 0.1 * (0.08 / 0.19) / sqrt(0.004996 / 0.001999))),
    ("adadelta", optedu.Adadelta, dict(lr=1.0, eps=0.01), (2.0, -1.0),
     (1 - sqrt(0.01) / sqrt(0.4 + 0.01) * 2,   # v1 = 0.1·4 = 0.4, u0 = 0: Δ1 = √ε/√(v1+ε)·g1
      (1 - 0.2 / sqrt(0.41))                   # u1 = 0.1·Δ1² = 0.004/0.41, v2 = 0.36 + 0.1
      + sqrt(0.004 / 0.41 + 0.01) / sqrt(0.46 + 0.01))),
    ("adamax", optedu.Adamax, dict(lr=0.1, eps=0.0), (2.0, -1.0),
     (1 - (0.1 / 0.1) * 0.2 / 2,               # m1 = 0.2, u1 = max(0, |2|) = 2 → θ1 = 0.9
      0.9 - (0.1 / 0.19) * 0.08 / 1.998)),     # m2 = 0.08, u2 = max(0.999·2, |−1|) = 1.998
    ("nadam", optedu.NAdam, dict(lr=0.1, eps=0.0), (2.0, -1.0),
     (1 - 0.1 * ((1 - mu(1)) / (1 - mu(1)) * 2    # √v̂1 = 2; g1 weighted by (1−μ1)/(1−μ1)
                 + mu(2) / (1 - mu(1) * mu(2)) * 0.2) / 2,   # m1 = 0.2 by μ2/(1−μ1μ2)
      (1 - 0.1 * (1 + mu(2) * 0.1 / (1 - mu(1) * mu(2))))    # θ1 simplified
      - 0.1 * ((1 - mu(2)) / (1 - mu(1) * mu(2)) * -1        # m2 = 0.08, v̂2 as for Adam
               + mu(3) / (1 - mu(1) * mu(2) * mu(3)) * 0.08)
      / sqrt(0.004996 / 0.001999))),
    ("radam", optedu.RAdam, dict(lr=0.1), (2.0, -1.0),
     (1 - 0.1 * 0.2 / 0.1,                     # ρ1 = 1, ρ2 ≈ 2 ≤ 5: both steps are momentum
      0.8 - 0.1 * 0.08 / 0.19)),               # SGD on m̂: m̂1 = 2, m̂2 = 0.08/0.19
    ("rprop sign holds", optedu.Rprop, dict(lr=0.1), (2.0, 0.1),
     (1 - 0.1,                                 # first step: Δ1 = lr = 0.1, sign(g1) = +1
      0.9 - 0.1 * 1.2)),                       # same sign: Δ2 = 1.2·0.1, the size of g2 unused
    ("rprop sign flips", optedu.Rprop, dict(lr=0.1), (2.0, -1.0),
     (1 - 0.1,
      0.9)),                                   # flip: Δ2 = 0.05 but g2 is zeroed, no move
    ("asgd", optedu.ASGD, dict(lr=0.1, lambd=0.1, t0=0.0), (2.0, -1.0),
     ((1 - 0.1 * 0.1) * 1 - 0.1 * 2,           # η1 = lr: shrink by 1 − λη1, then − η1 g1
      (1 - 0.1 * 0.1 / 1.01**0.75) * 0.79      # η2 = lr/(1 + λ·lr·1)^0.75
      + 0.1 / 1.01**0.75)),
    ("adafactor", optedu.Adafactor, dict(), (2.0, -1.0),
     (1 - 0.01 * 2 / 2,                        # α1 = RMS(θ0)·min(0.01, 1) = 0.01, v1 = g1² = 4
      0.99 + 0.0099 / sqrt(4 - 3 * W2))),      # α2 = 0.99·0.01, v2 = 4 + W2·(1 − 4), |U2| < 1
    ("adafactor decay + clipping", optedu.Adafactor, dict(weight_decay=0.5), (0.1, 2.0),
     (1 * (1 - 0.005) - 0.01,                  # α1 from θ0, then θ0·(1 − ηλ); U1 = 0.1/0.1
      0.985 * 0.995 - 0.00985)),  # v2 = 0.01 + 3.99·W2, U2 = 2/√v2 ≈ 1.32 > d = 1: clipped to 1
    ("muon", optedu.Muon, dict(lr=0.1, ns_coefficients=CUBIC), (2.0, -1.0),
     (1 * (1 - 0.01) - 0.1,                    # B1 = 0.05·2 = 0.1, Nesterov 2 + 0.95(0.1 − 2) > 0
      0.89 * 0.99 + 0.1)),                     # B2 = 0.045, −1 + 0.95(0.045 + 1) < 0: sign −1
    ("muon heavy ball", optedu.Muon, dict(lr=0.1, ns_coefficients=CUBIC, nesterov=False),
     (2.0, -1.0),
     (1 * (1 - 0.01) - 0.1,                    # O1 = sign(B1) = 1
      0.89 * 0.99 - 0.1)),                     # O2 = sign(B2) = sign(0.045) = 1: no turn yet
    ("muon match_rms_adamw", optedu.Muon,
     dict(lr=0.1, ns_coefficients=CUBIC, weight_decay=0.0, adjust_lr_fn="match_rms_adamw"),
     (2.0, -1.0),
     (1 - 0.1 * 0.2,                           # η' = 0.2·η·√max(1, 1)
      0.98 + 0.1 * 0.2)),
]


@pytest.fixture(autouse=True)
def float64_default():
    """The hand arithmetic is float64. NAdam keeps its μ product in a scalar tensor of the
    default dtype, as torch does: under a float32 default it is rounded (here by 1.5e-9
    relative in θ2, in optedu and torch alike), so every example runs under a float64 default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("name, cls, kwargs, grads, expected", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_first_two_steps_by_hand(name, cls, kwargs, grads, expected):
    shape = (1, 1) if cls in MATRICES_ONLY else (1,)  # Muon: a 1 x 1 matrix
    theta = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    optimizer = cls([theta], **kwargs)
    for g, want in zip(grads, expected):
        theta.grad = torch.full(shape, g, dtype=torch.float64)
        optimizer.step()
        assert theta.item() == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name, cls, kwargs, grads, expected", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_torch_agrees_with_the_hand_computation(name, cls, kwargs, grads, expected):
    """The same numbers from torch.optim: the hand arithmetic describes torch, not just optedu."""
    shape = (1, 1) if cls in MATRICES_ONLY else (1,)
    theta = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    optimizer = TWIN[cls]([theta], **kwargs)
    for g, want in zip(grads, expected):
        theta.grad = torch.full(shape, g, dtype=torch.float64)
        optimizer.step()
        assert theta.item() == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_every_optimizer_has_a_worked_example():
    """A row added to tests/optimizers.py needs its first two steps worked out here too."""
    assert {cls for _, cls, _, _, _ in EXAMPLES} == set(OURS)
