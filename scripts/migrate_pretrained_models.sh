#!/bin/sh
# Convert downloaded ERNIE 1.0 weights into a MindSpore checkpoint (no PaddlePaddle or torch needed).
#
# Usage: sh scripts/migrate_pretrained_models.sh [INPUT] [OUTPUT_CKPT] [FORMAT] [CONFIG]
#
# Defaults (also settable as ERNIE_INPUT, ERNIE_OUTPUT, ERNIE_FORMAT, ERNIE_CONFIG; relative defaults are under the
# repository):
#   INPUT        pretrain_models/ernie                 (the unpacked release, see download_pretrained_models.sh)
#   OUTPUT_CKPT  pretrain_models/converted/ernie.ckpt  (ernie_config.json and vocab.txt are written beside it)
#   FORMAT       paddle_static                         (or pdparams, hf)
#   CONFIG       the model config JSON (default: the ernie_config.json / config.json beside the input)
# Paths given as arguments are relative to the directory you call the script from. PYTHON: the interpreter (default
# python on PATH). DRY_RUN=1 prints the command.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
[ $# -le 4 ] || usage_error "[INPUT] [OUTPUT_CKPT] [FORMAT] [CONFIG]"
INPUT=${1:-${ERNIE_INPUT:-}}
OUTPUT=${2:-${ERNIE_OUTPUT:-}}
FORMAT=${3:-${ERNIE_FORMAT:-paddle_static}}
CONFIG=${4:-${ERNIE_CONFIG:-}}
if [ -n "$INPUT" ]; then INPUT=$(abs_path "$INPUT"); else INPUT=$REPO_ROOT/pretrain_models/ernie; fi
if [ -n "$OUTPUT" ]; then OUTPUT=$(abs_path "$OUTPUT"); else OUTPUT=$REPO_ROOT/pretrain_models/converted/ernie.ckpt; fi
if [ -n "$CONFIG" ]; then CONFIG=$(abs_path "$CONFIG"); fi
DOWNLOAD_HINT="run 'sh scripts/download_pretrained_models.sh' (needs network) or pass the input path as the first argument"

[ -e "$INPUT" ] || die "$INPUT not found: nothing was downloaded there; $DOWNLOAD_HINT"
if [ -d "$INPUT" ] && [ -z "$(ls -A "$INPUT")" ]; then
  die "$INPUT is empty: the download failed or did not run; $DOWNLOAD_HINT"
fi
if [ "$FORMAT" = paddle_static ] && [ -d "$INPUT" ] && [ ! -d "$INPUT/params" ]; then
  # without params/, the converter takes INPUT itself as the folder of parameter files
  for partial in "$INPUT"/*.part "$INPUT"/*.tar.gz; do
    [ -e "$partial" ] && die "$INPUT holds an incomplete download ($(basename -- "$partial")) and no params/ folder; delete it and $DOWNLOAD_HINT"
  done
  if [ -z "$CONFIG" ] && [ ! -f "$(dirname -- "$INPUT")/ernie_config.json" ]; then
    die "$INPUT has no params/ folder (looked for $INPUT/params): the download failed or unpacked elsewhere; $DOWNLOAD_HINT, or pass the folder holding params/ and ernie_config.json, or pass CONFIG (4th argument or ERNIE_CONFIG)"
  fi
fi
if [ "$FORMAT" = paddle_static ] && [ -d "$INPUT/params" ] && [ -z "$CONFIG" ] && [ ! -f "$INPUT/ernie_config.json" ]; then
  die "no ernie_config.json in $INPUT (the release folder): pass the model config as CONFIG (4th argument or ERNIE_CONFIG), e.g. ernie_config.json of ERNIE 1.0"
fi

set -- -m src.convert_checkpoint --format "$FORMAT" --input "$INPUT" --output "$OUTPUT"
if [ -n "$CONFIG" ]; then set -- "$@" --config "$CONFIG"; fi
dry_run python "$@" && exit 0
repo_python "$@"
echo "converted $INPUT ($FORMAT) -> $OUTPUT"
