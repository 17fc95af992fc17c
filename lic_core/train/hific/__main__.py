"""``python -m lic_core.train.hific``: the HiFiC trainer on its own."""
import sys

from .trainer import main

sys.exit(main())
