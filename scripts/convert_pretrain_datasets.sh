#!/bin/sh
# Write pre-training data (knowledge masking, next-sentence pairs) as MindRecord.
# Usage: sh scripts/convert_pretrain_datasets.sh DATASET_PATH OUTPUT_PATH
#   DATASET_PATH: a file or a directory (read recursively) of ERNIE samples (demo_train_set.gz) or raw text.
#   Writes OUTPUT_PATH/pretrain_data.mindrecord (with SHARD_NUM > 1: pretrain_data.mindrecord0, 1, ...).
# Environment:
#   DATA_FORMAT  ernie (default), text or tagged
#   VOCAB_FILE   vocab.txt (default ./pretrain_models/converted/vocab.txt)
#   MAX_SEQ_LEN (128), MASKING (char | word | phrase | entity | ernie, default ernie), DUPE_FACTOR (1),
#   SHARD_NUM (1), SEED (1)
#   EXTRA_ARGS   more flags of python -m src.pretraining_reader
#   DRY_RUN=1    print the command instead of running it
# Relative paths are taken from the folder you call the script from.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
[ $# -eq 2 ] || usage_error "DATASET_PATH OUTPUT_PATH"
DATASET_PATH=$(abs_path "$1")
OUTPUT_PATH=$(abs_path "$2")
[ -e "$DATASET_PATH" ] || die "$DATASET_PATH not found"
set -- -m src.pretraining_reader --input_file "$DATASET_PATH" --output_file "$OUTPUT_PATH/pretrain_data.mindrecord" \
  --data_format "${DATA_FORMAT:-ernie}" \
  --vocab_file "$(abs_path "${VOCAB_FILE:-$REPO_ROOT/pretrain_models/converted/vocab.txt}")" \
  --max_seq_len "${MAX_SEQ_LEN:-128}" --masking "${MASKING:-ernie}" --dupe_factor "${DUPE_FACTOR:-1}" \
  --shard_num "${SHARD_NUM:-1}" --random_seed "${SEED:-1}"
set -f  # EXTRA_ARGS is a list of flags split on blanks, never glob-expanded
# shellcheck disable=SC2086
set -- "$@" ${EXTRA_ARGS:-}
set +f
if [ "${DRY_RUN:-0}" != 1 ]; then mkdir -p "$OUTPUT_PATH"; fi
cd "$REPO_ROOT"
dry_run python "$@" || python "$@"
