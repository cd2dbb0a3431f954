"""optedu: deep-learning optimizers built from scratch, step for step equal to torch.optim.

Each update rule is one function acting on one tensor (``optedu.sgd``, ``optedu.adam``, ...);
each optimizer class (``optedu.SGD``, ``optedu.Adam``, ...) keeps ``param_groups`` and ``state``
exactly as torch.optim does and calls that function.
"""

from .adagrad import Adagrad, adagrad
from . import landscapes, lr_scheduler, momentum, nesterov, parity, schedules
from .adam import Adam, AdamW, adam
from .optimizer import Optimizer
from .rmsprop import RMSprop, rmsprop
from .sgd import SGD, sgd

__version__ = "0.1.0"

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer",
    "sgd", "adagrad", "rmsprop", "adam",
    "landscapes", "lr_scheduler", "momentum", "nesterov", "parity", "schedules",
]
