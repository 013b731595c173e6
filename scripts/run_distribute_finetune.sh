#!/bin/sh
# Data-parallel fine-tuning with the task's defaults (src/tasks/registry.py); rank 0 evaluates, logs and writes checkpoints.
# Usage: sh scripts/run_distribute_finetune.sh RANK_TABLE_FILE TASK   (msra_ner, chnsenticorp, xnli, dbqa, drcd, cmrc)
#   RANK_TABLE_FILE  an HCCL rank table (Ascend): one process per device this server has in it, with RANK_ID,
#                    DEVICE_ID and RANK_SIZE (the whole table's world size) from it. The table and Ascend are checked
#                    before any process starts. A table of several servers: run the script on each server with
#                    SERVER_ID set to that server's server_id. Logs: LOG_DIR/rank_N.log.
#                    "msrun" (GPU, CPU; or DEVICE_TARGET GPU/CPU): MindSpore's launcher msrun starts this node's
#                    workers. Logs: LOG_DIR/worker_N.log. Activate the virtual environment first: msrun starts its
#                    workers with the `python` found on PATH.
# Several nodes with msrun: run the same command on every node with the same NODE_NUM, MASTER_ADDR and MASTER_PORT
# and that node's NODE_RANK, e.g. two machines of 8 devices:
#   node 0: NODE_NUM=2 NODE_RANK=0 LOCAL_WORKER_NUM=8 MASTER_ADDR=10.0.0.1 sh scripts/run_distribute_finetune.sh msrun xnli
#   node 1: NODE_NUM=2 NODE_RANK=1 LOCAL_WORKER_NUM=8 MASTER_ADDR=10.0.0.1 sh scripts/run_distribute_finetune.sh msrun xnli
# Environment: as run_standalone_finetune.sh (DATA_DIR, PRETRAINED_DIR, VOCAB_FILE, SAVE_DIR, DEVICE_TARGET,
# DATASET_FORMAT, MINDRECORD_DIR, EVAL_JSON_PATH, EXTRA_ARGS, DRY_RUN), plus
#   SERVER_ID         rank tables: this server's server_id (required when the table lists several servers)
#   NODE_NUM          msrun: nodes in the job (default 1)
#   NODE_RANK         msrun: this node's index 0..NODE_NUM-1 (default 0; node 0 runs msrun's scheduler)
#   LOCAL_WORKER_NUM  msrun: workers on this node (default WORKER_NUM / NODE_NUM, or 2)
#   WORKER_NUM        msrun: workers in the whole job (default LOCAL_WORKER_NUM x NODE_NUM)
#   MASTER_ADDR       msrun: node 0's address (default 127.0.0.1); MASTER_PORT (8118); CLUSTER_TIME_OUT (600 s)
#   LOG_DIR           default ./ms_log/TASK_distributed
#   HCCL_CONNECT_TIMEOUT  Ascend: seconds the devices wait for each other (HCCL default 120); raise it (up to 7200)
#                         when the first graph compilation outlasts it
# Each rank takes its slice of every global batch (EXTRA_ARGS' --batch_size per process x processes).
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
. "$SCRIPT_DIR/_launch.sh"
show_help "$@"
[ $# -eq 2 ] || usage_error "RANK_TABLE_FILE TASK"
RANK_TABLE=$1
[ "$RANK_TABLE" = msrun ] || RANK_TABLE=$(abs_path "$RANK_TABLE")
check_rank_table "$RANK_TABLE"
TASK=$2
load_task_facts "$TASK"
resolve_pretrained
resolve_finetune_data dev
check_finetune_files train dev
SAVE_DIR=$(abs_path "${SAVE_DIR:-$REPO_ROOT/save_models/$TASK}")
LOG_DIR=$(abs_path "${LOG_DIR:-$REPO_ROOT/ms_log/${TASK}_distributed}")

set -- --task_type "$TASK" --do_train true --do_eval true --eval_split dev --task_data_dir "$DATA_DIR" \
  --output_dir "$SAVE_DIR"
[ -n "$MR_TRAIN" ] && set -- "$@" --dataset_format mindrecord --train_data_file_path "$MR_TRAIN" \
  --eval_data_file_path "$MR_EVAL"
[ -n "$EVAL_JSON" ] && set -- "$@" --eval_json_path "$EVAL_JSON"
[ -n "$PRETRAINED_CKPT" ] && set -- "$@" --load_pretrain_checkpoint_path "$PRETRAINED_CKPT"
[ -n "$PRETRAINED_VOCAB" ] && set -- "$@" --vocab_file_path "$PRETRAINED_VOCAB"
set -f  # EXTRA_ARGS is a list of flags split on blanks, never glob-expanded
# shellcheck disable=SC2086
set -- "$@" ${EXTRA_ARGS:-}
set +f
if [ "${DRY_RUN:-0}" != 1 ]; then mkdir -p "$LOG_DIR"; fi
cd "$REPO_ROOT"
launch_data_parallel "$RANK_TABLE" "$LOG_DIR" "$TASK_ENTRY" "$@"
