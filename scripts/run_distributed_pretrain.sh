#!/usr/bin/env bash
# Data-parallel pre-training: every process reads the same data and takes its slice of each global batch (batch
# size x processes); gradients are averaged; rank 0 writes checkpoints, train_log.jsonl and the progress bar.
# Usage: bash scripts/run_distributed_pretrain.sh DATA_DIR [RANK_TABLE_FILE]
#   Ascend: RANK_TABLE_FILE is an HCCL rank table (JSON); one process per device it lists (on a multi-server table,
#   those of SERVER_ID), with RANK_ID, DEVICE_ID and RANK_SIZE set from it. Logs: LOG_DIR/rank_N.log.
#   GPU/CPU, or RANK_TABLE_FILE "msrun" or absent: MindSpore's launcher msrun starts WORKER_NUM (default 2)
#   processes on this machine (MASTER_ADDR 127.0.0.1, MASTER_PORT 8118). Logs: LOG_DIR/worker_N.log.
#   Activate the virtual environment first: msrun starts its workers with the `python` found on PATH.
# Environment: as run_standalone_pretrain.sh (DEVICE_TARGET, DATA_FORMAT, VOCAB_FILE, CONFIG, SAVE_DIR, EVAL_DATA,
# EXTRA_ARGS), plus EPOCH_SIZE (1), WORKER_NUM, MASTER_ADDR, MASTER_PORT, LOG_DIR (./ms_log/pretrain_distributed).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: bash $0 DATA_DIR [RANK_TABLE_FILE]" >&2; exit 2; }
DATA_DIR=$(realpath "$1")
RANK_TABLE=${2:-msrun}
[ "$RANK_TABLE" = msrun ] || RANK_TABLE=$(realpath "$RANK_TABLE")
LOG_DIR=$(realpath -m "${LOG_DIR:-$REPO_ROOT/ms_log/pretrain_distributed}")
mkdir -p "$LOG_DIR"
cd "$REPO_ROOT"
args=(--epoch_size "${EPOCH_SIZE:-1}" --data_dir "$DATA_DIR" --data_format "${DATA_FORMAT:-mindrecord}"
      --vocab_file "${VOCAB_FILE:-$REPO_ROOT/pretrain_models/converted/vocab.txt}" --config "${CONFIG:-base}"
      --output_dir "${SAVE_DIR:-$REPO_ROOT/save_models/pretrain}" --distribute true)
[ -n "${EVAL_DATA:-}" ] && args+=(--eval_data "$EVAL_DATA")
# shellcheck disable=SC2206
args+=(${EXTRA_ARGS:-})

launch_data_parallel "$RANK_TABLE" "$LOG_DIR" run_ernie_pretrain.py "${args[@]}"
