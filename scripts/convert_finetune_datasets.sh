#!/usr/bin/env bash
# Convert a task's raw files (ERNIE task_data layout) to MindRecord: OUTPUT_DIR/TASK_{train,dev,test}.mindrecord.
# Usage: bash scripts/convert_finetune_datasets.sh DATA_DIR OUTPUT_DIR TASK
# Environment: VOCAB_FILE (default ./pretrain_models/converted/vocab.txt), MAX_SEQ_LEN (default: the task's),
# SHARD_NUM (default 1). MRC windows use MAX_QUERY_LEN 64 and DOC_STRIDE 128 unless set.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
[ $# -eq 3 ] || { echo "usage: bash $0 DATA_DIR OUTPUT_DIR TASK" >&2; exit 2; }
DATA_DIR=$1 OUTPUT_DIR=$2 TASK=$3
entry_script "$TASK" > /dev/null
cd "$REPO_ROOT"
read -r FOLDER MAX_LEN SPLITS < <(python -c "
from src.tasks import TASKS; s = TASKS['$TASK']
print(s.data_dir, s.max_seq_len, ','.join(f'{k}:{v}' for k, v in s.files.items()))")
mkdir -p "$OUTPUT_DIR"
for item in ${SPLITS//,/ }; do
  split=${item%%:*} file=$DATA_DIR/$FOLDER/${item#*:}
  if [ ! -f "$file" ]; then echo "skipping $split: $file not found" >&2; continue; fi
  label_map=()
  [ -f "$DATA_DIR/$FOLDER/label_map.json" ] && label_map=(--label_map_config "$DATA_DIR/$FOLDER/label_map.json")
  python -m src.finetune_task_reader --task_type "$TASK" --vocab_path "${VOCAB_FILE:-pretrain_models/converted/vocab.txt}" \
    "${label_map[@]}" --max_seq_len "${MAX_SEQ_LEN:-$MAX_LEN}" --max_query_len "${MAX_QUERY_LEN:-64}" \
    --doc_stride "${DOC_STRIDE:-128}" --is_training "$([ "$split" = train ] && echo true || echo false)" \
    --shard_num "${SHARD_NUM:-1}" --input_file "$file" --output_file "$OUTPUT_DIR/${TASK}_${split}.mindrecord"
done
