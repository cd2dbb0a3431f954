r"""Conventions ledger: one rule as torch, optax, Keras and the papers write it.

Every *form* here is a small function with one signature,

``form(param, grad_at, state, t, lr)``

that takes one step on one tensor in place: ``grad_at(x)`` returns the
gradient of step ``t`` at ``x`` (the look-ahead forms need it somewhere
else than at ``param``), ``state`` is a dict the form fills on its first
step, ``t`` counts from 1 and ``lr`` is the learning rate of this step (or
the schedule multiplier, for the paper's AdamW). Hyperparameters are
keyword-only; bind them with :func:`functools.partial`.

Every form is a VARIANT for comparison: torch's own rule is run from
``torch.optim`` itself (:func:`run_torch`), optax's from optax
(:func:`run_optax`). Where a variant exists elsewhere in optedu the form
wraps it, so each rule has one source:

- :func:`adam_eps_hat`: Kingma & Ba's end-of-section-2 form (TensorFlow,
  Keras), with Keras 3's decoupled ``weight_decay``;
- :func:`adam_eps_root`: optax's ``scale_by_adam`` with ``eps`` and
  ``eps_root``;
- :func:`adamw_paper`: Loshchilov & Hutter's Algorithm 2, decay
  :math:`\eta_t\lambda` with :math:`\eta_t` the schedule multiplier, or a
  fixed :math:`\lambda` per step;
- :func:`adagrad_eps_inside`: Keras's and optax's AdaGrad, with a starting
  sum;
- :func:`rmsprop_eps_inside`: Keras's, optax's default and Graves's
  RMSProp, plain or centred;
- :func:`rmsprop_lr_in_buffer`: the learning rate inside RMSProp's momentum
  buffer (Keras, Graves, optax's chain);
- :func:`ema_momentum`, :func:`velocity_momentum`: heavy ball as an average
  and in Sutskever's (Keras's) velocity;
- :func:`nesterov_lookahead`, :func:`nesterov_velocity`: Sutskever's
  look-ahead, reported at torch's point, and Keras's form;
- :func:`adamax_eps_after`: Keras's Adamax;
- :func:`nadam_keras`: Keras's NAdam, Dozat's momentum schedule at another
  speed;
- :func:`shampoo_root_lambda_max`: Anil et al.'s (Distributed Shampoo's)
  :math:`\epsilon\lambda_{\max}` added at root time;
- :func:`psgd_coin_fits`: Li's ``psgd_torch`` preconditioner fits, a coin
  per step;
- :func:`cautious_mask_mean`, :func:`cautious_adamw_timm`: timm's rescale of
  the cautious mask, :math:`n/\max(k, n/1000)`, and its cautious AdamW.

Two problems take every form: :func:`common_problem`, nine coordinates whose
gradients span every :math:`\epsilon` in use, and :class:`NetProblem`, a
small network's training run, to see which differences training notices.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from optedu.theory import momentum as _momentum
from optedu.theory import nesterov as _nesterov
from optedu.optim.variants import adagrad as _adagrad
from optedu.theory.variants import nesterov as _vnesterov
from optedu.optim.variants import rmsprop as _rmsprop
from optedu.optim.shampoo import inverse_root
from optedu.optim.variants.adam import adam_variant
from optedu.optim.cautious import cautious_adamw

GradAt = Callable[[torch.Tensor], torch.Tensor]
Form = Callable[[torch.Tensor, GradAt, dict, int, float], None]


# --- the common test problem and the runners --------------------------------

@dataclass(frozen=True)
class Problem:
    r"""A noisy quadratic whose coordinates live on very different scales.

    :math:`f(\theta) = \tfrac12 \sum_i s_i \theta_i^2`, with the gradient of
    step :math:`t` equal to :math:`s_i(\theta_i + \sigma \xi_{t,i})`:
    coordinate :math:`i` sees gradients of size about :math:`s_i`, so one
    run covers the gradient sizes where :math:`\epsilon` matters and where
    it does not. The noise :math:`\xi` is drawn once, so every form sees
    the same gradients at the same points.
    """

    scales: torch.Tensor
    noise: torch.Tensor
    sigma: float = 1.0

    @property
    def steps(self) -> int:
        return self.noise.shape[0]

    def start(self) -> torch.Tensor:
        return torch.ones_like(self.scales)

    def grad(self, theta: torch.Tensor, t: int) -> torch.Tensor:
        return self.scales * (theta + self.sigma * self.noise[t - 1])


def common_problem(steps: int = 200, seed: int = 0) -> Problem:
    """The ledger's test problem: scales 10⁻⁸, 10⁻⁷, ..., 1, float64."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-8, 0, 9, dtype=torch.float64)
    noise = torch.randn(steps, 9, generator=gen, dtype=torch.float64)
    return Problem(scales, noise)


