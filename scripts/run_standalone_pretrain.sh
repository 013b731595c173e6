#!/usr/bin/env bash
# Pre-train ERNIE on one device.
# Usage: bash scripts/run_standalone_pretrain.sh DEVICE_ID EPOCH_SIZE DATA_DIR
#   DATA_DIR: MindRecord from convert_pretrain_datasets.sh (file or directory), or raw input with DATA_FORMAT.
# Environment: DEVICE_TARGET (default auto: the device the installed MindSpore package is built for), DATA_FORMAT (mindrecord | ernie | text |
# tagged), VOCAB_FILE (default ./pretrain_models/converted/vocab.txt), CONFIG (base | tiny | ernie_config.json,
# default base), SAVE_DIR (default ./save_models/pretrain), EVAL_DATA, EXTRA_ARGS (more run_ernie_pretrain.py flags).
# Log: ms_log/pretraining_log.txt.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -eq 3 ] || { echo "usage: bash $0 DEVICE_ID EPOCH_SIZE DATA_DIR" >&2; exit 2; }
DEVICE_ID=$1
EPOCH_SIZE=$2
DATA_DIR=$(realpath "$3")
mkdir -p "$REPO_ROOT/ms_log"
cd "$REPO_ROOT"
# shellcheck disable=SC2086
python run_ernie_pretrain.py --device_target "${DEVICE_TARGET:-auto}" --device_id "$DEVICE_ID" \
  --epoch_size "$EPOCH_SIZE" --data_dir "$DATA_DIR" --data_format "${DATA_FORMAT:-mindrecord}" \
  --vocab_file "${VOCAB_FILE:-$REPO_ROOT/pretrain_models/converted/vocab.txt}" --config "${CONFIG:-base}" \
  --output_dir "${SAVE_DIR:-$REPO_ROOT/save_models/pretrain}" ${EVAL_DATA:+--eval_data "$EVAL_DATA"} \
  --enable_save_ckpt true --save_checkpoint_steps 10000 --save_checkpoint_num 1 ${EXTRA_ARGS:-} \
  2>&1 | tee "$REPO_ROOT/ms_log/pretraining_log.txt"
