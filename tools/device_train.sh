#!/usr/bin/env bash
# One chunk of GPU training on a lent device machine (docs/training.md, "Continuing the weights
# on a GPU").  Sub-commands:
#
#   tools/device_train.sh prepare
#       HERE (no GPU): copy ../shared/data/{train,kodak} into the git-ignored .data/ so a device
#       `run` can carry it (carry: [".data"]).
#
#   tools/device_train.sh chunk NAME MINUTES [extra `lic train` flags...]
#       ON THE DEVICE, synchronous: train for MINUTES (use 9 in a 600 s command), continuing
#       /tmp/lic-run if it holds a checkpoint (--resume, full optimizer state) or else starting
#       from lic_core/assets/weights/NAME.safetensors (--init, weights only) when it exists;
#       then export NAME as
#       fp16 weights + card into $OUT (split into 15 MiB parts when larger than 16 MiB).
#
#   tools/device_train.sh campaign-prepare
#       HERE: put the campaign's newest weights (EMA, fp32, no optimizer: ~12 MB for the N=64
#       model) into .data/campaign-init.pt and the training + 6 Kodak images into .data/.
#   tools/device_train.sh campaign-chunk MINUTES [extra `lic train` flags...]
#       ON THE DEVICE: continue those weights with the campaign's recipe (GPU batch/crop) for
#       MINUTES, then write $OUT/campaign-device.pt (same small format) and the log.
#       HERE afterwards: tools/campaign.sh stop; tools/campaign.sh adopt FILES_AT/campaign-device.pt;
#       tools/campaign.sh start   (steps, CPU-hours and GPU-hours carry over into the card)
#
#   tools/device_train.sh start NAME MINUTES [flags...]   ON THE DEVICE: the same training,
#       started with setsid in the background (survives the command); returns at once.
#   tools/device_train.sh poll [SECONDS]                    ON THE DEVICE: wait up to SECONDS
#       (default 500) while the background run lives, then print the log tail.
#   tools/device_train.sh finish NAME [export flags...]     ON THE DEVICE: stop the background run
#       (SIGTERM → it checkpoints), export NAME into $OUT.
#
# Environment: RUN_DIR (default /tmp/lic-run), DATA (default .data/train), KODAK (.data/kodak),
# MODEL (architecture for a fresh start, default lic-lgem), WORKERS (6), BATCH (16), CROP (256), LR (1e-4),
# STEPS (total steps of the schedule, default 200000), EVAL_LIMIT (Kodak images for the card, 4),
# AMP=1 (bf16 autocast; not yet validated on a GPU), PREVIEW=1 (mark the export as a preview).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
RUN_DIR=${RUN_DIR:-/tmp/lic-run}
DATA=${DATA:-.data/train}
KODAK=${KODAK:-.data/kodak}
MODEL=${MODEL:-lic-lgem}
BATCH=${BATCH:-16}
CROP=${CROP:-256}
LR=${LR:-1e-4}
STEPS=${STEPS:-200000}
EVAL_LIMIT=${EVAL_LIMIT:-4}
OUT=${OUT:-runs/device-out}

train_cmd() {  # NAME MINUTES [flags]
  local name=$1 minutes=$2; shift 2
  local start=()
  if ls "$RUN_DIR"/ckpt-*.pt >/dev/null 2>&1; then
    start=(--resume "$RUN_DIR")
  elif [ -f "lic_core/assets/weights/$name.safetensors" ]; then
    start=(--init "lic_core/assets/weights/$name.safetensors")
  fi
  local ngpu
  ngpu=$(python3 -c "import torch; print(torch.cuda.device_count())")
  local launcher=(python3 -m lic_core.train codec)
  if [ "${ngpu:-0}" -gt 1 ]; then
    launcher=(torchrun --standalone --nproc_per_node "$ngpu" -m lic_core.train codec)
  fi
  echo "${launcher[@]}" --model "$MODEL" --data "$DATA" --out "$RUN_DIR" --steps "$STEPS" \
    --batch "$BATCH" --crop "$CROP" --lr "$LR" --warmup 1000 --ema 0.999 ${AMP:+--amp} --channels-last \
    --workers "${WORKERS:-6}" --log-every 100 --ckpt-every 2000 --val-every 2000 --val-dir "$KODAK" \
    --val-limit 4 --time-budget-min "$minutes" "${start[@]}" "$@"
}

