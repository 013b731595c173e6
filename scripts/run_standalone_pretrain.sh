#!/bin/sh
# Pre-train ERNIE on one device.
# Usage: sh scripts/run_standalone_pretrain.sh DEVICE_ID EPOCH_SIZE DATA_DIR
#   DATA_DIR: MindRecord from convert_pretrain_datasets.sh (file or directory), or raw input with DATA_FORMAT.
# Environment:
#   DEVICE_TARGET  auto (default: the device the installed MindSpore package is built for), Ascend, GPU or CPU
#   DATA_FORMAT    mindrecord (default), ernie, text or tagged
#   VOCAB_FILE     vocab.txt (default ./pretrain_models/converted/vocab.txt)
#   CONFIG         model size: base (default), tiny or an ernie_config.json
#   SAVE_DIR       checkpoints and train_log.jsonl (default ./save_models/pretrain)
#   EVAL_DATA      held-out data scored for MLM and NSP accuracy
#   EXTRA_ARGS     more run_ernie_pretrain.py flags, e.g. "--batch_size 64 --train_steps 100000"
#   DRY_RUN=1      print the command instead of running it
# Relative paths are taken from the folder you call the script from. Log: ms_log/pretraining_log.txt.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
[ $# -eq 3 ] || usage_error "DEVICE_ID EPOCH_SIZE DATA_DIR"
DEVICE_ID=$1
EPOCH_SIZE=$2
DATA_DIR=$(abs_path "$3")
VOCAB_FILE=$(abs_path "${VOCAB_FILE:-$REPO_ROOT/pretrain_models/converted/vocab.txt}")
check_pretrain_inputs

set -- run_ernie_pretrain.py --device_target "${DEVICE_TARGET:-auto}" --device_id "$DEVICE_ID" \
  --epoch_size "$EPOCH_SIZE" --data_dir "$DATA_DIR" --data_format "${DATA_FORMAT:-mindrecord}" \
  --vocab_file "$VOCAB_FILE" --config "$CONFIG" \
  --output_dir "$(abs_path "${SAVE_DIR:-$REPO_ROOT/save_models/pretrain}")"
[ -n "${EVAL_DATA:-}" ] && set -- "$@" --eval_data "$(abs_path "$EVAL_DATA")"
set -f  # EXTRA_ARGS is a list of flags split on blanks, never glob-expanded
# shellcheck disable=SC2086
set -- "$@" --enable_save_ckpt true --save_checkpoint_steps 10000 --save_checkpoint_num 1 ${EXTRA_ARGS:-}
set +f
if [ "${DRY_RUN:-0}" != 1 ]; then mkdir -p "$REPO_ROOT/ms_log"; fi
cd "$REPO_ROOT"
run_logged "$REPO_ROOT/ms_log/pretraining_log.txt" python "$@"
