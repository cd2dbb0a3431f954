"""Precision and memory: what a step costs in bytes, and how to pay fewer.

* :mod:`.mixed`: mixed precision: fp32 master weights (:class:`MasterWeights`,
  :class:`LowPrecisionOptimizer`), Kahan-compensated (:func:`kahan_add_`) and stochastically
  rounded (:func:`stochastic_round_to_bf16`) bf16 updates;
* :mod:`.loss_scaling`: :class:`LossScaler`, torch.amp.GradScaler's dynamic loss scale;
* :mod:`.quantize`: block-wise 8-bit quantisation (dynamic and linear codes);
* :mod:`.adam8bit`: :class:`Adam8bit` and :class:`AdamW8bit`, whose moments are stored in it;
* :mod:`.fp8`: the precision ladder (fp32 to fp8) from ``torch.finfo``, per-tensor scaled fp8
  casting (current and delayed scaling) and a simulated fp8 linear layer;
* :mod:`.memory`: bytes of optimizer state, measured and in closed form for every class, and
  the training budget (weights, gradients, master copies, state).

Imports: :mod:`optedu.optim` and this folder only.
"""
