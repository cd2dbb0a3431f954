"""optedu: deep-learning optimizers built from scratch, step for step equal to torch.optim.

Each update rule is one function acting on one tensor (``optedu.sgd``, ``optedu.adam``, ...);
each optimizer class (``optedu.SGD``, ``optedu.Adam``, ...) keeps ``param_groups`` and ``state``
exactly as torch.optim does and calls that function. Around the rules: clipping and monitoring
(``clip``, ``monitor``), parameter groups (``param_groups``; ``muon_groups`` splits a model
between Muon and AdamW), schedules (``schedules``,
``lr_scheduler``), theory on a quadratic (``quadratic``), optimizer-state sizes
(``memory``), mixed precision (``precision``: fp32 master weights, Kahan sums, stochastic
rounding; ``loss_scaling``: GradScaler's dynamic loss scale), 8-bit state (``quantize``,
``Adam8bit``), sharding on torch.distributed (``distributed``: a launcher, ZeRO-1), the
multi-tensor path (``foreach``), broken training runs (``casebook``), the practice pages'
generators (``quiz``: the interview questions, read from the chapters; ``cheatsheet``;
``conventions``: how frameworks write each rule), and the chapters' tools (``landscapes``,
``parity``, ``display``). Rules as other frameworks or sources write them live
in ``optedu.variants.<topic>`` (imported by name).
"""

from importlib.metadata import PackageNotFoundError, version

from . import (casebook, clip, display, distributed, foreach, landscapes, loss_scaling,
               lr_scheduler, memory, momentum, monitor, muon, muon_groups, nesterov,
               param_groups, parity, precision, quadratic, quantize, schedules)
from .adadelta import Adadelta, adadelta
from .adafactor import Adafactor, adafactor
from .adagrad import Adagrad, adagrad, adagrad_sparse
from .adam import Adam, AdamW, adam
from .adam8bit import Adam8bit, AdamW8bit
from .adamax import Adamax, adamax
from .asgd import ASGD, asgd
from .clip import clip_grad_norm_, clip_grad_value_
from .foreach import adam_foreach, sgd_foreach
from .loss_scaling import LossScaler
from .lamb import Lamb, lamb
from .lbfgs import LBFGS
from .lars import LARS, lars
from .lion import Lion, lion
from .muon import Muon
from .muon_groups import muon_adamw_groups
from .nadam import NAdam, nadam
from .optimizer import Optimizer
from .precision import (LowPrecisionOptimizer, MasterWeights, kahan_add_,
                        stochastic_round_to_bf16)
from .radam import RAdam, radam
from .rmsprop import RMSprop, rmsprop
from .rprop import Rprop, rprop
from .schedule_free import (AdamWScheduleFree, SGDScheduleFree,
                            schedule_free_adamw, schedule_free_sgd)
from .sgd import SGD, sgd
from .sparse_adam import SparseAdam, sparse_adam

try:
    __version__ = version("optedu")  # one source: pyproject.toml
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer",
    "sgd", "adagrad", "adagrad_sparse", "rmsprop", "adam",
    "Adadelta", "Adamax", "NAdam", "RAdam", "SparseAdam",
    "adadelta", "adamax", "nadam", "radam", "sparse_adam",
    "Lion", "lion", "LARS", "lars", "Lamb", "lamb",
    "SGDScheduleFree", "AdamWScheduleFree", "schedule_free_sgd", "schedule_free_adamw",
    "Adafactor", "adafactor", "Muon", "muon", "muon_adamw_groups",
    "Rprop", "rprop", "ASGD", "asgd", "LBFGS",
    "Adam8bit", "AdamW8bit", "sgd_foreach", "adam_foreach",
    "LossScaler", "MasterWeights", "LowPrecisionOptimizer", "kahan_add_", "stochastic_round_to_bf16",
    "clip_grad_norm_", "clip_grad_value_",
    "casebook", "clip", "display", "distributed", "foreach", "landscapes", "loss_scaling",
    "lr_scheduler", "memory", "momentum", "monitor", "muon_groups", "nesterov",
    "param_groups", "parity", "precision", "quadratic", "quantize", "schedules",
]
