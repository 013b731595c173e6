#!/usr/bin/env bash
# Write pre-training data (knowledge masking, next-sentence pairs) as MindRecord.
# Usage: bash scripts/convert_pretrain_datasets.sh DATASET_PATH OUTPUT_PATH
#   DATASET_PATH: a file or a directory (read recursively) of ERNIE samples (demo_train_set.gz) or raw text.
#   Writes OUTPUT_PATH/pretrain_data.mindrecord (with SHARD_NUM > 1: pretrain_data.mindrecord0, 1, ...).
# Environment: DATA_FORMAT (ernie | text | tagged, default ernie), VOCAB_FILE (default
# ./pretrain_models/converted/vocab.txt), MAX_SEQ_LEN (128), MASKING (char | word | phrase | entity | ernie, default
# ernie), DUPE_FACTOR (1), SHARD_NUM (1), SEED (1), EXTRA_ARGS (more flags of python -m src.pretraining_reader).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -eq 2 ] || { echo "usage: bash $0 DATASET_PATH OUTPUT_PATH" >&2; exit 2; }
DATASET_PATH=$(realpath "$1")
OUTPUT_PATH=$(realpath -m "$2")
mkdir -p "$OUTPUT_PATH"
cd "$REPO_ROOT"
# shellcheck disable=SC2086
python -m src.pretraining_reader --input_file "$DATASET_PATH" --output_file "$OUTPUT_PATH/pretrain_data.mindrecord" \
  --data_format "${DATA_FORMAT:-ernie}" --vocab_file "${VOCAB_FILE:-$REPO_ROOT/pretrain_models/converted/vocab.txt}" \
  --max_seq_len "${MAX_SEQ_LEN:-128}" --masking "${MASKING:-ernie}" --dupe_factor "${DUPE_FACTOR:-1}" \
  --shard_num "${SHARD_NUM:-1}" --random_seed "${SEED:-1}" ${EXTRA_ARGS:-}
