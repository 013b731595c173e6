#!/bin/sh
# Export a fine-tuned model for inference.
# Usage: sh scripts/export.sh CKPT_FILE EXPORT_PATH TASK_TYPE [FILE_FORMAT] [BATCH_SIZE]
#   CKPT_FILE    fine-tuned .ckpt, or its output folder (task.json and ernie_config.json beside it describe the model)
#   EXPORT_PATH  folder; writes EXPORT_PATH/TASK_TYPE.mindir (or .onnx / .air), its .json sidecar and vocab.txt
#   TASK_TYPE    msra_ner, chnsenticorp, xnli, dbqa, drcd or cmrc
#   FILE_FORMAT  MINDIR (default), ONNX, or AIR (Ascend only); BATCH_SIZE default 1
# Environment: DEVICE_TARGET (default CPU; Ascend for AIR), DEVICE_ID, EXTRA_ARGS (more export.py flags, e.g.
# "--max_seq_len 128 --quantize int8"), DRY_RUN=1 (print the command instead of running it).
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
{ [ $# -ge 3 ] && [ $# -le 5 ]; } || usage_error "CKPT_FILE EXPORT_PATH TASK_TYPE [FILE_FORMAT] [BATCH_SIZE]"
CKPT=$1 EXPORT_PATH=$2 TASK=$3 FORMAT=${4:-MINDIR} BATCH_SIZE=${5:-1}
load_task_facts "$TASK"
DEVICE_TARGET=${DEVICE_TARGET:-CPU}
if [ "$FORMAT" = AIR ] && [ "$DEVICE_TARGET" = CPU ]; then DEVICE_TARGET=Ascend; fi
set -- "$REPO_ROOT/export.py" --ckpt_file "$CKPT" --file_name "$EXPORT_PATH/$TASK" --task_type "$TASK" \
  --file_format "$FORMAT" --batch_size "$BATCH_SIZE" --device_target "$DEVICE_TARGET" --device_id "${DEVICE_ID:-0}"
set -f  # EXTRA_ARGS is a list of flags split on blanks, never glob-expanded
# shellcheck disable=SC2086
set -- "$@" ${EXTRA_ARGS:-}
set +f
dry_run python "$@" && exit 0
mkdir -p "$EXPORT_PATH"
python "$@"
