#!/bin/sh
# The seed's name for run_distributed_pretrain.sh: same arguments, environment and behaviour (it runs that script).
# Usage: sh scripts/run_distributed_pretrain_ascend.sh DATA_DIR RANK_TABLE_FILE   (-h: the full help)
exec sh "$(dirname -- "$0")/run_distributed_pretrain.sh" "$@"
