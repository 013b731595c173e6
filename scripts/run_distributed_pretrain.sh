#!/bin/sh
# Data-parallel pre-training: every process reads the same data and takes its slice of each global batch (batch
# size x processes); gradients are averaged; rank 0 writes checkpoints, train_log.jsonl and the progress bar.
# Usage: sh scripts/run_distributed_pretrain.sh DATA_DIR [RANK_TABLE_FILE]
#   RANK_TABLE_FILE  an HCCL rank table (Ascend): one process per device this server has in it, with RANK_ID,
#                    DEVICE_ID and RANK_SIZE (the whole table's world size) from it. The table and Ascend are checked
#                    before any process starts. A table of several servers: run the script on each server with
#                    SERVER_ID set to that server's server_id. Logs: LOG_DIR/rank_N.log.
#                    "msrun" or absent (GPU, CPU): MindSpore's launcher msrun starts this node's workers. Logs:
#                    LOG_DIR/worker_N.log. Activate the virtual environment first: msrun starts its workers with the
#                    `python` found on PATH.
# Several nodes with msrun: run the same command on every node with the same NODE_NUM, MASTER_ADDR and MASTER_PORT
# and that node's NODE_RANK, e.g. two machines of 8 devices:
#   node 0: NODE_NUM=2 NODE_RANK=0 LOCAL_WORKER_NUM=8 MASTER_ADDR=10.0.0.1 sh scripts/run_distributed_pretrain.sh data
#   node 1: NODE_NUM=2 NODE_RANK=1 LOCAL_WORKER_NUM=8 MASTER_ADDR=10.0.0.1 sh scripts/run_distributed_pretrain.sh data
# Environment: as run_standalone_pretrain.sh (DEVICE_TARGET, DATA_FORMAT, VOCAB_FILE, CONFIG, SAVE_DIR, EVAL_DATA,
# EXTRA_ARGS, DRY_RUN), plus EPOCH_SIZE (1) and
#   SERVER_ID         rank tables: this server's server_id (required when the table lists several servers)
#   NODE_NUM          msrun: nodes in the job (default 1)
#   NODE_RANK         msrun: this node's index 0..NODE_NUM-1 (default 0; node 0 runs msrun's scheduler)
#   LOCAL_WORKER_NUM  msrun: workers on this node (default WORKER_NUM / NODE_NUM, or 2)
#   WORKER_NUM        msrun: workers in the whole job (default LOCAL_WORKER_NUM x NODE_NUM)
#   MASTER_ADDR       msrun: node 0's address (default 127.0.0.1); MASTER_PORT (8118); CLUSTER_TIME_OUT (600 s)
#   LOG_DIR           default ./ms_log/pretrain_distributed
#   HCCL_CONNECT_TIMEOUT  Ascend: seconds the devices wait for each other (HCCL default 120); raise it (up to 7200)
#                         when the first graph compilation outlasts it
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
. "$SCRIPT_DIR/_launch.sh"
show_help "$@"
{ [ $# -ge 1 ] && [ $# -le 2 ]; } || usage_error "DATA_DIR [RANK_TABLE_FILE]"
DATA_DIR=$(abs_path "$1")
RANK_TABLE=${2:-msrun}
[ "$RANK_TABLE" = msrun ] || RANK_TABLE=$(abs_path "$RANK_TABLE")
check_rank_table "$RANK_TABLE"
LOG_DIR=$(abs_path "${LOG_DIR:-$REPO_ROOT/ms_log/pretrain_distributed}")
VOCAB_FILE=$(abs_path "${VOCAB_FILE:-$REPO_ROOT/pretrain_models/converted/vocab.txt}")
check_pretrain_inputs

set -- --epoch_size "${EPOCH_SIZE:-1}" --data_dir "$DATA_DIR" --data_format "${DATA_FORMAT:-mindrecord}" \
  --vocab_file "$VOCAB_FILE" --config "$CONFIG" --output_dir "$(abs_path "${SAVE_DIR:-$REPO_ROOT/save_models/pretrain}")" \
  --distribute true
[ -n "${EVAL_DATA:-}" ] && set -- "$@" --eval_data "$(abs_path "$EVAL_DATA")"
set -f  # EXTRA_ARGS is a list of flags split on blanks, never glob-expanded
# shellcheck disable=SC2086
set -- "$@" ${EXTRA_ARGS:-}
set +f
if [ "${DRY_RUN:-0}" != 1 ]; then mkdir -p "$LOG_DIR"; fi
cd "$REPO_ROOT"
launch_data_parallel "$RANK_TABLE" "$LOG_DIR" run_ernie_pretrain.py "$@"
