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

# fetch URL FILE: download to FILE.part with wget or curl, rename when complete; a FILE already present is kept.
fetch() {
  local url=$1 file=$2
  [ -f "$file" ] && { echo "$file already present, skipping the download"; return 0; }
  echo "downloading $url"
  if command -v wget >/dev/null 2>&1; then
    wget --tries=3 -q --show-progress -O "$file.part" "$url" && mv "$file.part" "$file" && return 0
  elif command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$file.part" "$url" && mv "$file.part" "$file" && return 0
  else
    echo "error: neither wget nor curl is installed" >&2
    return 1
  fi
  rm -f "$file.part"
  echo "error: download of $url failed: check the network (this machine may be offline)" >&2
  return 1
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

# Runs SCRIPT ARGS... data-parallel. On Ascend with an HCCL rank table (RANK_TABLE not "msrun"): one process per
# device this server has in the table, with RANK_ID, DEVICE_ID and RANK_SIZE set from it (logs LOG_DIR/rank_N.log).
# Otherwise MindSpore's launcher msrun starts WORKER_NUM (default 2) local workers (logs LOG_DIR/worker_N.log); msrun
# starts them with the `python` on PATH, so activate the virtual environment first.
launch_data_parallel() {
  local rank_table=$1 log_dir=$2 script=$3
  shift 3
  if [ "$rank_table" != msrun ] && [ "${DEVICE_TARGET:-Ascend}" = Ascend ]; then
    export RANK_TABLE_FILE=$rank_table
    local table
    table=$(python - "$RANK_TABLE_FILE" "${SERVER_ID:-}" <<'PY'
import json, sys
path, server_id = sys.argv[1], sys.argv[2]
servers = json.load(open(path, encoding="utf-8"))["server_list"]
if len(servers) > 1 and not server_id:
    sys.exit(f"{path} lists {len(servers)} servers: set SERVER_ID to this one's server_id")
devices = [(d["rank_id"], d["device_id"]) for s in servers if not server_id or s["server_id"] == server_id
           for d in s["device"]]
if not devices:
    sys.exit(f"{path}: no devices for server_id {server_id!r}")
print("\n".join(f"{rank} {device}" for rank, device in devices))
PY
    )
    local devices pids=() status=0 entry rank device pid
    mapfile -t devices <<< "$table"
    export RANK_SIZE=${#devices[@]}
    for entry in "${devices[@]}"; do
      read -r rank device <<< "$entry"
      RANK_ID=$rank DEVICE_ID=$device python "$script" --device_target Ascend --device_id "$device" "$@" \
        > "$log_dir/rank_$rank.log" 2>&1 &
      pids+=($!)
    done
    echo "started $RANK_SIZE processes; logs in $log_dir/rank_N.log"
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    return $status
  fi
  local workers=${WORKER_NUM:-2}
  msrun --worker_num="$workers" --local_worker_num="$workers" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${MASTER_PORT:-8118}" --log_dir="$log_dir" --join=True \
    --cluster_time_out="${CLUSTER_TIME_OUT:-600}" "$script" --device_target "${DEVICE_TARGET:-auto}" "$@"
}
