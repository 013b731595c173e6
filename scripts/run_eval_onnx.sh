#!/bin/bash
# Score an exported ONNX model (fp32 or int8) with onnxruntime on labelled data, printing the fine-tuning metrics.
# Usage: bash scripts/run_eval_onnx.sh ONNX_FILE DATA_FILE [NUM_THREADS]
#   DATA_FILE  TSV (classification, msra_ner) or SQuAD JSON (drcd, cmrc), read as the fine-tuning scripts read it
set -euo pipefail
source "$(dirname "$0")/_common.sh"
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: bash $0 ONNX_FILE DATA_FILE [NUM_THREADS]" >&2
  exit 2
fi
python "$REPO_ROOT/predict.py" --model "$1" --eval_data_file_path "$2" ${3:+--num_threads "$3"}
