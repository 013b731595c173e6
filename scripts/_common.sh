# Shared by the scripts in this folder, which are POSIX sh (they run under sh = dash and under bash, from any
# folder). A script sets SCRIPT_DIR and sources this file, which sets REPO_ROOT and defines the helpers below.
# DRY_RUN=1 makes every script print the commands it would run ("dry run: ..." lines, shell-quoted) instead of
# running them.
# shellcheck disable=SC2034  # the variables set here are read by the scripts that source this file
REPO_ROOT=$(CDPATH='' cd -- "$SCRIPT_DIR/.." && pwd)

# show_help ARGS...: with -h or --help as the first argument, print the script's header comment and exit 0.
show_help() {
  case "${1:-}" in
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
  esac
}

# die MESSAGE: print "error: MESSAGE" and exit 1.
die() {
  echo "error: $*" >&2
  exit 1
}

# usage_error USAGE: a wrong argument count; prints the usage line and exits 2.
usage_error() {
  echo "usage: sh $0 $1   (-h: help)" >&2
  exit 2
}

# abs_path PATH: PATH made absolute against the folder the script was called from (the scripts cd to REPO_ROOT).
abs_path() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

# quote_args ARGS...: the arguments as one line of shell words, each single-quoted.
quote_args() {
  qa_line=""
  for qa_arg in "$@"; do
    qa_line="$qa_line${qa_line:+ }'$(printf '%s' "$qa_arg" | sed "s/'/'\\\\''/g")'"
  done
  printf '%s\n' "$qa_line"
}

# dry_run CMD...: under DRY_RUN=1 print the command and succeed; otherwise fail (so: dry_run CMD || CMD).
dry_run() {
  [ "${DRY_RUN:-0}" = 1 ] || return 1
  echo "dry run: $(quote_args "$@")"
}

# run_logged LOG CMD...: run CMD with its output on the console and in LOG; returns CMD's exit status (what
# bash's pipefail gives, which sh lacks).
run_logged() {
  rl_log=$1
  shift
  dry_run "$@" && return 0
  rl_status_file=$(mktemp)
  { rl_rc=0; "$@" 2>&1 || rl_rc=$?; echo "$rl_rc" > "$rl_status_file"; } | tee "$rl_log"
  rl_rc=$(cat "$rl_status_file")
  rm -f "$rl_status_file"
  return "$rl_rc"
}

# repo_python ARGS...: python (or $PYTHON) run from the repository root (so `src` imports).
repo_python() {
  (CDPATH='' cd -- "$REPO_ROOT" && "${PYTHON:-python}" "$@")
}

# load_task_facts TASK: sets TASK_ENTRY (run_ernie_*.py), TASK_KIND, TASK_FOLDER (under DATA_DIR), TASK_MAX_SEQ_LEN
# and TASK_FILES ("split:file ..."), all from src/tasks/registry.py; an unknown task stops the script with one error line.
load_task_facts() {
  ltf_facts=$(repo_python -c 'import shlex, sys
from src.tasks.registry import TASKS, entry_script
try:
    entry = entry_script(sys.argv[1])
except ValueError as err:
    sys.exit(f"error: {err}")
spec = TASKS[sys.argv[1]]
files = " ".join(f"{split}:{name}" for split, name in spec.files.items())
for key, value in (("TASK_ENTRY", entry), ("TASK_KIND", spec.kind), ("TASK_FOLDER", spec.data_dir),
                   ("TASK_MAX_SEQ_LEN", spec.max_seq_len), ("TASK_FILES", files)):
    print(f"{key}={shlex.quote(str(value))}")' "$1") || exit 2
  eval "$ltf_facts"
}

# task_file SPLIT: the file name of SPLIT for the loaded task (empty when the task has no such split).
task_file() {
  for tf_item in $TASK_FILES; do
    case "$tf_item" in "$1":*) printf '%s\n' "${tf_item#*:}"; return 0 ;; esac
  done
}

# has_extra_flag FLAG: whether EXTRA_ARGS sets FLAG (as "FLAG value" or "FLAG=value").
has_extra_flag() {
  case " ${EXTRA_ARGS:-} " in
    *" $1 "*|*" $1="*) return 0 ;;
  esac
  return 1
}

# fetch URL FILE: download to FILE.part with wget or curl, rename when complete; a FILE already present is kept.
fetch() {
  if [ -f "$2" ]; then echo "$2 already present, skipping the download"; return 0; fi
  echo "downloading $1"
  if command -v wget >/dev/null 2>&1; then
    wget --tries=3 -q --show-progress -O "$2.part" "$1" && mv "$2.part" "$2" && return 0
  elif command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$2.part" "$1" && mv "$2.part" "$2" && return 0
  else
    echo "error: neither wget nor curl is installed" >&2
    return 1
  fi
  rm -f "$2.part"
  echo "error: download of $1 failed: check the network (this machine may be offline)" >&2
  return 1
}

