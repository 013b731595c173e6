# Data-parallel launching for the distributed scripts (POSIX sh; sourced after _common.sh).
#
# launch_data_parallel RANK_TABLE LOG_DIR SCRIPT ARGS... runs SCRIPT ARGS... on this node of a data-parallel job:
#
# * An HCCL rank table (RANK_TABLE is a JSON file and DEVICE_TARGET is unset or Ascend): the table is checked first
#   (python -m src.rank_table: unique rank ids 0..N-1, this server present; SERVER_ID names this server and is
#   required when the table lists several), then Ascend's availability; then one process per device of this server,
#   each with RANK_TABLE_FILE, RANK_SIZE (the whole table's device count), RANK_ID and DEVICE_ID from the table.
#   Logs: LOG_DIR/rank_N.log.
# * Otherwise (RANK_TABLE "msrun", or DEVICE_TARGET GPU/CPU): MindSpore's launcher msrun starts this node's workers:
#     NODE_NUM          nodes in the job (default 1)
#     NODE_RANK         this node's index, 0..NODE_NUM-1 (default 0; node 0 also runs msrun's scheduler)
#     LOCAL_WORKER_NUM  workers on this node (default WORKER_NUM / NODE_NUM, or 2)
#     WORKER_NUM        workers in the whole job (default LOCAL_WORKER_NUM x NODE_NUM)
#     MASTER_ADDR       address of node 0, reachable from every node (default 127.0.0.1: one machine)
#     MASTER_PORT       a free port on node 0 (default 8118); CLUSTER_TIME_OUT seconds to wait for all nodes (600)
#   Logs: LOG_DIR/worker_N.log (N: the global rank) and, on node 0, LOG_DIR/scheduler.log. msrun starts workers with
#   the `python` found on PATH, so activate the virtual environment first.
# When a worker fails, its last error lines and its log path are printed.

# worker_errors LOG: print LOG's path and its last error lines (or its last lines when none looks like an error).
worker_errors() {
  echo "  $1:" >&2
  we_lines=$(tail -n 200 "$1" 2>/dev/null | grep -E 'Error|error:|Exception|Traceback|RuntimeError|\[ERROR\]' | tail -n 6)
  [ -n "$we_lines" ] || we_lines=$(tail -n 6 "$1" 2>/dev/null)
  printf '%s\n' "$we_lines" | sed 's/^/    /' >&2
}

# is_count VALUE NAME: VALUE is a non-negative integer, or the script stops naming NAME.
is_count() {
  case "$1" in
    ''|*[!0-9]*) die "$2 must be a non-negative integer, got '$1'" ;;
  esac
}

# check_rank_table RANK_TABLE: unless RANK_TABLE is "msrun" or DEVICE_TARGET is not Ascend, check the table and
# Ascend before anything else (in about a second where there is no Ascend driver) and keep the plan in RT_PLAN:
# the world size, then "RANK_ID DEVICE_ID" per local process.
check_rank_table() {
  RT_PLAN=""
  if [ "$1" = msrun ] || [ "${DEVICE_TARGET:-Ascend}" != Ascend ]; then return 0; fi
  [ -f "$1" ] || die "rank table $1 not found (pass an HCCL rank table JSON, or msrun to start workers with MindSpore's msrun)"
  crt_device_check="--require_device=Ascend"
  if [ "${DRY_RUN:-0}" = 1 ]; then
    crt_device_check="--require_device="
  elif [ ! -e /dev/davinci_manager ]; then
    # every Ascend host and container has the driver's management device; without it no MindSpore can use Ascend
    crt_device_check="--require_device="
    crt_no_driver=1
  fi
  RT_PLAN=$(repo_python -m src.rank_table "$1" --server_id="${SERVER_ID:-}" "$crt_device_check") || exit 1
  if [ -n "${crt_no_driver:-}" ]; then
    die "device target Ascend not available on this machine (no Ascend driver: /dev/davinci_manager is missing), so the rank table $1 cannot be used here; use msrun (pass msrun instead of the rank table) or DEVICE_TARGET=CPU"
  fi
  return 0
}

