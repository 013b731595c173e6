#!/usr/bin/env bash
# Evaluate a fine-tuned checkpoint on the test split (dev for cmrc, which has no public test set).
# Usage: bash scripts/run_finetune_eval.sh TASK [CHECKPOINT]   (default checkpoint: $SAVE_DIR/TASK-best.ckpt)
# Environment: as run_standalone_finetune.sh; EVAL_SPLIT overrides the split.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 1 ] || { echo "usage: bash $0 TASK [CHECKPOINT]" >&2; exit 2; }
TASK=$1
SCRIPT=$(entry_script "$TASK")
SAVE_DIR=${SAVE_DIR:-$REPO_ROOT/save_models/$TASK}
CKPT=${2:-$SAVE_DIR/$TASK-best.ckpt}
[ -f "$CKPT" ] || { echo "checkpoint $CKPT not found: fine-tune first (run_standalone_finetune.sh $TASK)" >&2; exit 1; }
SPLIT=${EVAL_SPLIT:-test}
[ "$TASK" = cmrc ] && SPLIT=${EVAL_SPLIT:-dev}
data_args=(--task_data_dir "${DATA_DIR:-$REPO_ROOT/data}" --eval_split "$SPLIT")
if [ "${DATASET_FORMAT:-raw}" = mindrecord ]; then
  mr=${MINDRECORD_DIR:-$REPO_ROOT/data/mindrecord}
  data_args+=(--dataset_format mindrecord --eval_data_file_path "$mr/${TASK}_${SPLIT}.mindrecord")
fi
mkdir -p "$REPO_ROOT/ms_log"
cd "$REPO_ROOT"
# shellcheck disable=SC2086
python "$SCRIPT" --task_type "$TASK" --device_target "${DEVICE_TARGET:-auto}" ${DEVICE_ID:+--device_id $DEVICE_ID} \
  --do_eval true "${data_args[@]}" --load_finetune_checkpoint_path "$CKPT" --output_dir "$(dirname "$CKPT")" \
  ${EXTRA_ARGS:-} 2>&1 | tee "$REPO_ROOT/ms_log/${TASK}_eval_log.txt"