export_to_out() {  # NAME [export flags]
  local name=$1; shift
  mkdir -p "$OUT"
  python3 -m lic_core.cli export "$RUN_DIR" --name "$name" --out "$OUT" --force \
    --eval-dir "$KODAK" --eval-limit "$EVAL_LIMIT" ${PREVIEW:+--preview} "$@"
  cp "$RUN_DIR/log.jsonl" "$OUT/$name.train.jsonl" 2>/dev/null || true
  local f="$OUT/$name.safetensors"
  if [ "$(stat -c %s "$f")" -gt $((16 * 1024 * 1024)) ]; then
    # $OUT returns files of at most 16 MiB: split, and `cat NAME.safetensors.part-* >` back here
    split -b 15M -d "$f" "$f.part-" && rm "$f"
  fi
  ls -l "$OUT"
}

case "${1:-}" in
  prepare)
    python3 - <<'EOF'
from lic_core.train.data import copy_training_data, copy_training_data_within
from campaign.device import carry_budget
print("kodak:", copy_training_data("../shared/data/kodak", ".data/kodak"), "images")
n, side, used = copy_training_data_within("../shared/data/train", ".data/train",
                                          carry_budget([".data/kodak"]))
print(f"train: {n} images, {'originals' if side is None else f'longest side {side}'},"
      f" {used / 2**20:.1f} MiB (tracked files + .data stay under the 64 MiB upload)")
EOF
    du -sh .data ;;
  campaign-prepare)
    python3 -m campaign handoff --to .data/campaign-init.pt
    python3 - <<'EOF'
from lic_core.train.data import copy_training_data_within, list_images
from campaign.device import carry_budget
import shutil, pathlib
k = pathlib.Path(".data/kodak6"); k.mkdir(parents=True, exist_ok=True)
for p in list_images("../shared/data/kodak")[:6]:
    shutil.copy2(p, k / p.name)
print("kodak6: 6 images")
n, side, used = copy_training_data_within("../shared/data/train", ".data/train",
                                          carry_budget([".data/kodak6", ".data/campaign-init.pt"]))
print(f"train: {n} images, {'originals' if side is None else f'longest side {side}'},"
      f" {used / 2**20:.1f} MiB (tracked files + .data stay under the 64 MiB upload)")
EOF
    du -sh .data ;;
  campaign-chunk)
    shift; minutes=$1; shift
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true
    recipe=$(python3 -c "import shlex; from campaign.codec import RECIPE; print(shlex.join(RECIPE))")
    # shellcheck disable=SC2086  # the recipe is a flag list
    python3 -m lic_core.train codec $recipe --data .data/train --out /tmp/lic-campaign \
      --init .data/campaign-init.pt --batch "${BATCH:-16}" --crop "${CROP:-256}" --threads 8 \
      --workers "${WORKERS:-6}" --channels-last --log-every 100 --ckpt-every 2000 \
      --val-every 2000 --val-dir .data/kodak6 --val-limit 6 --val-u 0 0.5 1 \
      --time-budget-min "$minutes" "$@"
    mkdir -p "$OUT"
    python3 -m campaign handoff --from /tmp/lic-campaign --to "$OUT/campaign-device.pt"
    cp /tmp/lic-campaign/log.jsonl "$OUT/campaign-device.log.jsonl"
    ls -l "$OUT" ;;
  chunk)
    shift; name=$1; minutes=$2; shift 2
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true
    $(train_cmd "$name" "$minutes" "$@")
    export_to_out "$name" ;;
  start)
    shift; name=$1; minutes=$2; shift 2
    mkdir -p "$RUN_DIR"
    # setsid: the run outlives this command; SIGTERM from `finish` makes it checkpoint and exit
    setsid nohup $(train_cmd "$name" "$minutes" "$@") >"$RUN_DIR/stdout.log" 2>&1 < /dev/null &
    echo $! >"$RUN_DIR/pid"
    sleep 20; tail -n 5 "$RUN_DIR/stdout.log" ;;
  poll)
    secs=${2:-500}; pid=$(cat "$RUN_DIR/pid")
    for _ in $(seq "$secs"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    tail -n 8 "$RUN_DIR/stdout.log"
    kill -0 "$pid" 2>/dev/null && echo "still running" || echo "finished" ;;
  finish)
    shift; name=$1; shift
    pid=$(cat "$RUN_DIR/pid" 2>/dev/null || echo)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 1; done
    fi
    tail -n 3 "$RUN_DIR/stdout.log" || true
    export_to_out "$name" "$@" ;;
  *)
    sed -n 2,36p "$0"; exit 2 ;;
esac
