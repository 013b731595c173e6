#!/bin/sh
# Evaluate a fine-tuned checkpoint on the test split (dev for cmrc, which has no public test set).
# Usage: sh scripts/run_finetune_eval.sh TASK [CHECKPOINT]   (default checkpoint: SAVE_DIR/TASK-best.ckpt)
# The model's settings (max_seq_len, labels, CRF) come from the trained folder (task.json beside the checkpoint):
# this script passes only the data, the checkpoint and what you set in EXTRA_ARGS.
# Environment:
#   SAVE_DIR        the fine-tuning output folder (default ./save_models/TASK)
#   DATA_DIR        ERNIE task_data layout (default ./data)
#   EVAL_SPLIT      test (default; dev for cmrc) or dev
#   DEVICE_TARGET   auto (default), Ascend, GPU or CPU; DEVICE_ID
#   DATASET_FORMAT  raw (default) or mindrecord: MINDRECORD_DIR/TASK_SPLIT.mindrecord (default ./data/mindrecord);
#                   drcd and cmrc also read the split's JSON under DATA_DIR (EVAL_JSON_PATH overrides it)
#   EXTRA_ARGS      more flags of the run_ernie_*.py script (they override what the trained folder says)
#   DRY_RUN=1       print the command instead of running it
# Relative paths are taken from the folder you call the script from. Log: ms_log/TASK_eval_log.txt.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
{ [ $# -ge 1 ] && [ $# -le 2 ]; } || usage_error "TASK [CHECKPOINT]"
TASK=$1
load_task_facts "$TASK"
SAVE_DIR=$(abs_path "${SAVE_DIR:-$REPO_ROOT/save_models/$TASK}")
CKPT=$(abs_path "${2:-$SAVE_DIR/$TASK-best.ckpt}")
[ -f "$CKPT" ] || [ "${DRY_RUN:-0}" = 1 ] \
  || die "checkpoint $CKPT not found: fine-tune first (sh scripts/run_standalone_finetune.sh $TASK) or pass CHECKPOINT"
SPLIT=${EVAL_SPLIT:-test}
[ -n "$(task_file "$SPLIT")" ] || SPLIT=${EVAL_SPLIT:-dev}  # cmrc: no public test split
[ -n "$(task_file "$SPLIT")" ] || die "$TASK has no $SPLIT split (it has: $TASK_FILES)"
resolve_finetune_data "$SPLIT"
check_finetune_files "$SPLIT"

set -- "$TASK_ENTRY" --task_type "$TASK" --device_target "${DEVICE_TARGET:-auto}"
[ -n "${DEVICE_ID:-}" ] && set -- "$@" --device_id "$DEVICE_ID"
set -- "$@" --do_eval true --task_data_dir "$DATA_DIR" --eval_split "$SPLIT"
[ -n "$MR_EVAL" ] && set -- "$@" --dataset_format mindrecord --eval_data_file_path "$MR_EVAL"
[ -n "$EVAL_JSON" ] && set -- "$@" --eval_json_path "$EVAL_JSON"
set -f  # EXTRA_ARGS is a list of flags split on blanks, never glob-expanded
# shellcheck disable=SC2086
set -- "$@" --load_finetune_checkpoint_path "$CKPT" --output_dir "$(dirname -- "$CKPT")" ${EXTRA_ARGS:-}
set +f
if [ "${DRY_RUN:-0}" != 1 ]; then mkdir -p "$REPO_ROOT/ms_log"; fi
cd "$REPO_ROOT"
run_logged "$REPO_ROOT/ms_log/${TASK}_eval_log.txt" python "$@"
