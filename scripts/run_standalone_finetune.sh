#!/bin/sh
# Fine-tune ERNIE on one task with its default hyper-parameters (src/tasks/registry.py), evaluating on dev each epoch.
# Usage: sh scripts/run_standalone_finetune.sh TASK   (msra_ner, chnsenticorp, xnli, dbqa, drcd, cmrc)
# Runs under sh or bash, from any folder. Relative paths in the variables below are taken from the folder you call
# it from; flags in EXTRA_ARGS are passed as they are (the Python script runs from the repository root).
# Needs the migrated pre-trained model (sh scripts/download_pretrained_models.sh, then
# sh scripts/migrate_pretrained_models.sh), or, to train from random weights, an explicit model size in EXTRA_ARGS
# ("--config tiny", base or an ernie_config.json) and VOCAB_FILE.
# Environment:
#   DATA_DIR        ERNIE task_data layout (default ./data)
#   PRETRAINED_DIR  migrated model: ernie.ckpt and vocab.txt (default ./pretrain_models/converted)
#   VOCAB_FILE      vocab.txt (default PRETRAINED_DIR/vocab.txt)
#   SAVE_DIR        checkpoints, task.json, metrics (default ./save_models/TASK)
#   DEVICE_TARGET   auto (default: the device the installed MindSpore is built for), Ascend, GPU or CPU; DEVICE_ID
#   DATASET_FORMAT  raw (default) or mindrecord: then MINDRECORD_DIR (default ./data/mindrecord) holds
#                   TASK_train.mindrecord and TASK_dev.mindrecord from convert_finetune_datasets.sh; drcd and cmrc
#                   also read the dev JSON under DATA_DIR (EVAL_JSON_PATH overrides it) for the answer texts
#   EXTRA_ARGS      more flags of the run_ernie_*.py script, e.g. "--epoch_num 1 --max_seq_len 128"
#   DRY_RUN=1       print the command instead of running it
# Log: ms_log/TASK_train_log.txt.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
[ $# -eq 1 ] || usage_error TASK
TASK=$1
load_task_facts "$TASK"
resolve_pretrained
resolve_finetune_data dev
check_finetune_files train dev
SAVE_DIR=$(abs_path "${SAVE_DIR:-$REPO_ROOT/save_models/$TASK}")

set -- "$TASK_ENTRY" --task_type "$TASK" --device_target "${DEVICE_TARGET:-auto}"
[ -n "${DEVICE_ID:-}" ] && set -- "$@" --device_id "$DEVICE_ID"
set -- "$@" --do_train true --do_eval true --eval_split dev --task_data_dir "$DATA_DIR"
[ -n "$MR_TRAIN" ] && set -- "$@" --dataset_format mindrecord --train_data_file_path "$MR_TRAIN" \
  --eval_data_file_path "$MR_EVAL"
[ -n "$EVAL_JSON" ] && set -- "$@" --eval_json_path "$EVAL_JSON"
[ -n "$PRETRAINED_CKPT" ] && set -- "$@" --load_pretrain_checkpoint_path "$PRETRAINED_CKPT"
[ -n "$PRETRAINED_VOCAB" ] && set -- "$@" --vocab_file_path "$PRETRAINED_VOCAB"
set -f  # EXTRA_ARGS is a list of flags split on blanks, never glob-expanded
# shellcheck disable=SC2086
set -- "$@" --output_dir "$SAVE_DIR" ${EXTRA_ARGS:-}
set +f
if [ "${DRY_RUN:-0}" != 1 ]; then mkdir -p "$SAVE_DIR" "$REPO_ROOT/ms_log"; fi
cd "$REPO_ROOT"
run_logged "$REPO_ROOT/ms_log/${TASK}_train_log.txt" python "$@"
