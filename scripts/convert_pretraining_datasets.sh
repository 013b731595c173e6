#!/bin/sh
# The seed's name for convert_pretrain_datasets.sh: same arguments, environment and behaviour (it runs that script).
# Usage: sh scripts/convert_pretraining_datasets.sh DATASET_PATH OUTPUT_PATH   (-h: the full help)
exec sh "$(dirname -- "$0")/convert_pretrain_datasets.sh" "$@"
