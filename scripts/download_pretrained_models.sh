#!/bin/sh
# Download the public ERNIE 1.0 (Chinese, base) weights. Needs network access.
#
# Usage: sh scripts/download_pretrained_models.sh [static|pdparams|all]      (default: static)
#
#   static    Baidu's original Paddle release ERNIE_stable-1.0.1.tar.gz (params/, ernie_config.json, vocab.txt),
#             unpacked into pretrain_models/ernie/  -> migrate with scripts/migrate_pretrained_models.sh
#   pdparams  PaddleNLP's ernie_v1_chn_base.pdparams, saved as pretrain_models/ernie_paddlenlp/model_state.pdparams
#             -> convert with --format pdparams --config pretrain_models/ernie/ernie_config.json
#
# PRETRAIN_DIR (default: <repo>/pretrain_models) changes the target folder. Targets already present are kept.
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
[ $# -le 1 ] || usage_error "[static|pdparams|all]"
PRETRAIN_DIR=$(abs_path "${PRETRAIN_DIR:-$REPO_ROOT/pretrain_models}")
STATIC_URL="https://baidu-nlp.bj.bcebos.com/ERNIE_stable-1.0.1.tar.gz"
PDPARAMS_URL="https://bj.bcebos.com/paddlenlp/models/transformers/ernie/ernie_v1_chn_base.pdparams"

download_static() {
  target=$PRETRAIN_DIR/ernie
  if [ -d "$target/params" ]; then
    echo "$target/params already exists, skipping the download"
    return 0
  fi
  mkdir -p "$target"
  archive=$target/ERNIE_stable-1.0.1.tar.gz
  fetch "$STATIC_URL" "$archive" || return 1
  tar -xzf "$archive" -C "$target" || { echo "error: $archive is not a valid .tar.gz (incomplete download?)" >&2; return 1; }
  rm -f "$archive"
  if [ ! -d "$target/params" ]; then
    echo "error: the archive did not contain params/ at its top level; look inside $target" >&2
    return 1
  fi
  echo "ERNIE 1.0 release unpacked into $target ($(ls "$target/params" | wc -l) parameter files)"
}

download_pdparams() {
  target=$PRETRAIN_DIR/ernie_paddlenlp/model_state.pdparams
  if [ -f "$target" ]; then
    echo "$target already exists, skipping the download"
    return 0
  fi
  mkdir -p "$(dirname -- "$target")"
  fetch "$PDPARAMS_URL" "$target" || return 1
  echo "PaddleNLP weights saved as $target"
}

case "${1:-static}" in
  static) download_static ;;
  pdparams) download_pdparams ;;
  all) download_static; download_pdparams ;;
  *) echo "error: unknown choice '$1' (use static, pdparams or all)" >&2; exit 2 ;;
esac
