r"""The cheat sheet's written content: one :class:`Entry` per optimizer class, the closed forms of
the schedules, and the settings the measured columns run with.

Adding an optimizer adds one :class:`Entry` to :data:`ENTRIES`: the update rule in one line of
LaTeX, what the optimizer is used for, one pitfall and the chapter section that demonstrates the
pitfall. The chapter that teaches it, its place in the family tree (:data:`LINEAGE`) and its
reference package (:data:`REFERENCES`) are read from :mod:`optedu.optim.catalogue`.
:mod:`optedu.practice.cheatsheet` renders these beside what it reads from the package
(arguments, defaults, state bytes); ``tests/test_layout.py`` fails while an exported optimizer
has no entry. Imports: :mod:`optedu.optim.catalogue`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from optedu.optim.catalogue import CATALOGUE, RULES

__all__ = ["Entry", "ENTRIES", "LINEAGE", "SCHEDULES", "SHAPES", "SETTINGS",
           "VARIANTS", "HIDDEN_ARGUMENTS", "REFERENCES"]


@dataclass(frozen=True)
class Entry:
    """The written part of one line of the cheat sheet.

    ``rule``: LaTeX, one line (symbols of the key: :math:`g_t` the gradient,
    :math:`m_t, v_t` Adam's averages, hats their bias corrections).
    ``section``: the heading, as written in the chapter, of the section
    that demonstrates the pitfall; ``where``: its chapter, if not
    ``chapter``. ``chapter``: the notebook stem of the chapter that teaches
    the class, the catalogue's (:attr:`optedu.optim.catalogue.Rule.chapter`),
    filled in by :data:`ENTRIES`.
    """

    rule: str
    use: str
    pitfall: str
    section: str
    where: str = ""
    chapter: str = ""

    @property
    def section_chapter(self) -> str:
        return self.where or self.chapter


_ADAM_STEP = r"\eta\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}"
_SF = (r"y_t=(1-\beta)z_t+\beta x_t,\ z_{t+1}=z_t-\gamma_t GRAD"
       r",\ x_{t+1}=(1-c_{t+1})x_t+c_{t+1}z_{t+1}")
_8BIT = (r"m_t,v_t\text{ kept as }c_{q}a_b,\ "
         r"q=\arg\min_k|x/a_b-c_k|;\ ")

_WRITTEN: dict[str, Entry] = {
    "SGD": Entry(
        r"b_t=\mu b_{t-1}+(1-\tau)g_t\ (b_1=g_1),\ "
        r"\theta_t=\theta_{t-1}-\eta b_t",
        "The baseline; with momentum and a step or cosine schedule, the "
        "classic recipe for vision models.",
        "torch's buffer is a sum, not an average: along a steady gradient "
        "the step tends to ηg/(1−μ), so a rate tuned for the EMA form "
        "must be multiplied by 1−μ.",
        "Three ways to write momentum", "momentum"),
    "Adagrad": Entry(
        r"G_t=G_{t-1}+g_t^2,\ \theta_t=\theta_{t-1}"
        r"-\frac{\eta\,g_t}{\sqrt{G_t}+\epsilon}",
        "Rare, badly scaled features (sparse inputs), convex problems.",
        "The sum only grows: on a moving target the rate shrinks after "
        "every change and never comes back.",
        "A moving target: where the rate dies"),
    "RMSprop": Entry(
        r"v_t=\alpha v_{t-1}+(1-\alpha)g_t^2,\ \theta_t=\theta_{t-1}"
        r"-\frac{\eta\,g_t}{\sqrt{v_t}+\epsilon}",
        "AdaGrad that forgets: gradients whose size changes during "
        "training.",
        "No bias correction: with v₀ = 0 the first steps are longer than "
        "η, the first one η/√(1−α).",
        "The rule"),
    "Adam": Entry(
        r"\theta_t=\theta_{t-1}-" + _ADAM_STEP,
        "The default for most networks: steps of about η whatever the "
        "scale of the loss.",
        "weight_decay is L2: λθ joins g and is divided by √v̂, so weights "
        "with large gradients are hardly decayed. Use AdamW.",
        "Adam + L2 leaves the weights with large gradients undecayed", "adamw"),
    "AdamW": Entry(
        r"\theta_t=(1-\eta\lambda)\theta_{t-1}-" + _ADAM_STEP,
        "Transformers and most large models: Adam with the decay taken out "
        "of the gradient (not divided by √v̂).",
        "The decay per step is ηλ: a schedule, or a new learning rate, "
        "changes the decay too.",
        "What a `weight_decay` number means"),
    "AdamAtan2": Entry(
        r"\theta_t=(1-\eta\lambda)\theta_{t-1}-\eta\,a\,\mathrm{atan2}"
        r"(\hat m_t,\,b\sqrt{\hat v_t})",
        "AdamW without ε: the same step at every gradient scale (wide layers, "
        "tiny gradients).",
        "Bounded, not small: a gradient back after a silence still steps up to "
        "aπ/2 ≈ 2η a coordinate, not η.",
        "Adam without ε: Adam-atan2"),
    "StableAdamW": Entry(
        r"\eta_t=\eta/\max\big(1,\sqrt{\mathrm{mean}(g_t^2/v_t)}\big),\ "
        r"\theta_t=(1-\eta_t\lambda)\theta_{t-1}-\eta_t\frac{m_t}{\sqrt{v_t}+\epsilon}",
        "AdamW for layers whose gradient can outrun v (quiet, then back): "
        "the step stays near η.",
        "The RMS is over the whole tensor: one rare row of a large embedding "
        "table barely moves it, and that row still takes Adam's long step.",
        "Update clipping: StableAdamW"),
    "Adam8bit": Entry(
        _8BIT + r"\text{Adam step}",
        "Adam's state in about a quarter of the memory, for large "
        "tensors (bitsandbytes' block-wise layout).",
        "A linear code rounds the small entries of v to 0, and Adam then "
        "divides by ε: steps of η m̂/ε. Keep v in the dynamic code, better "
        "no_zero.",
        "8-bit Adam: memory against drift"),
    "AdamW8bit": Entry(
        _8BIT + r"\text{AdamW step}",
        "AdamW's state in about a quarter of the memory, for large "
        "tensors.",
        "Tensors under min_8bit_size elements (biases, small layers) keep "
        "float32 state, so a model of small tensors saves less.",
        "8-bit Adam: memory against drift"),
    "Adadelta": Entry(
        r"\Delta_t=\frac{\sqrt{u_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}g_t,"
        r"\ \theta_t=\theta_{t-1}-\eta\Delta_t",
        "Steps in the units of θ. Sold as needing no rate, but ε then sets "
        "the step size, as a rate does.",
        "ε sets the start: the first step is about √(ε/(1−ρ)) whatever "
        "the gradient, then steps grow like √t.",
        r"What $\epsilon$ does at the start"),
    "Adamax": Entry(
        r"u_t=\max(\beta_2u_{t-1},|g_t|+\epsilon),\ \theta_t=\theta_{t-1}"
        r"-\frac{\eta\,m_t}{(1-\beta_1^t)u_t}",
        "Adam in the ∞-norm: the divisor is a decaying maximum of |g|, "
        "not an RMS.",
        "torch puts ε inside the max, Keras after it, the paper nowhere: "
        "the forms part when gradients near ε.",
        r"torch's form, and where its $\epsilon$ sits"),
    "NAdam": Entry(
        r"\theta_t=\theta_{t-1}-\frac{\eta}{\sqrt{\hat v_t}+\epsilon}"
        r"\Big(\frac{(1-\mu_t)g_t}{1-\Pi_t}"
        r"+\frac{\mu_{t+1}m_t}{1-\Pi_{t+1}}\Big)",
        "Adam with Nesterov's look-ahead in the first moment.",
        "Dozat's schedule: μₜ starts at β₁/2 and nears β₁ only over a "
        "long run, so short runs use less momentum than betas says.",
        "Dozat's momentum schedule"),
    "RAdam": Entry(
        r"\theta_t=\theta_{t-1}-\eta\hat m_t r_t\frac{\sqrt{1-\beta_2^t}}"
        r"{\sqrt{v_t}+\epsilon}\text{ if }\rho_t>5,\ "
        r"\theta_t=\theta_{t-1}-\eta\hat m_t\text{ else}",
        "Adam with a warmup built in: once ρₜ > 5, rₜ < 1 (from the variance "
        "of the adaptive rate) shortens the steps.",
        "While ρₜ ≤ 5 the steps are un-adapted, η m̂ₜ: they scale with "
        "the gradient, so large gradients give large first steps.",
        r"The switch at $\rho_t > 5$: what torch does before it"),
    "SparseAdam": Entry(
        r"i\in S_t:\ \theta_{t,i}\mathrel{-}=\eta"
        r"\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}"
        r"\frac{m_{t,i}}{\sqrt{v_{t,i}}+\epsilon}",
        "Embedding tables with sparse=True: only the rows in the batch "
        "are read and written.",
        "Bias correction counts the tensor's steps, not the row's: a "
        "rarely seen row takes steps of several η for the same gradient.",
        "A row seen rarely: the global bias correction"),
    "Lion": Entry(
        r"\theta_t=(1-\eta\lambda)\theta_{t-1}-\eta\,\mathrm{sign}"
        r"(\beta_1m_{t-1}+(1-\beta_1)g_t),\ m_t=\beta_2m_{t-1}"
        r"+(1-\beta_2)g_t",
        "AdamW's job with one state buffer instead of two.",
        "Every coordinate moves by ±η: with AdamW's rate the steps are "
        "far too long; take a smaller η and a larger λ (keep ηλ).",
        "Learning rate and decay against AdamW's"),
    "LARS": Entry(
        r"u_t=g_t+\lambda\theta,\ b_t=\mu b_{t-1}+\eta c"
        r"\frac{\|\theta\|}{\|u_t\|+\epsilon}u_t,\ \theta_t=\theta_{t-1}-b_t",
        "Large-batch SGD: each tensor moves by the same fraction of its "
        "norm.",
        "A zero-initialised bias has no trust ratio (ρ = 1): its first "
        "step is the raw η u, huge at LARS's large rates.",
        "Which tensors are excluded, and why"),
    "Lamb": Entry(
        r"u_t=\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}+\lambda\theta,\ "
        r"\theta_t=\theta_{t-1}-\eta\frac{\|\theta\|}{\|u_t\|}u_t",
        "Large-batch Adam: a trust ratio per tensor on AdamW's direction.",
        "Each step changes a tensor by at most η‖θ‖: a tensor near zero "
        "(a bias) can grow only by a factor 1+η a step.",
        "Which tensors are excluded, and why"),
    "SGDScheduleFree": Entry(
        _SF.replace("GRAD", r"\nabla f(y_t)"),
        "SGD without a decay schedule or a fixed end: evaluate the "
        "average x.",
        "The parameters hold y while training: without optimizer.eval() "
        "you evaluate or save y, not the average x.",
        "The train/eval switch"),
    "AdamWScheduleFree": Entry(
        _SF.replace("GRAD", r"\frac{\nabla f(y_t)}{\sqrt{\hat v_t}+\epsilon}"),
        "AdamW without a decay schedule or a fixed end (decay at y, "
        "through z).",
        "BatchNorm's running statistics are collected at y: after eval(), "
        "recompute them at x with a few forward passes.",
        "BatchNorm: statistics collected at the wrong point"),
    "SAM": Entry(
        r"g=\nabla L(\theta_{t-1}),\ \hat\epsilon=\rho\frac{g}{\|g\|},\ \theta_t=\mathrm{base}"
        r"\big(\theta_{t-1},\nabla L(\theta_{t-1}+\hat\epsilon)\big)",
        "Wraps any optimizer to prefer minima whose whole ρ-ball is low: "
        "for generalisation, when data is short.",
        "Two gradients a step: at equal steps it costs twice the compute, "
        "so compare it with its base at equal gradient evaluations too.",
        "The experiment: SAM, ASAM and their bases, tuned alike"),
    "DAdaptSGD": Entry(
        r"\lambda_k=\frac{d_k}{\|g_0\|},\ s_{k+1}=s_k+\lambda_kg_k,\ d_{k+1}="
        r"\max\big(d_k,\frac{2\sum_i\lambda_i\langle g_i,s_i\rangle}{\|s_{k+1}\|}"
        r"\big),\ x_{k+1}=x_0-s_{k+1}",
        "SGD without a learning rate: the step grows from d0 as the run "
        "estimates its distance to a solution.",
        "The package's estimate is twice the ratio the lower bound proves, "
        "so d can pass D; on the book's MLP with momentum 0.9 it never trained.",
        "A lower bound on $D$ from the gradients"),
    "DAdaptAdam": Entry(
        r"\text{Adam with }\eta_k=d_k,\ d_{k+1}=\max(d_k,\hat d_{k+1}),\ "
        r"\hat d_{k+1}=\frac{r_{k+1}}{(1-\sqrt{\beta_2})\|s_{k+1}\|_1},\ "
        r"s\text{: an EMA of }d_kg_k",
        "Adam(W) without a learning rate (decouple=True for AdamW's decay); "
        "lr stays 1 and scales d.",
        "use_bias_correction defaults to False: the early steps, several times "
        "the rate, inflate d and some seeds never train. Set it True.",
        "Why D-Adaptation overshot: the first steps"),
    "Prodigy": Entry(
        r"\text{Adam }\eta_t=d_t,\ d_{t+1}=\max(d_t,\hat d),\ \hat d="
        r"\frac{\sum_i\lambda_i\langle g_i,x_0-x_i\rangle}{\|\sum_i\lambda_ig_i"
        r"\|_1},\ \lambda_i\propto\beta_3^{t-i}d_i^2",
        "Adam(W) without a learning rate: D-Adaptation's estimate, gradients "
        "weighted by d²; pair it with a cosine decay.",
        "use_bias_correction defaults to False: every step runs above d·lr "
        "(several times at first). Even corrected, it trailed tuned AdamW here.",
        "On a network, against tuned AdamW"),
    "DoG": Entry(
        r"\eta_t=c\frac{\max(r_\epsilon,\max_{i\le t}\|x_i-x_0\|)}"
        r"{\sqrt{\epsilon+\sum_{i\le t}\|g_i\|^2}},\ x_{t+1}=x_t-\eta_tg_t",
        "SGD whose step is the distance travelled over the root of the "
        "summed squared gradients.",
        "rbar is the distance travelled, not a bound: it can pass D. The step "
        "never decays, so the authors pair DoG with iterate averaging.",
        "Three estimators on a problem with known $D$"),
    "LDoG": Entry(
        r"\text{DoG per tensor: }\eta_t^{(l)}=c\frac{\bar r_t^{(l)}}"
        r"{\sqrt{\epsilon+\sum_{i\le t}\|g_i^{(l)}\|^2}}",
        "DoG with one step size per tensor, for layers whose gradients "
        "differ in scale.",
        "One estimate per tensor (rbar and eta are vectors to log), and the "
        "copy of x₀ held in the groups is one more model in memory.",
        "On a network, against tuned AdamW"),
    "Shampoo": Entry(
        r"L_t=L_{t-1}+G_tG_t^\top,\ R_t=R_{t-1}+G_t^\top G_t,\ "
        r"W_{t+1}=W_t-\eta\,L_t^{-1/4}G_tR_t^{-1/4}",
        "Full-matrix AdaGrad made affordable: one d×d factor per dimension; "
        "in practice grafted onto Adam's step length.",
        "With preconditioning_compute_steps > 1 the first steps do not move "
        "and stale roots amplify new directions up to 1/√ε; lr is not on "
        "Adam's scale.",
        "Update frequency: stale roots and ε"),
    "DistributedShampoo": Entry(
        r"L\leftarrow\beta_2L+(1-\beta_2)G_bG_b^\top\text{ per block }b,\ "
        r"W_{t+1}=W_t-\eta\,\frac{\|g^{\text{graft}}_t\|}{\|P_t\|}P_t,\ "
        r"P_t=L^{-1/4}G_bR^{-1/4}",
        "Shampoo at scale, as AlgoPerf's winner ran it: blocked factors, a grafted "
        "step length.",
        "No root before start_preconditioning_step, stale roots between refreshes "
        "(preconditioning_compute_steps), and lr on the grafted rule's scale.",
        "Update frequency: stale roots and ε"),
    "SOAP": Entry(
        r"G'=Q_L^\top GQ_R,\ \theta_t=\theta_{t-1}-\eta\,Q_L\,"
        r"\frac{\hat m'_t}{\sqrt{\hat v'_t}+\epsilon}\,Q_R^\top\ (m',v'\text{ of }G'),"
        r"\ Q\leftarrow\mathrm{QR}(LQ)\text{ each }k",
        "Matrix layers where Adam is the baseline, to see correlations between "
        "rows and columns, at two d×d factors per side.",
        "The first step only builds the factors (no move), and the bases are "
        "refreshed every k steps: a large k leaves Adam's moments in a stale "
        "basis.",
        "Sensitivity to the refresh period"),
    "Kron": Entry(
        r"Q_i\leftarrow Q_i-\frac{\eta_P}"
        r"{\|AA^\top+BB^\top\|}\mathrm{triu}(AA^\top-BB^\top)Q_i,\ "
        r"\theta_t=\theta_{t-1}-\eta\,\mathrm{clip}_{1.1}(Q^\top Q\,\hat m_t)",
        "Kronecker-factored preconditioning at the cost of a few matrix "
        "products a step, with no eigendecomposition.",
        "Each factor is a dense d×d matrix: an axis of width 3072 holds 9.4 M "
        "numbers; use memory_save_mode or max_size_triangular for wide layers.",
        "Memory: the factors' bytes"),
    "ADOPT": Entry(
        r"m_t=\beta_1m_{t-1}+(1-\beta_1)\mathrm{clip}\big(\frac{g_t}"
        r"{\max(\sqrt{v_{t-1}},\epsilon)},t^{1/4}\big),\ \theta_t=\theta_{t-1}-\eta m_t;"
        r"\ \text{then }v_t",
        "Adam's job, converging for any β₂: the gradient is divided by the "
        "second moment of earlier gradients only.",
        "The first step only records v₀ = g₀² and does not move; eps (1e-6) is a "
        "floor under √v, not a term added to it, so Adam's eps does not transfer.",
        "ADOPT's one-step delay"),
    "AdEMAMix": Entry(
        r"\theta_t=\theta_{t-1}-\eta\frac{\hat m_{1,t}+\alpha m_{2,t}}{\sqrt{\hat v_t}"
        r"+\epsilon},\ m_{2,t}=\beta_3m_{2,t-1}+(1-\beta_3)g_t",
        "Long runs of large models: a slow momentum (β₃ = 0.9999) keeps "
        "gradients thousands of steps old in the step.",
        "Without the α and β₃ warmups (t_alpha_beta3 ≈ the run's length) the "
        "slow momentum destabilises the start; in short runs it only adds noise.",
        "The slow momentum and its warmup"),
    "LaProp": Entry(
        r"u_t=\frac{g_t}{\sqrt{\hat v_t}+\epsilon},\ m_t=\beta_1m_{t-1}"
        r"+(1-\beta_1)\eta u_t,\ \theta_t=\theta_{t-1}-m_t/c_t",
        "Adam's job when β₁ must be large or β₂ small: each step is at most "
        "η/√(1−β₂), whatever β₁.",
        "eps defaults to 1e-15 and is added before v's bias correction; in "
        "pytorch_optimizer weight_decouple=False does not decay at all (optedu: L2).",
        "LaProp: normalise, then average"),
    "MARS": Entry(
        r"c_t=g_t+\gamma\frac{\beta_1}{1-\beta_1}(g_t-g_{t-1}),\ m_t=\beta_1m_{t-1}"
        r"+(1-\beta_1)\frac{c_t}{\max(1,\|c_t\|)},\ \text{then AdamW's step on }m_t",
        "AdamW's job where the momentum lags a fast-changing gradient: a "
        "STORM-style correction (γ = 0.025).",
        "The correction uses the previous batch's gradient: it cuts the lag but "
        "adds noise (one batch's at γ = 1); all but 2-D tensors take plain AdamW (lr_1d).",
        "A momentum lags; a correction can remove the lag"),
    "Adan": Entry(
        r"\Delta_t=g_t-g_{t-1},\ n_t=\beta_3n_{t-1}+(1-\beta_3)(g_t+\beta_2\Delta_t)^2,\ "
        r"\theta_t=\theta_{t-1}-\eta\frac{\hat m_t+\beta_2\hat v_t}{\sqrt{\hat n_t}+\epsilon}",
        "Nesterov momentum without a second gradient: the look-ahead is "
        "extrapolated from the gradient's change.",
        "Its betas are the paper's complements (0.98, 0.92, 0.99); weight_decouple=False "
        "is not L2 but the paper's proximal decay θ/(1+ηλ).",
        "Adan: Nesterov momentum from the gradient's change"),
    "CautiousAdamW": Entry(
        r"\phi_t=\mathbf{1}[m_t\odot g_t>0]\frac{n}{k+1},\ \theta_t=(1-\eta\lambda)"
        r"\theta_{t-1}-\eta\frac{\hat m_t\odot\phi_t}{\sqrt{\hat v_t}+\epsilon}",
        "AdamW with its hyperparameters, stepping only where the momentum "
        "agrees in sign with the gradient.",
        "Never uphill only to first order and on the batch the mask saw: large "
        "steps and the full loss can still go up; the rescale n/(k+1) enlarges them.",
        "Cautious updates: never uphill, to first order"),
    "CautiousLion": Entry(
        r"u_t=\mathrm{sign}(\beta_1m_{t-1}+(1-\beta_1)g_t),\ \theta_t=\theta_{t-1}"
        r"-\eta\,u_t\odot\mathbf{1}[u_t\odot g_t>0]\frac{n}{k+1}",
        "Lion with its hyperparameters, stepping only where the sign agrees "
        "with the gradient.",
        "The mask after the sign moves kept coordinates by ηn/(k+1); pytorch_optimizer's "
        "MARS, Lion form, masks before the sign, which erases the rescale.",
        "Where the mask goes"),
    "SophiaH": Entry(
        r"\hat h=u\odot(Hu)\text{ every }k\text{ steps},\ h_t=\beta_2h_{t-k}+(1-\beta_2)\hat h,\ "
        r"\theta_t=\theta_{t-1}-\eta\,\mathrm{clip}(m_t/\max(h_t,\epsilon),\pm\rho)",
        "Curvature in Adam's denominator: a diagonal Newton step, clipped where the curvature "
        "is small or negative.",
        "step() differentiates the gradient again: call loss.backward(create_graph=True) "
        "(it raises otherwise); where h_t ≤ 0 the floor ε makes the step ±ηρ.",
        "SophiaH: a clipped diagonal Newton step"),
    "NorMuon": Entry(
        r"O_t=\mathrm{NS}(\tilde B_t),\ v_{t,i}=\beta_2v_{t-1,i}+(1-\beta_2)\,"
        r"\overline{O_{t,i:}^2},\ \theta_t=\theta_{t-1}-\eta' s\,O_t/(\sqrt{v_t}+\epsilon)",
        "Hidden matrices where Muon's update leaves some neurons (rows) far larger than "
        "others.",
        "Takes use_muon groups: the AdamW groups get adamw_lr, not lr; one number of state "
        "per row beside the momentum.",
        "NorMuon: one second moment per neuron"),
    "Scion": Entry(
        r"d_t=(1-\alpha)d_{t-1}+\alpha g_t,\ \theta_t=(1-\gamma c)\theta_{t-1}+\gamma\rho\,"
        r"\mathrm{lmo}(d_t),\ c\in\{0,1\}",
        "Muon's step for every layer: spectral for hidden matrices, columns or sign for the "
        "embedding and head.",
        "momentum is the new gradient's weight (0.1 means 0.9); the constrained form needs the "
        "weights inside the ball of radius ρ.",
        "Scion: one norm per layer"),
    "MuonClip": Entry(
        r"B_t=\mu B_{t-1}+G_t,\ \eta'=0.2\sqrt{\max(A,B)}\eta,\ "
        r"\theta_t=(1-\eta\lambda)\theta_{t-1}-\eta'\mathrm{NS}(B_t),\ "
        r"W_{q,k}^h\leftarrow\gamma_h^{\alpha,1-\alpha}W_{q,k}^h",
        "Muon on attention models whose query-key logits grow without bound (Kimi K2).",
        "step() needs each head's largest logit (attention_max_logits) from the forward "
        "pass: without it nothing is clipped.",
        "MuonClip: capping attention logits at the source"),
    "GaLoreAdamW": Entry(
        r"R_t=G_tP^\top,\ N_t=\mathrm{Adam}(R_t),\ W_t=W_{t-1}-\eta\alpha N_tP,\ "
        r"P=V_r^\top\text{ of }\mathrm{SVD}(G_t),\ \text{every }T\text{ steps}",
        "Pre-training or fine-tuning large matrices when Adam's state does not fit.",
        "Only matrices in a rank group are projected; scale α = 0.25 shrinks the step, so "
        "retune the rate; a float64 gradient's SVD runs in float32.",
        "GaLore: Adam in a subspace that follows the gradient"),
    "APOLLO": Entry(
        r"R_t=G_tP^\top,\ P\sim N(0,1/r),\ s_j=\frac{\|\mathrm{Adam}(R_t)_j\|}"
        r"{\|R_{t,j}\|},\ W_t=W_{t-1}-\eta\sqrt{\alpha}\,s\odot G_t",
        "Near-SGD memory for large matrices: a random projection only sets each channel's scale.",
        "At rank 1 a channel's estimate is too noisy: APOLLO-Mini needs scale_type='tensor' "
        "and scale ≈ n/r to step like Adam.",
        "APOLLO: a random projection that only measures a scale"),
    "AdamMini": Entry(
        r"v_{t,b}=\beta_2v_{t-1,b}+(1-\beta_2)\,\mathrm{mean}_{i\in b}g_{t,i}^2,\ "
        r"\theta_t=\theta_{t-1}-\eta\frac{\hat m_t}{\sqrt{\hat v_{t,b}}+\epsilon}",
        "Half of Adam's state: one second moment per head, neuron or tensor of a transformer.",
        "Blocks come from parameter names: unmatched names fall back to one v per tensor; "
        "add the model's names before the first step.",
        "Adam-mini: one second moment per block"),
    "Adafactor": Entry(
        r"\hat V_t=\frac{r_tc_t}{\bar r_t},\ U_t=\frac{G_t}{\sqrt{\hat V_t}},"
        r"\ \theta_t=(1-\eta\lambda)\theta_{t-1}-\frac{\alpha_t U_t}"
        r"{\max(1,\mathrm{RMS}(U_t)/d)}",
        "Training when memory binds: a matrix's second moment kept as a "
        "row and a column.",
        "torch's version has no first moment, and in float32 its ε₁ floor "
        "binds for small gradients: updates too long, then clipped.",
        "What torch 2.13 chose"),
    "CAME": Entry(
        r"m_t=\beta_1m_{t-1}+(1-\beta_1)\hat U_t,\ "
        r"\theta_t=\theta_{t-1}-\eta\frac{m_t}{\sqrt{\hat S_t}},\ "
        r"\hat S_t\approx\overline{(\hat U_t-m_t)^2}\text{ factored}",
        "Adafactor's memory plus momentum, where Adam's state does not fit (its "
        "authors pre-trained BERT, GPT-2, T5).",
        "No bias correction: the confidence's average starts at zero, so a matrix's first "
        "step is η(1-β₁)/(β₁√(1-β₃)) ≈ 11η per weight, a vector's at most about 0.1η.",
        "CAME: Adafactor with a confidence"),
    "Muon": Entry(
        r"B_t=\mu B_{t-1}+(1-\mu)G_t,\ O_t=\mathrm{NS}_k(G_t+\mu(B_t-G_t)),"
        r"\ \theta_t=(1-\eta\lambda)\theta_{t-1}-\eta'O_t,\ "
        r"\eta'=\eta\sqrt{\max(1,\text{rows}/\text{cols})}",
        "The hidden weight matrices of a network, beside AdamW for the "
        "rest.",
        "2-D parameters only (others raise), and embeddings and the "
        "output head belong to AdamW: split with muon_adamw_groups.",
        "Muon for hidden matrices, AdamW for the rest"),
    "Rprop": Entry(
        r"\Delta_t=\mathrm{clip}(\eta_\pm\Delta_{t-1},\Delta_{\min},"
        r"\Delta_{\max}),\ \theta_t=\theta_{t-1}-\Delta_t\,"
        r"\mathrm{sign}(g_t)\ (g_t:=0\text{ after a sign flip})",
        "Small full-batch problems; blind to the scale of the loss.",
        "Breaks with mini-batches: near a minimum the signs flip at "
        "random, and the sign of an average is not the average of signs.",
        "Why Rprop breaks with mini-batches"),
    "ASGD": Entry(
        r"\theta_t=(1-\lambda\eta_t)\theta_{t-1}-\eta_tg_t,\ "
        r"a_t=a_{t-1}+\mu_t(\theta_t-a_{t-1}),\ "
        r"\eta_t=\frac{\eta}{(1+\lambda\eta(t-1))^\alpha},\ "
        r"\mu_t=\frac{1}{\max(1,t-1-t_0)}",
        "Noisy convex problems: the average beats the last iterate's "
        "noise floor.",
        "The parameters stay the SGD iterates; the average is "
        "state['ax'], a plain copy of θ until step t0 + 2 (see t0's default).",
        "torch's ASGD"),
    "LBFGS": Entry(
        r"\theta_{k+1}=\theta_k-t_kH_kg_k,\ H_kg_k\text{ by two loops "
        r"over the last }m\text{ pairs }(s_i,y_i)",
        "Deterministic, smooth, full-batch losses of modest size "
        "(logistic regression, style transfer).",
        "Mini-batches break the curvature pairs (y from two different "
        "losses); without a line search the chapter's run blew up.",
        "Why L-BFGS is rare in deep learning"),
}

# each entry with the chapter the catalogue names (optedu.optim.catalogue)
ENTRIES: dict[str, Entry] = {
    name: replace(entry, chapter=RULES[name].chapter) if name in RULES else entry
    for name, entry in _WRITTEN.items()}

# The family tree, read from the catalogue: for each optimizer, the rule it changes ("" for a
# root) and what it changes, in one line. Read depth-first from the roots, it is the history of
# the field as a chain of fixes, each to a named weakness of its parent.
LINEAGE: dict[str, tuple[str, str]] = {rule.name: (rule.parent, rule.change)
                                       for rule in CATALOGUE}

# The closed forms of the schedules: torch's schedulers as optedu writes
# them (optedu.lr_scheduler; η₀ the initial rate, t the scheduler's step)
# and the multipliers f(s) of optedu.lr_scheduler.schedules.
SCHEDULES: dict[str, str] = {
    "LambdaLR": r"\eta_t=\eta_0\,\lambda(t)",
    "MultiplicativeLR": r"\eta_t=\eta_{t-1}\,\lambda(t)",
    "StepLR": r"\eta_t=\eta_0\gamma^{\lfloor t/k\rfloor}",
    "MultiStepLR": r"\eta_t=\eta_0\gamma^{|\{i:\,m_i\le t\}|}",
    "ConstantLR": r"\eta_t=\eta_0\,(f\text{ if }t<T\text{ else }1)",
    "LinearLR": r"\eta_t=\eta_0\big(f_0+(f_1-f_0)\min(t,T)/T\big)",
    "ExponentialLR": r"\eta_t=\eta_0\gamma^t",
    "PolynomialLR": r"\eta_t=\eta_0\big(1-\min(t,T)/T\big)^p",
    "CosineAnnealingLR":
        r"\eta_t=\eta_{\min}+\tfrac{1}{2}(\eta_0-\eta_{\min})"
        r"(1+\cos\tfrac{\pi t}{T})",
    "CosineAnnealingWarmRestarts":
        r"\text{cosine over }T_i=T_0T_{\mathrm{mult}}^i\text{, restarted}",
    "CyclicLR": r"\eta_b+(\eta_{\max}-\eta_b)\max(0,1-|x|),\ "
                r"x=\tfrac{t}{k}-1-2\lfloor\tfrac{t}{2k}\rfloor"
                r"\ \text{(triangular)}",
    "OneCycleLR": r"\tfrac{\eta_{\max}}{d}\nearrow\eta_{\max}\searrow"
                  r"\tfrac{\eta_{\max}}{d\,d_f}\ \text{(cosine)}",
    "SequentialLR": r"\text{scheduler }i+1\text{ from milestones}[i]"
                    r"\text{ on, counting from 0 again}",
    "ChainedScheduler": r"\text{every scheduler steps in turn; recursive "
                        r"ones multiply the rate}",
    "ReduceLROnPlateau": r"\eta\leftarrow\max(f\eta,\eta_{\min})"
                         r"\text{ once more "
                         r"than patience steps pass without gain}",
    "linear_warmup_cosine": r"f=\tfrac{s+1}{w+1},\text{ then }r+\tfrac{1}{2}"
                            r"(1-r)(1+\cos\pi\min(1,\tfrac{s-w}{T-w}))",
    "linear_warmup_linear_decay": r"f=\tfrac{s+1}{w+1},\text{ then }"
                                  r"\max(0,\tfrac{T-s}{T-w})",
    "inverse_sqrt": r"f=\min\big(\tfrac{s+1}{w+1},"
                    r"\sqrt{\tfrac{w+1}{s+1}}\big)",
    "warmup_stable_decay": r"f=\tfrac{s+1}{w+1},\ \text{then }1,\ \text{then }"
                           r"1-(1-r)\,\delta(p),\ p=\min(1,\tfrac{s-w-S}{D}),\ "
                           r"\delta\in\{p,\tfrac{1-\cos\pi p}{2},\sqrt{p},p^2\}",
    "get_wsd_schedule": r"f=\tfrac{s}{w},\ \text{then }1,\ \text{then }1-\delta(p)"
                        r"\text{ (cosine: }r+(1-r)(1-\delta)\text{)},\ \text{then }r",
}

# What the measurement runs on: a float32 linear layer of 512 × 256 with
# its bias (Muon and SparseAdam: the matrix alone). Arguments torch
# requires are given (their value does not change the state); L-BFGS keeps
# a short history so that one step fills it.
SHAPES: tuple[tuple[int, ...], ...] = ((512, 256), (512,))
SETTINGS: dict[str, dict[str, Any]] = {
    "LARS": {"lr": 1e-3}, "Lamb": {"lr": 1e-3}, "StableAdamW": {"lr": 1e-3},
    "CAME": {"lr": 1e-3},
    "LBFGS": {"history_size": 3, "max_iter": 9},
    # SAM holds its base's state: measured around SGD with momentum, the
    # paper's base (the name resolves to optedu's class)
    "SAM": {"base_optimizer": "SGD", "lr": 0.1, "momentum": 0.9},
}
# The switches that add state, measured as a second configuration.
VARIANTS: dict[str, dict[str, Any]] = {
    "SGD": {"momentum": 0.9}, "Adam": {"amsgrad": True},
    "AdamW": {"amsgrad": True}, "RMSprop": {"momentum": 0.9, "centered": True},
}
# Read and checked like every argument, but not printed (every class has
# them, or they choose an implementation, not the rule).
HIDDEN_ARGUMENTS = ("params", "maximize", "foreach", "fused", "triton", "gradient_release")

# The package each optimizer torch lacks is checked against in its chapter (module, class), from
# the catalogue; LARS and Lamb are compared with optax, whose functions name their arguments
# differently, and are left out.
REFERENCES: dict[str, tuple[str, str]] = {
    rule.name: rule.reference for rule in CATALOGUE if not rule.twin and rule.same_arguments}