class NetProblem:
    r"""A small training run: a 10-32-1 tanh network, logistic loss, on the
    noisy labels of a linear teacher; minibatches of 32 drawn once.

    The parameters are one flat float64 vector (``start()``), so every form
    and :func:`run`, :func:`run_torch` take it as they take :class:`Problem`;
    ``grad(theta, t)`` is the minibatch gradient of step ``t``, written out
    (a test checks it against autograd), ``loss(theta)`` the loss over the
    whole training set.
    """

    def __init__(self, seed: int = 0, steps: int = 150, n: int = 512,
                 d: int = 10, h: int = 32, batch: int = 32) -> None:
        gen = torch.Generator().manual_seed(seed)
        f64 = torch.float64
        self.x = torch.randn(n, d, generator=gen, dtype=f64)
        teacher = torch.randn(d, generator=gen, dtype=f64)
        noisy = self.x @ teacher + 0.5 * torch.randn(n, generator=gen, dtype=f64)
        self.y = (noisy > 0).to(torch.float64)
        self.batches = torch.randint(n, (steps, batch), generator=gen)
        self.shapes = ((d, h), (h,), (h,), (1,))
        w1 = torch.randn(d, h, generator=gen, dtype=f64) / math.sqrt(d)
        w2 = torch.randn(h, generator=gen, dtype=f64) / math.sqrt(h)
        self.theta0 = torch.cat([w1.reshape(-1), torch.zeros(h,
                                 dtype=torch.float64), w2,
                                 torch.zeros(1, dtype=torch.float64)])

    @property
    def steps(self) -> int:
        return self.batches.shape[0]

    def start(self) -> torch.Tensor:
        return self.theta0.clone()

    def _unpack(self, theta: torch.Tensor) -> list[torch.Tensor]:
        sizes = [math.prod(s) for s in self.shapes]
        return [t.view(s) for t, s in zip(theta.split(sizes), self.shapes)]

    def loss(self, theta: torch.Tensor) -> float:
        w1, b1, w2, b2 = self._unpack(theta)
        out = torch.tanh(self.x @ w1 + b1) @ w2 + b2
        return torch.nn.functional.binary_cross_entropy_with_logits(
            out, self.y).item()

    def grad(self, theta: torch.Tensor, t: int) -> torch.Tensor:
        w1, b1, w2, b2 = self._unpack(theta)
        idx = self.batches[t - 1]
        x, y = self.x[idx], self.y[idx]
        hidden = torch.tanh(x @ w1 + b1)
        r = (torch.sigmoid(hidden @ w2 + b2) - y) / len(idx)   # dL/d out
        dz = torch.outer(r, w2) * (1 - hidden**2)               # dL/d z
        return torch.cat([(x.T @ dz).reshape(-1), dz.sum(0),
                          hidden.T @ r, r.sum().reshape(1)])


def run(form: Form, problem: Problem, lrs: Sequence[float]) -> torch.Tensor:
    """The path (steps + 1 rows) of ``form`` on ``problem`` at rates ``lrs``."""
    theta = problem.start()
    state: dict[str, Any] = {}
    path = [theta.clone()]
    for t, lr in enumerate(lrs, start=1):
        form(theta, functools.partial(problem.grad, t=t), state, t, lr)
        path.append(theta.clone())
    return torch.stack(path)


