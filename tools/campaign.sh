#!/usr/bin/env bash
# The CPU training campaign (docs/training.md "The campaign", "The generative stages"); the code
# is the repository's campaign/ package (not part of the installed lic_core):
#   tools/campaign.sh [--stage codec|diffusion|hific|gan|finetune-<q>] start [--init PATH|none] [--recipe "…"] [-- more flags]
#   tools/campaign.sh --stage gan start -- --cpu-budget-min 196   # the GAN decoder (docs/gan.md)
#   tools/campaign.sh [--stage …] status
#   tools/campaign.sh [--stage …] stop
#   tools/campaign.sh [--stage …] export [--install] [--eval-limit N] [--rates 0,0.5,1]
#   tools/campaign.sh --stage diffusion|hific seed   # commit campaign/seeds/ when runs/ may be lost
#   tools/campaign.sh cycle start|status|stop   # a phase's end unattended: decay, export, release, resume
# The default stage is codec; only one stage trains at a time. Every session: `start` first (it
# resumes runs/campaign/<stage>, else a committed seed); new codec weights go out with
# `cycle start` (decay, export, release train when earned, main line again; DEVELOPERS.md);
# before stopping, `stop` and commit the stage's `seed`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m campaign "$@"
