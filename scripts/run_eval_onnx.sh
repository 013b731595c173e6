#!/bin/sh
# Score an exported ONNX model (fp32 or int8) with onnxruntime on labelled data, printing the fine-tuning metrics.
# Usage: sh scripts/run_eval_onnx.sh ONNX_FILE DATA_FILE [NUM_THREADS]
#   DATA_FILE  TSV (classification, msra_ner) or SQuAD JSON (drcd, cmrc), read as the fine-tuning scripts read it
# Environment: DRY_RUN=1 prints the command instead of running it.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
{ [ $# -ge 2 ] && [ $# -le 3 ]; } || usage_error "ONNX_FILE DATA_FILE [NUM_THREADS]"
set -- "$REPO_ROOT/predict.py" --model "$1" --eval_data_file_path "$2" ${3:+--num_threads} ${3:+"$3"}
dry_run python "$@" || python "$@"