# resolve_pretrained: sets PRETRAINED_CKPT (the migrated weights, or empty) and PRETRAINED_VOCAB (or empty when
# EXTRA_ARGS names the vocabulary), or stops with what is missing and the command that provides it. Without weights
# a run needs an explicit model size (--config in EXTRA_ARGS): a silent random base-size model would take days on a
# CPU and learn little.
resolve_pretrained() {
  rp_dir=$(abs_path "${PRETRAINED_DIR:-$REPO_ROOT/pretrain_models/converted}")
  PRETRAINED_CKPT=""
  if has_extra_flag --load_pretrain_checkpoint_path; then
    :
  elif [ -f "$rp_dir/ernie.ckpt" ]; then
    PRETRAINED_CKPT=$rp_dir/ernie.ckpt
  elif has_extra_flag --config; then
    echo "warning: $rp_dir/ernie.ckpt not found; training starts from random weights (the model size comes" \
         "from --config in EXTRA_ARGS)" >&2
  else
    die "no pre-trained weights: $rp_dir/ernie.ckpt not found. Get them with 'sh scripts/download_pretrained_models.sh && sh scripts/migrate_pretrained_models.sh' (or set PRETRAINED_DIR to a folder holding ernie.ckpt and vocab.txt); or train from random weights by naming the model size and vocabulary: EXTRA_ARGS=\"--config tiny\" (or base, or an ernie_config.json) VOCAB_FILE=path/to/vocab.txt"
  fi
  PRETRAINED_VOCAB=""
  if ! has_extra_flag --vocab_file_path; then
    PRETRAINED_VOCAB=$(abs_path "${VOCAB_FILE:-$rp_dir/vocab.txt}")
    [ -f "$PRETRAINED_VOCAB" ] || die "vocabulary $PRETRAINED_VOCAB not found: set VOCAB_FILE to a vocab.txt, or migrate the pre-trained model ('sh scripts/download_pretrained_models.sh && sh scripts/migrate_pretrained_models.sh'), which writes one beside ernie.ckpt"
  fi
  return 0
}

# resolve_finetune_data SPLIT: the data of a fine-tuning task (after load_task_facts) evaluated on SPLIT. Sets
# DATA_DIR (absolute), and with DATASET_FORMAT=mindrecord MR_TRAIN and MR_EVAL (MINDRECORD_DIR/TASK_SPLIT.mindrecord)
# and, for MRC tasks, EVAL_JSON: the SQuAD JSON the eval MindRecord was made from (its answer texts are not in it).
resolve_finetune_data() {
  DATA_DIR=$(abs_path "${DATA_DIR:-$REPO_ROOT/data}")
  MR_TRAIN="" MR_EVAL="" EVAL_JSON=""
  case "${DATASET_FORMAT:-raw}" in
    raw) return 0 ;;
    mindrecord) ;;
    *) die "DATASET_FORMAT must be raw or mindrecord, got '$DATASET_FORMAT'" ;;
  esac
  rfd_dir=$(abs_path "${MINDRECORD_DIR:-$REPO_ROOT/data/mindrecord}")
  MR_TRAIN=$rfd_dir/${TASK}_train.mindrecord
  MR_EVAL=$rfd_dir/${TASK}_$1.mindrecord
  if [ "$TASK_KIND" = mrc ]; then
    EVAL_JSON=$(abs_path "${EVAL_JSON_PATH:-$DATA_DIR/$TASK_FOLDER/$(task_file "$1")}")
    [ -f "$EVAL_JSON" ] || [ "${DRY_RUN:-0}" = 1 ] || die "$TASK evaluation from MindRecord needs the $1 JSON that $MR_EVAL was made from (for the answer texts): $EVAL_JSON not found; set DATA_DIR or EVAL_JSON_PATH"
  fi
  return 0
}

# check_pretrain_inputs: before a pre-training run, the data (DATA_DIR) and vocabulary (VOCAB_FILE, unless EXTRA_ARGS
# names one) exist; sets CONFIG (default base, or a config file made absolute).
check_pretrain_inputs() {
  [ -e "$DATA_DIR" ] || die "pre-training data $DATA_DIR not found (make it with scripts/convert_pretrain_datasets.sh)"
  if ! has_extra_flag --vocab_file && [ ! -f "$VOCAB_FILE" ]; then
    die "vocabulary $VOCAB_FILE not found: set VOCAB_FILE, or migrate the pre-trained model ('sh scripts/download_pretrained_models.sh && sh scripts/migrate_pretrained_models.sh'), or build one: python -m src.tokenizer build-vocab --input corpus.txt --output vocab.txt"
  fi
  CONFIG=${CONFIG:-base}
  case "$CONFIG" in
    base|tiny) ;;
    *) if [ -e "$CONFIG" ]; then CONFIG=$(abs_path "$CONFIG"); fi ;;
  esac
  return 0
}

# check_finetune_files SPLIT...: before starting, the data files of these splits exist (raw files under DATA_DIR, or
# the MindRecord files), unless EXTRA_ARGS names the files itself.
check_finetune_files() {
  [ "${DRY_RUN:-0}" = 1 ] && return 0
  for cff_split in "$@"; do
    if [ "$cff_split" = train ]; then cff_flag=--train_data_file_path; else cff_flag=--eval_data_file_path; fi
    has_extra_flag "$cff_flag" && continue
    if [ -n "$MR_EVAL" ]; then
      cff_file=$MR_EVAL
      [ "$cff_split" = train ] && cff_file=$MR_TRAIN
      [ -f "$cff_file" ] || die "$cff_file not found: write it with 'sh scripts/convert_finetune_datasets.sh DATA_DIR $(dirname -- "$cff_file") $TASK', or set MINDRECORD_DIR"
    else
      cff_file=$DATA_DIR/$TASK_FOLDER/$(task_file "$cff_split")
      [ -f "$cff_file" ] || die "$TASK $cff_split data $cff_file not found: set DATA_DIR to a folder in ERNIE's task_data layout ('sh scripts/download_datasets.sh finetune' writes ./data)"
    fi
  done
  return 0
}
