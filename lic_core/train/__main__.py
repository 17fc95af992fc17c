"""``python -m lic_core.train ...`` (also the torchrun entry: ``torchrun -m lic_core.train``)."""
import sys

from .loop import main

sys.exit(main())
