#!/usr/bin/env bash
# Convert downloaded ERNIE 1.0 weights into a MindSpore checkpoint (no PaddlePaddle or torch needed).
#
#   bash scripts/migrate_pretrained_models.sh [INPUT] [OUTPUT_CKPT] [FORMAT]
#
# Defaults (also settable as ERNIE_INPUT, ERNIE_OUTPUT, ERNIE_FORMAT; relative defaults are under the repository):
#   INPUT        pretrain_models/ernie                 (the unpacked release, see download_pretrained_models.sh)
#   OUTPUT_CKPT  pretrain_models/converted/ernie.ckpt  (ernie_config.json and vocab.txt are written beside it)
#   FORMAT       paddle_static                         (or pdparams, hf)
# Paths given as arguments are relative to the directory you call the script from.
set -euo pipefail

absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

INPUT="${1:+$(absolute "$1")}"
OUTPUT="${2:+$(absolute "$2")}"
FORMAT="${3:-${ERNIE_FORMAT:-paddle_static}}"
cd "$(dirname "$0")/.."
INPUT="${INPUT:-${ERNIE_INPUT:-pretrain_models/ernie}}"
OUTPUT="${OUTPUT:-${ERNIE_OUTPUT:-pretrain_models/converted/ernie.ckpt}}"

if [ ! -e "$INPUT" ]; then
    echo "error: $INPUT not found; run scripts/download_pretrained_models.sh first or pass the input path" >&2
    exit 1
fi
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python}" -m src.convert_checkpoint \
    --format "$FORMAT" --input "$INPUT" --output "$OUTPUT"
echo "converted $INPUT ($FORMAT) -> $OUTPUT"
