#!/bin/sh
# Convert a task's raw files (ERNIE task_data layout) to MindRecord: OUTPUT_DIR/TASK_{train,dev,test}.mindrecord.
# Usage: sh scripts/convert_finetune_datasets.sh DATA_DIR OUTPUT_DIR TASK
# Environment:
#   VOCAB_FILE   vocab.txt (default ./pretrain_models/converted/vocab.txt)
#   MAX_SEQ_LEN  default: the task's (src/tasks/registry.py)
#   SHARD_NUM    MindRecord shards per split (default 1)
#   MAX_QUERY_LEN, DOC_STRIDE  MRC windows (default 64 and 128)
#   DRY_RUN=1    print the commands instead of running them
# MRC tasks (drcd, cmrc): the fine-tuning scripts read the dev/test JSON under DATA_DIR beside the MindRecord for
# the answer texts. Relative paths are taken from the folder you call the script from.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
[ $# -eq 3 ] || usage_error "DATA_DIR OUTPUT_DIR TASK"
DATA_DIR=$(abs_path "$1")
OUTPUT_DIR=$(abs_path "$2")
TASK=$3
load_task_facts "$TASK"
VOCAB=$(abs_path "${VOCAB_FILE:-$REPO_ROOT/pretrain_models/converted/vocab.txt}")
[ -f "$VOCAB" ] || [ "${DRY_RUN:-0}" = 1 ] || die "vocabulary $VOCAB not found: set VOCAB_FILE"
if [ "${DRY_RUN:-0}" != 1 ]; then mkdir -p "$OUTPUT_DIR"; fi
cd "$REPO_ROOT"
for item in $TASK_FILES; do
  split=${item%%:*}
  file=$DATA_DIR/$TASK_FOLDER/${item#*:}
  if [ ! -f "$file" ]; then echo "skipping $split: $file not found" >&2; continue; fi
  set -- -m src.finetune_task_reader --task_type "$TASK" --vocab_path "$VOCAB"
  label_map=$DATA_DIR/$TASK_FOLDER/label_map.json
  if [ -f "$label_map" ]; then set -- "$@" --label_map_config "$label_map"; fi
  is_training=false
  if [ "$split" = train ]; then is_training=true; fi
  set -- "$@" --max_seq_len "${MAX_SEQ_LEN:-$TASK_MAX_SEQ_LEN}" --max_query_len "${MAX_QUERY_LEN:-64}" \
    --doc_stride "${DOC_STRIDE:-128}" --is_training "$is_training" --shard_num "${SHARD_NUM:-1}" \
    --input_file "$file" --output_file "$OUTPUT_DIR/${TASK}_${split}.mindrecord"
  dry_run python "$@" || python "$@"
done
