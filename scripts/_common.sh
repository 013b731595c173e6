# Shared by the scripts in this folder: the repository root, and the entry script of a fine-tuning task.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

entry_script() {
  case "$1" in
    chnsenticorp|xnli|dbqa) echo "run_ernie_classifier.py" ;;
    msra_ner) echo "run_ernie_ner.py" ;;
    drcd|cmrc) echo "run_ernie_mrc.py" ;;
    *) echo "unknown task '$1': choose msra_ner, chnsenticorp, xnli, dbqa, drcd or cmrc" >&2; return 1 ;;
  esac
}

# Flags that point a task script at the migrated pre-trained model, when it exists.
pretrained_args() {
  local dir="${PRETRAINED_DIR:-$REPO_ROOT/pretrain_models/converted}"
  if [ -f "$dir/ernie.ckpt" ]; then
    echo "--load_pretrain_checkpoint_path $dir/ernie.ckpt --vocab_file_path $dir/vocab.txt"
  else
    echo "warning: $dir/ernie.ckpt not found (run scripts/download_pretrained_models.sh and" \
         "scripts/migrate_pretrained_models.sh); training starts from random weights" >&2
    echo "--vocab_file_path ${VOCAB_FILE:-$dir/vocab.txt}"
  fi
}
