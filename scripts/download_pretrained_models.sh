#!/usr/bin/env bash
# Download the public ERNIE 1.0 (Chinese, base) weights. Needs network access.
#
#   bash scripts/download_pretrained_models.sh [static|pdparams|all]      (default: static)
#
#   static    Baidu's original Paddle release ERNIE_stable-1.0.1.tar.gz (params/, ernie_config.json, vocab.txt),
#             unpacked into pretrain_models/ernie/  -> migrate with scripts/migrate_pretrained_models.sh
#   pdparams  PaddleNLP's ernie_v1_chn_base.pdparams, saved as pretrain_models/ernie_paddlenlp/model_state.pdparams
#             -> convert with --format pdparams --config pretrain_models/ernie/ernie_config.json
#
# PRETRAIN_DIR (default: <repo>/pretrain_models) changes the target folder. Targets already present are kept.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
cd "$REPO_ROOT"

STATIC_URL="https://baidu-nlp.bj.bcebos.com/ERNIE_stable-1.0.1.tar.gz"
PDPARAMS_URL="https://bj.bcebos.com/paddlenlp/models/transformers/ernie/ernie_v1_chn_base.pdparams"
PRETRAIN_DIR="${PRETRAIN_DIR:-pretrain_models}"
WHAT="${1:-static}"

download_static() {
    local target="$PRETRAIN_DIR/ernie"
    if [ -d "$target/params" ]; then
        echo "$target/params already exists, skipping the download"
        return 0
    fi
    mkdir -p "$target"
    local archive="$target/ERNIE_stable-1.0.1.tar.gz"
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
    local target="$PRETRAIN_DIR/ernie_paddlenlp/model_state.pdparams"
    if [ -f "$target" ]; then
        echo "$target already exists, skipping the download"
        return 0
    fi
    mkdir -p "$(dirname "$target")"
    fetch "$PDPARAMS_URL" "$target" || return 1
    echo "PaddleNLP weights saved as $target"
}

case "$WHAT" in
    static) download_static ;;
    pdparams) download_pdparams ;;
    all) download_static; download_pdparams ;;
    *) echo "error: unknown choice '$WHAT' (use static, pdparams or all)" >&2; exit 2 ;;
esac
