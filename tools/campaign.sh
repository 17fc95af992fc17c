#!/usr/bin/env bash
# The CPU training campaign (issue 12, docs/training.md "The campaign"):
#   tools/campaign.sh start   [--init PATH|none] [--recipe "lic train flags"] [-- more flags]
#   tools/campaign.sh status
#   tools/campaign.sh stop
#   tools/campaign.sh export  [--install] [--eval-limit N]
# Every session: `start` first (it resumes runs/campaign), `export` before stopping, and commit
# the weights when `export --install` says they beat the shipped ones.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m lic_core.train.campaign "$@"
