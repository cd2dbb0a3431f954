"""Tools around the step of a training loop, each as torch (or a common recipe) defines it.

* :mod:`.clip`: gradient clipping with ``torch.nn.utils``' semantics (:func:`clip_grad_norm_`,
  :func:`clip_grad_value_`, :func:`get_total_norm`);
* :mod:`.monitor`: a gradient-norm monitor that flags explosions and vanishing gradients;
* :mod:`.nan_locator`: the first non-finite tensor of a run (module, phase, step), by hooks;
* :mod:`.checkpoint`: a training checkpoint that resumes bit for bit (model, optimizer,
  scheduler, step, random generators, data position), its checks, and the ablation of each part;
* :mod:`.param_groups`: parameter-group builders (no weight decay on biases and norms,
  layer-wise learning-rate decay);
* :mod:`.muon_groups`: Muon for the hidden matrices, AdamW for the rest;
* :mod:`.accumulation`: gradient accumulation over micro-batches;
* :mod:`.lr_range_test`: the learning-rate range test (Smith, 2017) with fastai's suggestions;
* :mod:`.noise_scale`: the gradient noise scale :math:`B_\text{simple}` (McCandlish et al.,
  2018) from gradient norms at two batch sizes, with its standard error;
* :mod:`.mup`: µP (Yang et al., 2021): the readout layer, the shapes against a base model, the
  parameter groups that run any optimizer in µP, its initialisation, and the coordinate check;
* :mod:`.layer_stats`: per-layer statistics to log each step: update-to-weight ratios, Adam's
  √v̂, attention logit maxima;
* :mod:`.spikes`: a loss and update-norm spike detector, rollback-and-skip around any training
  loop, and MuonClip's QK-clip;
* :mod:`.swa_utils`: averages of the weights, torch.optim.swa_utils rebuilt: the averaged
  model (SWA's mean, an EMA), BatchNorm's statistics recomputed, and SWA's scheduler
  (re-exported as ``optedu.swa_utils``);
* :mod:`.lawa`: latest weight averaging (Kaddour, 2022): the mean of the last ``k``
  checkpoints, taken every ``every`` steps;
* :mod:`.lookahead`: Lookahead (Zhang et al., 2019) around any optimizer, slow weights pulled
  toward the fast ones every ``k`` steps, as ``pytorch_optimizer.Lookahead`` (not catalogued:
  :mod:`optedu.optim.catalogue` says why);
* :mod:`.variants`: these rules as other sources write them, for comparison.

Imports: :mod:`optedu.optim` (its argument checks), :mod:`optedu.lr_scheduler` (the base of
SWA's scheduler) and this folder only.
"""
