#!/usr/bin/env bash
# Fine-tune ERNIE on one task with its default hyper-parameters (src/tasks.py), evaluating on dev each epoch.
# Usage: bash scripts/run_standalone_finetune.sh TASK   (msra_ner, chnsenticorp, xnli, dbqa, drcd, cmrc)
# Environment: DATA_DIR (ERNIE task_data layout, default ./data), PRETRAINED_DIR (default
# ./pretrain_models/converted), SAVE_DIR (default ./save_models/TASK), DEVICE_TARGET (default auto), DEVICE_ID,
# DATASET_FORMAT (raw or mindrecord: then MINDRECORD_DIR from convert_finetune_datasets.sh), EXTRA_ARGS (more flags).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -eq 1 ] || { echo "usage: bash $0 TASK" >&2; exit 2; }
TASK=$1
SCRIPT=$(entry_script "$TASK")
SAVE_DIR=${SAVE_DIR:-$REPO_ROOT/save_models/$TASK}
mkdir -p "$SAVE_DIR" "$REPO_ROOT/ms_log"
data_args=(--task_data_dir "${DATA_DIR:-$REPO_ROOT/data}")
if [ "${DATASET_FORMAT:-raw}" = mindrecord ]; then
  mr=${MINDRECORD_DIR:-$REPO_ROOT/data/mindrecord}
  data_args+=(--dataset_format mindrecord --train_data_file_path "$mr/${TASK}_train.mindrecord"
              --eval_data_file_path "$mr/${TASK}_dev.mindrecord")
fi
cd "$REPO_ROOT"
# shellcheck disable=SC2046,SC2086
python "$SCRIPT" --task_type "$TASK" --device_target "${DEVICE_TARGET:-auto}" ${DEVICE_ID:+--device_id $DEVICE_ID} \
  --do_train true --do_eval true --eval_split dev "${data_args[@]}" $(pretrained_args) \
  --output_dir "$SAVE_DIR" ${EXTRA_ARGS:-} 2>&1 | tee "$REPO_ROOT/ms_log/${TASK}_train_log.txt"
