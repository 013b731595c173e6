#!/bin/sh
# The seed's name for run_standalone_pretrain.sh: same arguments, environment and behaviour (it runs that script;
# DEVICE_TARGET auto picks Ascend with MindSpore's Ascend package).
# Usage: sh scripts/run_standalone_pretrain_ascend.sh DEVICE_ID EPOCH_SIZE DATA_DIR   (-h: the full help)
exec sh "$(dirname -- "$0")/run_standalone_pretrain.sh" "$@"
