#!/bin/sh
# Ascend 310 inference of an exported MindIR on a labelled dataset: preprocess.py -> ascend310_infer/out/main ->
# postprocess.py. Without an Ascend toolkit the MindIR runs on CPU in the Python stand-in (python -m src.inference),
# which reads and writes the very same files.
# Usage: sh scripts/run_infer_310.sh MINDIR_PATH LABEL_PATH DATA_FILE_PATH DATASET_FORMAT SCHEMA_PATH USE_CRF
#                                      NEED_PREPROCESS [DEVICE_ID]
#   MINDIR_PATH      export.py output (its .json sidecar beside it)
#   LABEL_PATH       label_map.json checked against the model's labels, or "" / none
#   DATA_FILE_PATH   labelled data: TSV, SQuAD JSON or MindRecord
#   DATASET_FORMAT   raw or mindrecord
#   SCHEMA_PATH      MindRecord schema JSON, or "" / none
#   USE_CRF          true or false (checked against the model)
#   NEED_PREPROCESS  y: write ./preprocess_Result; n: reuse it
#   DEVICE_ID        Ascend device, default 0
# Writes ./preprocess_Result, ./result_files, build.log, infer.log and acc.log in the current folder.
set -u
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
if [ $# -lt 7 ] || [ $# -gt 8 ]; then
  awk 'NR >= 5 && NR <= 15 { sub(/^# ?/, ""); print }' "$0" >&2
  exit 2
fi
optional() { if [ -z "$1" ] || [ "$1" = none ]; then echo ""; else abs_path "$1"; fi; }
MINDIR=$(abs_path "$1")
LABEL_PATH=$(optional "$2")
DATA_FILE=$(abs_path "$3")
DATASET_FORMAT=$4
SCHEMA_PATH=$(optional "$5")
USE_CRF=$6
NEED_PREPROCESS=$7
DEVICE_ID=${8:-0}
[ -f "$MINDIR" ] || { echo "error: $MINDIR not found" >&2; exit 1; }
case "$NEED_PREPROCESS" in y|n) ;; *) echo "error: NEED_PREPROCESS must be y or n, got '$NEED_PREPROCESS'" >&2; exit 2 ;; esac
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$NEED_PREPROCESS" = y ]; then
  python "$REPO_ROOT/preprocess.py" --model_path "$MINDIR" --eval_data_file_path "$DATA_FILE" \
    --dataset_format "$DATASET_FORMAT" --use_crf "$USE_CRF" --result_path ./preprocess_Result \
    ${LABEL_PATH:+--label_map_config "$LABEL_PATH"} ${SCHEMA_PATH:+--schema_file_path "$SCHEMA_PATH"} || exit 1
elif [ ! -f ./preprocess_Result/preprocess_meta.json ]; then
  echo "error: ./preprocess_Result is missing: run with NEED_PREPROCESS=y" >&2
  exit 1
fi

rm -rf ./result_files
set -- --input0_path=./preprocess_Result/00_data --input1_path=./preprocess_Result/01_data \
  --input2_path=./preprocess_Result/02_data --result_path=./result_files
sh "$REPO_ROOT/ascend310_infer/build.sh" > build.log 2>&1
build_status=$?
if [ $build_status -eq 0 ]; then
  "$REPO_ROOT/ascend310_infer/out/main" --mindir_path="$MINDIR" "$@" --device_id="$DEVICE_ID" \
    > infer.log 2>&1 || { cat infer.log >&2; exit 1; }
elif [ $build_status -eq 2 ]; then
  cat build.log >&2
  echo "running the MindIR on CPU with the Python stand-in instead (same input and result files)" >&2
  python -m src.inference --mindir_path "$MINDIR" "$@" > infer.log 2>&1 || { cat infer.log >&2; exit 1; }
else
  echo "error: building ascend310_infer failed (see build.log)" >&2
  exit 1
fi
tail -n 1 infer.log

python "$REPO_ROOT/postprocess.py" --preprocess_path ./preprocess_Result --result_dir ./result_files > acc.log 2>&1 \
  || { cat acc.log >&2; exit 1; }
cat acc.log
