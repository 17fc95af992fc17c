"""``python -m campaign ...`` (from the checkout; ``tools/campaign.sh`` runs it)."""
import sys

from .cli import main

sys.exit(main())
