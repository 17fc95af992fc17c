"""Everything only HiFiC *training* needs (docs/methods.md §8.2–8.4): the trainer (``lic train
hific --stage hific-1|hific-2``, :mod:`.trainer`), the conditional PatchGAN critic (:mod:`.discriminator`)
and the HiFiC objective (:mod:`.losses`).  The network that ships is :mod:`lic_core.models.hific`;
its codec adapter is :mod:`lic_core.codecs.hific`.
"""
from .trainer import (
                      HificTrainer,
                      HificTrainError,
                      add_arguments,
                      export,
                      load_init_weights,
                      main,
                      run,
                      validate,
)

__all__ = ["HificTrainError", "HificTrainer", "add_arguments", "export", "load_init_weights",
           "main", "run", "validate"]
