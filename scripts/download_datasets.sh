#!/bin/sh
# Download the public data (needs network): ERNIE's fine-tuning task data (task_data_zh.tgz: chnsenticorp, xnli,
# msra_ner, nlpcc-dbqa, drcd, cmrc2018 in the layout the task scripts read) or the Chinese Wikipedia dump for
# pre-training.
# Usage: sh scripts/download_datasets.sh finetune|pretrain [DATA_DIR]   (default ./data)
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
{ [ $# -ge 1 ] && [ $# -le 2 ]; } || usage_error "finetune|pretrain [DATA_DIR]"
DATA_DIR=$(abs_path "${2:-$REPO_ROOT/data}")
case "$1" in
  finetune)
    mkdir -p "$DATA_DIR"
    fetch https://ernie.bj.bcebos.com/task_data_zh.tgz "$DATA_DIR/task_data_zh.tgz"
    tar -xzf "$DATA_DIR/task_data_zh.tgz" -C "$DATA_DIR" --strip-components=1
    echo "task data in $DATA_DIR: run e.g. DATA_DIR=$DATA_DIR sh scripts/run_standalone_finetune.sh chnsenticorp" ;;
  pretrain)
    mkdir -p "$DATA_DIR"
    fetch https://dumps.wikimedia.org/zhwiki/latest/zhwiki-latest-pages-articles.xml.bz2 \
      "$DATA_DIR/zhwiki-latest-pages-articles.xml.bz2"
    echo "extract plain text with: python -m wikiextractor.WikiExtractor -o $DATA_DIR/extracted" \
         "$DATA_DIR/zhwiki-latest-pages-articles.xml.bz2 (pip install wikiextractor), then see" \
         "scripts/convert_pretrain_datasets.sh" ;;
  *) echo "error: unknown dataset '$1': finetune or pretrain" >&2; exit 2 ;;
esac
