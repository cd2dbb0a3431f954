"""Learning-rate schedulers written from scratch, step for step equal to torch 2.13's.

Every class takes ``torch.optim.lr_scheduler``'s arguments, writes the same sequence of rates
(and momenta) into an optedu or a torch optimizer, and checkpoints under torch's keys. The
closed-form multipliers of :mod:`optedu.lr_scheduler.schedules` plug into :class:`LambdaLR`.

===============================  ===================================================
module                           classes
===============================  ===================================================
:mod:`._base`                    :class:`LRScheduler`, :class:`ChainableLR`
:mod:`.lambda_lr`                :class:`LambdaLR`, :class:`MultiplicativeLR`
:mod:`.decay`                    :class:`StepLR`, :class:`MultiStepLR`, :class:`ConstantLR`,
                                 :class:`LinearLR`, :class:`ExponentialLR`, :class:`PolynomialLR`
:mod:`.cosine`                   :class:`CosineAnnealingLR`, :class:`CosineAnnealingWarmRestarts`
:mod:`.cyclic`                   :class:`CyclicLR`, :class:`OneCycleLR`
:mod:`.composite`                :class:`SequentialLR`, :class:`ChainedScheduler`
:mod:`.plateau`                  :class:`ReduceLROnPlateau`
:mod:`.trace`                    :func:`trace`: the rates a scheduler gives each step
:mod:`.wsd`                      :func:`get_wsd_schedule`: warmup-stable-decay with
                                 ``pytorch_optimizer``'s arguments and rates
===============================  ===================================================

The closed-form schedules (:mod:`.schedules`: warmup-cosine, WSD, ...) are pure ``lr(step)``
functions; :mod:`.variants` holds a schedule as another source writes it.

Imports: :mod:`optedu.optim` (argument checks) and this folder only.
"""

from ._base import ChainableLR, LRScheduler
from .composite import ChainedScheduler, SequentialLR
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .cyclic import CyclicLR, OneCycleLR
from .decay import ConstantLR, ExponentialLR, LinearLR, MultiStepLR, PolynomialLR, StepLR
from .lambda_lr import LambdaLR, MultiplicativeLR
from .plateau import ReduceLROnPlateau
from .trace import Trace, trace
from .wsd import get_wsd_schedule

__all__ = [
    "LRScheduler", "ChainableLR",
    "LambdaLR", "MultiplicativeLR",
    "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
    "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
    "CyclicLR", "OneCycleLR",
    "SequentialLR", "ChainedScheduler",
    "ReduceLROnPlateau",
    "Trace", "trace",
    "get_wsd_schedule",
]
