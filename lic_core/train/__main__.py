"""``python -m lic_core.train STAGE ...`` (also the torchrun entry: ``torchrun -m lic_core.train``)."""
import sys

from .stages import main

sys.exit(main())
