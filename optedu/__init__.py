"""optedu: deep-learning optimizers built from scratch, step for step equal to torch.optim.

Each update rule is one function acting on one tensor (``optedu.sgd``, ``optedu.adam``, ...);
each optimizer class (``optedu.SGD``, ``optedu.Adam``, ...) keeps ``param_groups`` and ``state``
exactly as torch.optim does and calls that function. This module is the public surface, as
torch.optim's is: the classes and rule functions, ``optedu.lr_scheduler``,
``optedu.swa_utils`` (weight averaging, torch.optim.swa_utils), the clipping functions, and
``optedu.distributed``. Everything else is imported from its folder, which
mirrors a part of the book:

=================  ==========================================================================
folder             what lives there
=================  ==========================================================================
``optim``          the base ``Optimizer``, the argument checks, one module per update rule, the
                   multi-tensor path (``foreach``), and ``optim.variants``: rules as other
                   frameworks, papers or sources write them
``lr_scheduler``   torch's schedulers rebuilt, and closed-form schedules (``schedules``)
``training``       clipping, gradient-norm monitoring, parameter groups, accumulation
``precision``      mixed precision, loss scaling, 8-bit state, bytes of optimizer state
``distributed``    torch.distributed on gloo: launcher, data parallelism, ZeRO-1, FSDP2 runs
``theory``         quadratics, momentum's and Nesterov's forms
``instruments``    what the chapters use to show things: numbers for reading, the parity
                   harness, source display, 2-D landscapes, the benchmark, the CPU-kernel pin,
                   the record store of stored runs
``choosing``       the benchmark of "Choosing an optimizer": workloads, contestants, search,
                   AlgoPerf's scoring, the resumable grid (``make experiments``)
``experiments``    the chapters' stored experiments: each a grid declared as data (its jobs,
                   file, chapter), one runner for all (``make experiments-NAME``)
``evidence``       the ledger of what large runs found (``ledger.yaml``): claim, numbers, scale,
                   tuning, source and locator, read by the chapters beside their small runs
``practice``       the practice pages' generators: quiz, casebook, cheat sheet, conventions
=================  ==========================================================================

Imports run one way, from the rules up (``tests/test_layout.py`` reads them): ``optim`` imports
nothing else of optedu; ``lr_scheduler``, ``precision``, ``theory`` and ``instruments``
import only ``optim``; ``training`` also ``lr_scheduler`` (SWA's scheduler); ``distributed``
also imports ``training`` and ``precision``; ``choosing`` imports those and ``instruments``;
``experiments`` imports those and ``choosing``; ``evidence`` imports nothing else;
``practice`` may import everything; nothing imports ``practice``.
"""

from importlib.metadata import PackageNotFoundError, version

from . import distributed, lr_scheduler
from .optim.adadelta import Adadelta, adadelta
from .optim.adafactor import Adafactor, adafactor
from .optim.adagrad import Adagrad, adagrad, adagrad_sparse
from .optim.adam import Adam, AdamW, adam
from .optim.adam_atan2 import AdamAtan2, adam_atan2
from .optim.adamax import Adamax, adamax
from .optim.asgd import ASGD, asgd
from .optim.adam import adam_foreach
from .optim.sgd import sgd_foreach
from .optim.lamb import Lamb, lamb
from .optim.lars import LARS, lars
from .optim.lbfgs import LBFGS
from .optim.lion import Lion, lion
from .optim.sam import SAM, sam_perturbation
from .optim.dadapt_sgd import DAdaptSGD
from .optim.dadapt_adam import DAdaptAdam
from .optim.prodigy import Prodigy
from .optim.dog import DoG, LDoG
from .optim.ademamix import AdEMAMix, ademamix
from .optim.adam_mini import AdamMini
from .optim.came import CAME, came
from .optim.adopt import ADOPT, adopt
from .optim.adan import Adan, adan
from .optim.apollo import APOLLO
from .optim.galore import GaLoreAdamW
from .optim.laprop import LaProp, laprop
from .optim.adabelief import AdaBelief, adabelief
from .optim.cautious import CautiousAdamW, CautiousLion, cautious_mask
from .optim.mars import MARS, mars
from .optim.kron import Kron, kron
from .optim.muon import Muon, muon
from .optim.muonclip import MuonClip
from .optim.normuon import NorMuon
from .optim.nadam import NAdam, nadam
from .optim.optimizer import Optimizer
from .optim.radam import RAdam, radam
from .optim.rmsprop import RMSprop, rmsprop
from .optim.rprop import Rprop, rprop
from .optim.schedule_free import (AdamWScheduleFree, SGDScheduleFree, schedule_free_adamw,
                                  schedule_free_sgd)
from .optim.scion import Scion, scion
from .optim.sgd import SGD, sgd
from .optim.sophia_h import SophiaH, sophia_h
from .optim.shampoo import Shampoo, shampoo
from .optim.distributed_shampoo import DistributedShampoo, distributed_shampoo
from .optim.soap import SOAP, soap
from .optim.sparse_adam import SparseAdam, sparse_adam
from .optim.stable_adamw import StableAdamW, stable_adamw
from .precision.adam8bit import Adam8bit, AdamW8bit
from .precision.loss_scaling import LossScaler
from .precision.mixed import (LowPrecisionOptimizer, MasterWeights, kahan_add_,
                              stochastic_round_to_bf16)
from .training.clip import clip_grad_norm_, clip_grad_value_
from .training.muon_groups import muon_adamw_groups
from .training import swa_utils

try:
    __version__ = version("optedu")  # one source: pyproject.toml
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer",
    "sgd", "adagrad", "adagrad_sparse", "rmsprop", "adam",
    "Adadelta", "Adamax", "NAdam", "RAdam", "SparseAdam",
    "adadelta", "adamax", "nadam", "radam", "sparse_adam",
    "StableAdamW", "stable_adamw", "AdamAtan2", "adam_atan2",
    "Lion", "lion", "LARS", "lars", "Lamb", "lamb", "SAM", "sam_perturbation",
    "DAdaptSGD", "DAdaptAdam", "Prodigy", "DoG", "LDoG",
    "SGDScheduleFree", "AdamWScheduleFree", "schedule_free_sgd", "schedule_free_adamw",
    "Adafactor", "adafactor", "CAME", "came", "Muon", "muon", "muon_adamw_groups", "NorMuon", "MuonClip",
    "Shampoo", "shampoo", "DistributedShampoo", "distributed_shampoo",
    "SOAP", "soap", "Kron", "kron",
    "ADOPT", "adopt", "AdEMAMix", "ademamix", "LaProp", "laprop",
    "AdaBelief", "adabelief",
    "MARS", "mars", "Adan", "adan", "CautiousAdamW", "CautiousLion", "cautious_mask",
    "GaLoreAdamW", "APOLLO", "AdamMini", "SophiaH", "sophia_h", "Scion", "scion",
    "Rprop", "rprop", "ASGD", "asgd", "LBFGS",
    "Adam8bit", "AdamW8bit", "sgd_foreach", "adam_foreach",
    "LossScaler", "MasterWeights", "LowPrecisionOptimizer", "kahan_add_", "stochastic_round_to_bf16",
    "clip_grad_norm_", "clip_grad_value_",
    "distributed", "lr_scheduler", "swa_utils",
]