def run_torch(make: Callable[[list], torch.optim.Optimizer],
              problem: Problem, lrs: Sequence[float],
              **per_step: Sequence[float]) -> torch.Tensor:
    """The path of a torch optimizer; the rate of every group is set to
    ``lrs[t - 1]`` before step ``t``, as a scheduler would, and so is
    every hyperparameter given as a sequence in ``per_step`` (for example
    ``momentum=[...]``)."""
    theta = problem.start().requires_grad_()
    opt = make([theta])
    path = [theta.detach().clone()]
    for t, lr in enumerate(lrs, start=1):
        for group in opt.param_groups:
            group["lr"] = lr
            group.update({k: v[t - 1] for k, v in per_step.items()})
        theta.grad = problem.grad(theta.detach(), t)
        opt.step()
        path.append(theta.detach().clone())
    return torch.stack(path)


def run_optax(make: Callable[[Callable], Any], problem: Problem,
              lrs: Sequence[float]) -> torch.Tensor:
    """The path of an optax transformation built by ``make(schedule)``.

    ``schedule(count)`` returns ``lrs[count]``, so optax's learning rate at
    step ``t`` is ``lrs[t - 1]``. One jitted step per call, with the
    problem's gradient :meth:`Problem.grad` written again in jax (the same
    operations in the same order, so the same numbers: the ledger's
    assertions against torch check it). jax must run in float64
    (``jax.config.update("jax_enable_x64", True)``). optax and jax are
    imported here, not at the top, so that optedu does not need them.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    rates = jnp.asarray(list(lrs), dtype=jnp.float64)
    tx = make(lambda count: rates[count])
    scales = jnp.asarray(problem.scales.numpy())
    noise = jnp.asarray(problem.noise.numpy())

    @jax.jit
    def step(params, opt_state, index):
        grad = scales * (params + problem.sigma * noise[index])
        updates, opt_state = tx.update(grad, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    params = jnp.asarray(problem.start().numpy())
    opt_state, path = tx.init(params), [params]
    for index in range(len(lrs)):
        params, opt_state = step(params, opt_state, index)
        path.append(params)
    return torch.from_numpy(np.array(jnp.stack(path), dtype=np.float64))


def gap(a: torch.Tensor, b: torch.Tensor) -> float:
    r"""Largest difference :math:`|\theta^a - \theta^b|` over a run (all
    steps and coordinates). The runs start at 1, so it is relative to the
    starting point."""
    return (a - b).abs().max().item()


def source_lines(obj: Any, *needles: str) -> list[str]:
    """The lines of ``obj``'s source that contain any of ``needles``,
    stripped and each once: the lines that decide a convention, read from
    the code."""
    lines = inspect.getsource(obj).splitlines()
    found = [ln.strip() for ln in lines if any(n in ln for n in needles)]
    return list(dict.fromkeys(found))


# --- Adam -------------------------------------------------------------------

def _adam_state(state: dict, param: torch.Tensor) -> None:
    if not state:
        state.update(m=torch.zeros_like(param), v=torch.zeros_like(param),
                     vmax=torch.zeros_like(param))


def adam_eps_hat(param: torch.Tensor, grad_at: GradAt, state: dict, t: int,
                 lr: float, *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-7, weight_decay: float = 0.0) -> None:
    r"""VARIANT (TensorFlow, Keras 3 ``Adam``/``AdamW``): :math:`\hat\epsilon`.

    .. math::

        \theta \leftarrow \theta - \eta\lambda\,\theta, \qquad
        \theta \leftarrow \theta - \eta\,
        \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
        \frac{m_t}{\sqrt{v_t} + \hat\epsilon}

    Kingma & Ba's end-of-section-2 form (``optedu.optim.variants.adam``,
    ``"epsilon hat"``), after Keras 3's decoupled decay (its base
    optimizer applies it to every optimizer with ``weight_decay``, before
    the step). Keras's defaults: :math:`\hat\epsilon = 10^{-7}`; ``AdamW``
    :math:`\lambda = 0.004`, ``Adam`` none.
    """
    _adam_state(state, param)
    g = grad_at(param)                             # at θ_{t-1}
    param.mul_(1 - lr * weight_decay)              # θ ← θ - ηλθ (Keras)
    adam_variant(param, g, state["m"], state["v"],
                 state["vmax"], t, lr=lr, beta1=betas[0], beta2=betas[1],
                 eps=eps, form="epsilon hat")


def adam_eps_root(param: torch.Tensor, grad_at: GradAt, state: dict, t: int,
                  lr: float, *, betas: tuple[float, float] = (0.9, 0.999),
                  eps: float = 1e-8, eps_root: float = 0.0) -> None:
    r"""VARIANT (optax ``scale_by_adam``): two epsilons.

    .. math::

        \theta \leftarrow \theta - \eta\,
        \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{\text{root}}} + \epsilon}

    With ``eps_root=0`` it is torch's Adam; with ``eps=0`` the
    :math:`\epsilon` sits inside the root, after the bias correction.
    """
    _adam_state(state, param)
    beta1, beta2 = betas
    g = grad_at(param)
    state["m"].mul_(beta1).add_(g, alpha=1 - beta1)           # m_t
    state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)    # v_t
    m_hat = state["m"] / (1 - beta1**t)                        # m̂_t
    v_hat = state["v"] / (1 - beta2**t)                        # v̂_t
    param.sub_(lr * m_hat / ((v_hat + eps_root).sqrt() + eps))


def adamw_paper(param: torch.Tensor, grad_at: GradAt, state: dict, t: int,
                lr: float, *, alpha: float, weight_decay: float,
                betas: tuple[float, float] = (0.9, 0.999),
                eps: float = 1e-8, follow_schedule: bool = True) -> None:
    r"""VARIANT (Loshchilov & Hutter, Algorithm 2): the decay without
    :math:`\alpha`.

    .. math::

        \theta_t = \theta_{t-1} - \eta_t \Bigl(\alpha\,
        \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda\,\theta_{t-1}\Bigr)

    ``lr`` is the schedule multiplier :math:`\eta_t`, ``alpha`` the
    learning rate :math:`\alpha`. With ``follow_schedule=False`` the decay
    is :math:`\lambda\theta_{t-1}` at every step ("fully decoupled"). torch's
    ``AdamW(lr=αη_t, weight_decay=λ/α)`` is the paper's form.
    """
    _adam_state(state, param)
    direction = torch.zeros_like(param)          # becomes -m̂/(√v̂ + ε)
    adam_variant(direction, grad_at(param), state["m"], state["v"],
                 state["vmax"], t, lr=1.0, beta1=betas[0], beta2=betas[1],
                 eps=eps, form="algorithm 1")
    decay = lr * weight_decay if follow_schedule else weight_decay
    param.mul_(1 - decay).add_(direction, alpha=lr * alpha)


def adamax_eps_after(param: torch.Tensor, grad_at: GradAt, state: dict,
                     t: int, lr: float, *,
                     betas: tuple[float, float] = (0.9, 0.999),
                     eps: float = 1e-7) -> None:
    r"""VARIANT (Keras 3 ``Adamax``): :math:`\epsilon` after the maximum.

    .. math::

        u_t = \max(\beta_2 u_{t-1}, |g_t|), \qquad
        \theta \leftarrow \theta
        - \frac{\eta\, m_t}{(1-\beta_1^t)(u_t+\epsilon)}

    torch and optax put it inside:
    :math:`\max(\beta_2 u_{t-1}, |g_t|+\epsilon)`.
    """
    if not state:
        state.update(m=torch.zeros_like(param), u=torch.zeros_like(param))
    beta1, beta2 = betas
    g = grad_at(param)
    state["m"].mul_(beta1).add_(g, alpha=1 - beta1)                 # m_t
    torch.maximum(state["u"] * beta2, g.abs(), out=state["u"])      # u_t
    param.sub_(lr * state["m"] / ((1 - beta1**t) * (state["u"] + eps)))


def nadam_keras(param: torch.Tensor, grad_at: GradAt, state: dict, t: int,
                lr: float, *, betas: tuple[float, float] = (0.9, 0.999),
                eps: float = 1e-7, psi: float = 1.0) -> None:
    r"""VARIANT (Keras 3 ``Nadam``): Dozat's momentum schedule with
    :math:`\psi = 1`.

    .. math::

        \mu_t &= \beta_1\bigl(1 - \tfrac12\, 0.96^{\,t\psi}\bigr), \qquad
        \bar m_t = \frac{\mu_{t+1} m_t}{1 - \prod_{i\le t+1}\mu_i}
        + \frac{(1-\mu_t)\, g_t}{1 - \prod_{i\le t}\mu_i} \\
        \theta &\leftarrow \theta - \eta\, \bar m_t / (\sqrt{\hat v_t}
        + \epsilon)

    Keras computes, in effect, ``u_t = beta_1 * (1 - 0.5 * 0.96 ** t)``: the
    power is the step itself, :math:`\psi = 1`. torch's ``NAdam`` has the
    same rule with ``momentum_decay`` :math:`= \psi = 0.004` by default
    (:math:`0.96^{t/250}`); optax's ``nadam`` keeps
    :math:`\mu_t = \beta_1`.
    """
    if not state:
        state.update(m=torch.zeros_like(param), v=torch.zeros_like(param),
                     mu_product=1.0)
    beta1, beta2 = betas
    g = grad_at(param)
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * psi))                  # μ_t
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))       # μ_{t+1}
    state["mu_product"] *= mu                                  # Π_{i≤t} μ_i
    state["m"].mul_(beta1).add_(g, alpha=1 - beta1)             # m_t
    state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)      # v_t
    m_bar = (mu_next * state["m"] / (1 - state["mu_product"] * mu_next)
             + (1 - mu) * g / (1 - state["mu_product"]))        # m̄_t
    v_hat = state["v"] / (1 - beta2**t)                         # v̂_t
    param.sub_(lr * m_bar / (v_hat.sqrt() + eps))


# --- AdaGrad and RMSProp ------------------------------------------------------

def adagrad_eps_inside(param: torch.Tensor, grad_at: GradAt, state: dict,
                       t: int, lr: float, *, eps: float = 1e-7,
                       initial_accumulator_value: float = 0.1) -> None:
    r"""VARIANT (Keras 3, optax ``adagrad``): :math:`\eta g/\sqrt{G_t+\epsilon}`
    from :math:`G_0` = ``initial_accumulator_value`` (both default to 0.1).

    Wraps :func:`optedu.optim.variants.adagrad.adagrad_eps_inside`. It is torch's
    Adagrad started at :math:`G_0 + \epsilon` with ``eps=0``.
    """
    if not state:
        state["sum"] = torch.full_like(param, initial_accumulator_value)
    _adagrad.adagrad_eps_inside(param, grad_at(param), state["sum"], lr=lr,
                                eps=eps)


def rmsprop_eps_inside(param: torch.Tensor, grad_at: GradAt, state: dict,
                       t: int, lr: float, *, alpha: float = 0.9,
                       eps: float = 1e-7, centered: bool = False) -> None:
    r"""VARIANT (Keras 3, optax's default, Graves 2013): the root of
    :math:`v_t + \epsilon`, or of :math:`v_t - \bar g_t^2 + \epsilon`
    when ``centered``.

    .. math::

        \bar g_t = \alpha \bar g_{t-1} + (1-\alpha) g_t, \qquad
        \theta \leftarrow \theta - \eta\, g_t/\sqrt{v_t - \bar g_t^2
        + \epsilon}

    The plain form wraps :func:`optedu.optim.variants.rmsprop.rmsprop_eps_inside`.
    torch divides by :math:`\sqrt{v_t - \bar g_t^2} + \epsilon`.
    """
    if not state:
        state.update(v=torch.zeros_like(param), gbar=torch.zeros_like(param))
    g = grad_at(param)
    if not centered:
        _rmsprop.rmsprop_eps_inside(param, g, state["v"], lr=lr, alpha=alpha,
                                    eps=eps)
        return
    state["v"].mul_(alpha).addcmul_(g, g, value=1 - alpha)   # v_t
    state["gbar"].lerp_(g, 1 - alpha)                         # ḡ_t
    variance = state["v"] - state["gbar"] ** 2                # v_t - ḡ_t²
    param.sub_(lr * g / (variance + eps).sqrt())


def rmsprop_lr_in_buffer(param: torch.Tensor, grad_at: GradAt, state: dict,
                         t: int, lr: float, *, alpha: float = 0.99,
                         eps: float = 1e-8, momentum: float = 0.9) -> None:
    r"""VARIANT (Keras 3, Graves 2013, optax's ``rmsprop`` chain): the
    momentum buffer holds steps, :math:`b_t = \mu b_{t-1} + \eta_t g_t/s_t`.

    Wraps :func:`optedu.optim.variants.rmsprop.rmsprop_keras_momentum`
    (:math:`\epsilon` outside the root, as torch). torch's buffer holds
    :math:`g/s` and is multiplied by the current :math:`\eta_t`.
    """
    if not state:
        state.update(v=torch.zeros_like(param), b=torch.zeros_like(param))
    _rmsprop.rmsprop_keras_momentum(param, grad_at(param), state["v"],
                                    state["b"], lr=lr, alpha=alpha, eps=eps,
                                    momentum=momentum)


# --- momentum and Nesterov ----------------------------------------------------

def _at(value: float | Sequence[float], t: int) -> float:
    return value[t - 1] if isinstance(value, Sequence) else value


def ema_momentum(param: torch.Tensor, grad_at: GradAt, state: dict, t: int,
                 lr: float, *, beta: float | Sequence[float]) -> None:
    r"""VARIANT (Adam's first moment, many course notes):
    :math:`v_t = \beta v_{t-1} + (1-\beta) g_t`, :math:`\theta \leftarrow
    \theta - \eta v_t`. ``beta`` may be a sequence (one value per step).

    Wraps :func:`optedu.theory.momentum.ema_momentum`.
    """
    if not state:
        state["v"] = torch.zeros_like(param)
    _momentum.ema_momentum(param, grad_at(param), state["v"], lr=lr,
                           beta=_at(beta, t))


def velocity_momentum(param: torch.Tensor, grad_at: GradAt, state: dict,
                      t: int, lr: float, *, momentum: float) -> None:
    r"""VARIANT (Sutskever et al. 2013, Keras 3 ``SGD``): the learning rate
    inside the velocity, :math:`v_t = \mu v_{t-1} - \eta_t g_t`,
    :math:`\theta \leftarrow \theta + v_t`.

    Wraps :func:`optedu.theory.momentum.sutskever_momentum`.
    """
    if not state:
        state["v"] = torch.zeros_like(param)
    _momentum.sutskever_momentum(param, grad_at(param), state["v"], lr=lr,
                                 momentum=momentum)


def nesterov_lookahead(param: torch.Tensor, grad_at: GradAt, state: dict,
                       t: int, lr: float, *, momentum: float) -> None:
    r"""VARIANT (Sutskever et al. 2013): the gradient at the look-ahead point.

    Keeps Sutskever's :math:`(\theta, v)` in ``state`` and writes torch's
    point :math:`\phi = \theta + \mu v` into ``param``, so the path can be
    set beside torch's. Wraps :func:`optedu.theory.nesterov.nag_lookahead`.
    """
    if not state:
        state.update(theta=param.clone(), v=torch.zeros_like(param))
    _nesterov.nag_lookahead(state["theta"], state["v"], grad_at, lr=lr,
                            momentum=momentum)
    param.copy_(state["theta"] + momentum * state["v"])    # φ = θ + μ v


def nesterov_velocity(param: torch.Tensor, grad_at: GradAt, state: dict,
                      t: int, lr: float, *, momentum: float) -> None:
    r"""VARIANT (Bengio et al. 2013, Keras 3 ``SGD(nesterov=True)``):
    :math:`v_t = \mu v_{t-1} - \eta_t g_t`,
    :math:`\phi \leftarrow \phi + \mu v_t - \eta_t g_t`.

    Wraps :func:`optedu.theory.variants.nesterov.keras_nesterov`.
    """
    if not state:
        state["v"] = torch.zeros_like(param)
    _vnesterov.keras_nesterov(param, state["v"], grad_at(param), lr=lr,
                              momentum=momentum)


def effective_eps(eps_hat: float, beta2: float, t: int) -> float:
    r"""The :math:`\epsilon` of torch's form that Keras's :math:`\hat\epsilon`
    amounts to at step :math:`t`: :math:`\hat\epsilon/\sqrt{1-\beta_2^t}`."""
    return eps_hat / math.sqrt(1 - beta2**t)


# --- the newer rules ----------------------------------------------------------

def shampoo_root_lambda_max(stats: torch.Tensor, power: float, *,
                            eps: float = 1e-6) -> torch.Tensor:
    r"""VARIANT (Anil et al. 2020, Distributed Shampoo): the damping at root
    time, scaled by the largest eigenvalue.

    .. math::

        P = \bigl(H + \epsilon\,\lambda_{\max}(H)\, I\bigr)^{-1/p},
        \qquad H = \textstyle\sum_s G_s G_s^\top

    ``pytorch_optimizer.Shampoo`` (and :class:`optedu.Shampoo`) start the
    statistics at :math:`\epsilon I` instead (Gupta et al., Algorithm 1):
    :math:`(\epsilon I + H)^{-1/p}`. Uses
    :func:`optedu.optim.shampoo.inverse_root`.
    """
    if not eps >= 0.0:
        raise ValueError(f"Invalid eps: {eps}")
    if not power > 0:
        raise ValueError(f"Invalid power: {power}")
    lam_max = torch.linalg.eigvalsh(stats).max()                 # λ_max(H)
    eye = torch.eye(stats.shape[0], dtype=stats.dtype)
    return inverse_root(stats + eps * lam_max * eye, power)     # (H+ελI)^-1/p


def psgd_coin_fits(prob: float, steps: int,
                   generator: torch.Generator) -> list[bool]:
    r"""VARIANT (Li's ``psgd_torch``): whether the preconditioner is fitted at
    each of ``steps`` steps, a coin :math:`u_t < p` with :math:`u_t` uniform
    on :math:`[0, 1)` drawn from ``generator``.

    kron-torch (and :class:`optedu.Kron`) read the same ``p`` as a period:
    a fit every :math:`\lceil 1/p \rceil` steps, no randomness.
    """
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"Invalid prob: {prob}")
    if steps < 0:
        raise ValueError(f"Invalid steps: {steps}")
    return [bool(torch.rand([], generator=generator) < prob)
            for _ in range(steps)]


def cautious_mask_mean(update: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    r"""VARIANT (timm 1.0.31, ``caution=True``): the cautious mask rescaled by
    the inverse of its mean, held at :math:`10^{-3}` or more.

    .. math::

        \phi = \mathbb 1[u \odot g > 0]\,\frac{n}{\max(k,\ n/1000)}

    with :math:`n` the tensor's size and :math:`k` the agreeing coordinates.
    ``pytorch_optimizer`` and optedu (:func:`optedu.optim.cautious.cautious_mask`)
    take :math:`n/(k+1)`; the paper's one-line listing (arXiv v4) divides by the
    mask's mean plus :math:`\epsilon`, :math:`n/(k + n\epsilon)`.
    """
    mask = (update * grad > 0).to(grad.dtype)              # 1[u_i g_i > 0]
    return mask.div_(mask.mean().clamp_(min=1e-3))         # / max(k/n, 1e-3)


def cautious_adamw_timm(param: torch.Tensor, grad_at: GradAt, state: dict,
                        t: int, lr: float, *,
                        betas: tuple[float, float] = (0.9, 0.999),
                        eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
    r"""VARIANT (timm 1.0.31 ``AdamWLegacy(caution=True)``, its ``"cadamw"``):
    optedu's cautious AdamW (:func:`optedu.optim.cautious.cautious_adamw`)
    with timm's rescale, :func:`cautious_mask_mean`. timm's defaults.
    """
    _adam_state(state, param)
    cautious_adamw(param, grad_at(param), state["m"], state["v"], None, t,
                   lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                   weight_decay=weight_decay, maximize=False,
                   mask=cautious_mask_mean)
