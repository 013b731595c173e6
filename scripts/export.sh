#!/bin/bash
# Export a fine-tuned model for inference.
# Usage: bash scripts/export.sh CKPT_FILE EXPORT_PATH TASK_TYPE [FILE_FORMAT] [BATCH_SIZE]
#   CKPT_FILE    fine-tuned .ckpt, or its output folder (task.json and ernie_config.json beside it describe the model)
#   EXPORT_PATH  folder; writes EXPORT_PATH/TASK_TYPE.mindir (or .onnx / .air), its .json sidecar and vocab.txt
#   TASK_TYPE    msra_ner, chnsenticorp, xnli, dbqa, drcd or cmrc
#   FILE_FORMAT  MINDIR (default), ONNX, or AIR (Ascend only); BATCH_SIZE default 1
# Environment: DEVICE_TARGET (default CPU; Ascend for AIR), DEVICE_ID, EXTRA_ARGS (more export.py flags, e.g.
# "--max_seq_len 128 --quantize int8").
set -euo pipefail
source "$(dirname "$0")/_common.sh"
if [ $# -lt 3 ] || [ $# -gt 5 ]; then
  echo "usage: bash $0 CKPT_FILE EXPORT_PATH TASK_TYPE [FILE_FORMAT] [BATCH_SIZE]" >&2
  exit 2
fi
entry_script "$3" >/dev/null
FORMAT=${4:-MINDIR}
DEVICE_TARGET=${DEVICE_TARGET:-CPU}
[ "$FORMAT" = AIR ] && [ "$DEVICE_TARGET" = CPU ] && DEVICE_TARGET=Ascend
mkdir -p "$2"
# shellcheck disable=SC2086
python "$REPO_ROOT/export.py" --ckpt_file "$1" --file_name "$2/$3" --task_type "$3" --file_format "$FORMAT" \
  --batch_size "${5:-1}" --device_target "$DEVICE_TARGET" --device_id "${DEVICE_ID:-0}" ${EXTRA_ARGS:-}
