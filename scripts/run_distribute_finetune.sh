#!/usr/bin/env bash
# Data-parallel fine-tuning with the task's defaults (src/tasks.py); rank 0 evaluates, logs and writes checkpoints.
# Usage: bash scripts/run_distribute_finetune.sh RANK_TABLE_FILE TASK   (msra_ner, chnsenticorp, xnli, dbqa, drcd, cmrc)
#   Ascend: RANK_TABLE_FILE is an HCCL rank table (JSON); one process per device it lists (on a multi-server table,
#   those of SERVER_ID), with RANK_ID, DEVICE_ID and RANK_SIZE set from it. Logs: LOG_DIR/rank_N.log.
#   GPU/CPU, or RANK_TABLE_FILE "msrun": MindSpore's launcher msrun starts WORKER_NUM (default 2) processes on this
#   machine (MASTER_ADDR 127.0.0.1, MASTER_PORT 8118). Logs: LOG_DIR/worker_N.log.
#   Activate the virtual environment first: msrun starts its workers with the `python` found on PATH.
# Environment: as run_standalone_finetune.sh (DATA_DIR, PRETRAINED_DIR, SAVE_DIR, DEVICE_TARGET, DATASET_FORMAT,
# MINDRECORD_DIR, EXTRA_ARGS), plus WORKER_NUM, MASTER_ADDR, MASTER_PORT, LOG_DIR (./ms_log/TASK_distributed).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -eq 2 ] || { echo "usage: bash $0 RANK_TABLE_FILE TASK" >&2; exit 2; }
RANK_TABLE=$1
[ "$RANK_TABLE" = msrun ] || RANK_TABLE=$(realpath "$RANK_TABLE")
TASK=$2
SCRIPT=$(entry_script "$TASK")
LOG_DIR=$(realpath -m "${LOG_DIR:-$REPO_ROOT/ms_log/${TASK}_distributed}")
mkdir -p "$LOG_DIR"
args=(--task_type "$TASK" --do_train true --do_eval true --eval_split dev --task_data_dir "${DATA_DIR:-$REPO_ROOT/data}"
      --output_dir "${SAVE_DIR:-$REPO_ROOT/save_models/$TASK}")
if [ "${DATASET_FORMAT:-raw}" = mindrecord ]; then
  mr=${MINDRECORD_DIR:-$REPO_ROOT/data/mindrecord}
  args+=(--dataset_format mindrecord --train_data_file_path "$mr/${TASK}_train.mindrecord"
         --eval_data_file_path "$mr/${TASK}_dev.mindrecord")
fi
# shellcheck disable=SC2207,SC2206
args+=($(pretrained_args) ${EXTRA_ARGS:-})
cd "$REPO_ROOT"

launch_data_parallel "$RANK_TABLE" "$LOG_DIR" "$SCRIPT" "${args[@]}"