launch_rank_table() {
  lr_table=$1 lr_logs=$2 lr_script=$3
  shift 3
  [ -n "${RT_PLAN:-}" ] || check_rank_table "$lr_table"
  lr_world=$(printf '%s\n' "$RT_PLAN" | head -n 1)
  lr_pids="" lr_started=0
  while read -r lr_rank lr_device; do
    [ -n "$lr_rank" ] || continue
    if [ "${DRY_RUN:-0}" = 1 ]; then
      echo "dry run: RANK_TABLE_FILE=$(quote_args "$lr_table") RANK_SIZE=$lr_world RANK_ID=$lr_rank" \
           "DEVICE_ID=$lr_device $(quote_args python "$lr_script" --device_target Ascend --device_id "$lr_device" "$@")"
      continue
    fi
    RANK_TABLE_FILE=$lr_table RANK_SIZE=$lr_world RANK_ID=$lr_rank DEVICE_ID=$lr_device \
      python "$lr_script" --device_target Ascend --device_id "$lr_device" "$@" > "$lr_logs/rank_$lr_rank.log" 2>&1 \
      < /dev/null &
    lr_pids="$lr_pids $!:$lr_rank"
    lr_started=$((lr_started + 1))
  done <<EOF
$(printf '%s\n' "$RT_PLAN" | tail -n +2)
EOF
  [ "${DRY_RUN:-0}" = 1 ] && return 0
  echo "started $lr_started processes of a world of $lr_world; logs in $lr_logs/rank_N.log"
  lr_status=0
  for lr_entry in $lr_pids; do
    lr_rc=0
    wait "${lr_entry%%:*}" || lr_rc=$?
    if [ "$lr_rc" -ne 0 ]; then
      echo "error: rank ${lr_entry#*:} exited with status $lr_rc; its last error lines:" >&2
      worker_errors "$lr_logs/rank_${lr_entry#*:}.log"
      lr_status=$lr_rc
    fi
  done
  return "$lr_status"
}

launch_msrun() {
  lm_logs=$1 lm_script=$2
  shift 2
  lm_nodes=${NODE_NUM:-1}
  lm_node_rank=${NODE_RANK:-0}
  is_count "$lm_nodes" NODE_NUM
  is_count "$lm_node_rank" NODE_RANK
  [ "$lm_nodes" -ge 1 ] && [ "$lm_node_rank" -lt "$lm_nodes" ] \
    || die "NODE_RANK must be in 0..NODE_NUM-1, got NODE_RANK=$lm_node_rank with NODE_NUM=$lm_nodes"
  if [ -n "${LOCAL_WORKER_NUM:-}" ]; then
    lm_local=$LOCAL_WORKER_NUM
  elif [ -n "${WORKER_NUM:-}" ]; then
    is_count "$WORKER_NUM" WORKER_NUM
    [ $((WORKER_NUM % lm_nodes)) -eq 0 ] \
      || die "WORKER_NUM=$WORKER_NUM does not divide over NODE_NUM=$lm_nodes nodes: set LOCAL_WORKER_NUM"
    lm_local=$((WORKER_NUM / lm_nodes))
  else
    lm_local=2
  fi
  is_count "$lm_local" LOCAL_WORKER_NUM
  lm_workers=${WORKER_NUM:-$((lm_local * lm_nodes))}
  is_count "$lm_workers" WORKER_NUM
  [ "$lm_local" -ge 1 ] && [ "$lm_local" -le "$lm_workers" ] \
    || die "LOCAL_WORKER_NUM=$lm_local must be between 1 and WORKER_NUM=$lm_workers"
  # one node: msrun numbers the ranks itself, as before multi-node support
  set -- --worker_num="$lm_workers" --local_worker_num="$lm_local" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-8118}" --log_dir="$lm_logs" \
    --join=True --cluster_time_out="${CLUSTER_TIME_OUT:-600}" "$lm_script" --device_target "${DEVICE_TARGET:-auto}" \
    "$@"
  [ "$lm_nodes" -gt 1 ] && set -- --node_rank="$lm_node_rank" "$@"
  dry_run msrun "$@" && return 0
  command -v msrun > /dev/null 2>&1 \
    || die "msrun (MindSpore's launcher) not found on PATH: activate the virtual environment that has mindspore"
  echo "node $lm_node_rank of $lm_nodes: $lm_local of $lm_workers workers; logs in $lm_logs"
  lm_rc=0
  msrun "$@" || lm_rc=$?
  if [ "$lm_rc" -ne 0 ]; then
    echo "error: msrun exited with status $lm_rc; last error lines of the workers that logged errors:" >&2
    for lm_log in "$lm_logs"/worker_*.log "$lm_logs"/scheduler.log; do
      [ -f "$lm_log" ] && grep -qE 'Error|error:|Traceback' "$lm_log" && worker_errors "$lm_log"
    done
    return "$lm_rc"
  fi
}

launch_data_parallel() {
  ldp_table=$1
  shift
  if [ "$ldp_table" != msrun ] && [ "${DEVICE_TARGET:-Ascend}" = Ascend ]; then
    launch_rank_table "$ldp_table" "$@"
  else
    launch_msrun "$@"
  fi
}
