"""The data-parallel launcher of the distributed scripts: HCCL rank tables (checked, the per-process environment of
a two-server table, the Ascend check on a machine without Ascend) and msrun's multi-node settings, without starting
Ascend processes (DRY_RUN=1 prints the commands with their environment)."""
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from src.rank_table import LaunchPlan, plan_local_processes, read_rank_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
VOCAB = os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt")
SH = shutil.which("dash") or shutil.which("sh")
VENV_BIN = os.path.dirname(sys.executable)


def two_server_table(path, **changes):
    """Servers 10.0.0.1 (devices 0-3 -> ranks 0-3) and 10.0.0.2 (devices 0-3 -> ranks 4-7), as hccl_tools writes."""
    table = {"version": "1.0", "server_count": "2", "status": "completed", "server_list": [
        {"server_id": f"10.0.0.{server + 1}", "host_nic_ip": "reserve",
         "device": [{"device_id": str(device), "device_ip": f"192.168.{server}.{device}",
                     "rank_id": str(4 * server + device)} for device in range(4)]}
        for server in range(2)]}
    table.update(changes)
    path.write_text(json.dumps(table), encoding="utf-8")
    return path


def run_script(args, cwd, **env):
    environment = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ["PATH"], "VOCAB_FILE": VOCAB,
                   "PRETRAINED_DIR": str(cwd / "none"), "DATA_DIR": str(cwd), "EXTRA_ARGS": "--config tiny"}
    for name in ("SERVER_ID", "DEVICE_TARGET", "DRY_RUN", "NODE_NUM", "NODE_RANK", "WORKER_NUM", "LOCAL_WORKER_NUM"):
        environment.pop(name, None)
    environment.update({key: str(value) for key, value in env.items()})
    return subprocess.run([SH, *map(str, args)], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=120)


def dry_commands(result):
    return [shlex.split(line[len("dry run: "):]) for line in result.stdout.splitlines()
            if line.startswith("dry run: ")]


def test_two_server_table_gives_each_server_its_ranks_and_the_global_world_size(tmp_path):
    table = two_server_table(tmp_path / "rank_table.json")
    assert plan_local_processes(str(table), "10.0.0.1") == LaunchPlan(8, ((0, 0), (1, 1), (2, 2), (3, 3)))
    assert plan_local_processes(str(table), "10.0.0.2") == LaunchPlan(8, ((4, 0), (5, 1), (6, 2), (7, 3)))


@pytest.mark.parametrize("server", ["10.0.0.1", "10.0.0.2"])
def test_rank_table_script_path_sets_global_rank_size_per_process(tmp_path, server):
    """Issue 16: with SERVER_ID, RANK_SIZE was this server's device count (8 ranks each believing the world has 4)."""
    table = two_server_table(tmp_path / "rank table.json")
    result = run_script([os.path.join(SCRIPTS, "run_distribute_finetune.sh"), table, "xnli"], tmp_path,
                        DRY_RUN=1, SERVER_ID=server)
    assert result.returncode == 0, result.stderr
    commands = dry_commands(result)
    offset = 0 if server == "10.0.0.1" else 4
    assert len(commands) == 4
    for device, argv in enumerate(commands):
        env = dict(word.split("=", 1) for word in argv[:4])
        assert env == {"RANK_TABLE_FILE": str(table), "RANK_SIZE": "8", "RANK_ID": str(offset + device),
                       "DEVICE_ID": str(device)}
        assert argv[4:6] == ["python", "run_ernie_classifier.py"]
        assert argv[argv.index("--device_id") + 1] == str(device) and argv[argv.index("--device_target") + 1] == "Ascend"
    pretrain = run_script([os.path.join(SCRIPTS, "run_distributed_pretrain.sh"), tmp_path, table], tmp_path,
                          DRY_RUN=1, SERVER_ID=server, CONFIG="tiny")
    assert [argv[:4] for argv in dry_commands(pretrain)] == [argv[:4] for argv in commands]


@pytest.mark.parametrize("change, message", [
    (lambda t: t["server_list"][1]["device"][0].update(rank_id="3"), "rank_id 3 is already used by server_list[0]"),
    (lambda t: t["server_list"][1]["device"][3].update(rank_id="9"), "rank ids must be 0..7 (one per device); "
                                                                     "missing [7], found [9]"),
    (lambda t: t["server_list"][0]["device"][1].update(device_id="0"), "device_id 0 appears twice on server 10.0.0.1"),
    (lambda t: t["server_list"][1].update(server_id="10.0.0.1"), "server_id 10.0.0.1 is listed twice"),
    (lambda t: t.update(server_count="3"), "server_count is 3 but server_list has 2 servers"),
    (lambda t: t["server_list"][0]["device"][0].update(rank_id="x"), "server_list[0].device[0].rank_id must be a "
                                                                     "non-negative integer, got 'x'"),
    (lambda t: t.pop("server_list"), "'server_list' must be a non-empty list of servers"),
    (lambda t: t.update(status="initializing"), "'status' is 'initializing', not 'completed'"),
])
def test_inconsistent_tables_are_refused_naming_the_key(tmp_path, change, message):
    table = json.loads(two_server_table(tmp_path / "t.json").read_text())
    change(table)
    (tmp_path / "t.json").write_text(json.dumps(table))
    with pytest.raises(ValueError) as err:
        read_rank_table(str(tmp_path / "t.json"))
    assert str(err.value).startswith(str(tmp_path / "t.json")) and message in str(err.value)


def test_server_selection(tmp_path):
    table = str(two_server_table(tmp_path / "t.json"))
    with pytest.raises(ValueError, match="lists 2 servers .10.0.0.1, 10.0.0.2.: set SERVER_ID"):
        plan_local_processes(table, "")
    with pytest.raises(ValueError, match="this server .10.0.0.9, from SERVER_ID. is not in the table"):
        plan_local_processes(table, "10.0.0.9")
    with pytest.raises(FileNotFoundError, match="rank table .* not found"):
        plan_local_processes(str(tmp_path / "missing.json"), "")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a JSON rank table"):
        plan_local_processes(str(tmp_path / "bad.json"), "")


def test_rank_table_without_ascend_stops_before_any_worker_in_one_line(tmp_path):
    """Issue 11 item 5: the workers used to start and die with the reason only in their logs."""
    from src.rank_table import device_available
    if device_available("Ascend"):
        pytest.skip("this machine has Ascend: the refusal cannot be shown here")
    table = two_server_table(tmp_path / "t.json")
    logs = tmp_path / "logs"
    started = time.perf_counter()
    result = run_script([os.path.join(SCRIPTS, "run_distribute_finetune.sh"), table, "xnli"], tmp_path,
                        SERVER_ID="10.0.0.1", LOG_DIR=logs)
    elapsed = time.perf_counter() - started
    assert result.returncode == 1 and elapsed < 10, (elapsed, result.stderr)
    [line] = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert line.startswith("error: device target Ascend not available on this machine")
    assert line.endswith("use msrun (pass msrun instead of the rank table) or DEVICE_TARGET=CPU")
    assert not list(logs.glob("rank_*.log")) and "started" not in result.stdout
    missing = run_script([os.path.join(SCRIPTS, "run_distribute_finetune.sh"), tmp_path / "no.json", "xnli"],
                         tmp_path)
    assert missing.returncode == 1 and f"error: rank table {tmp_path / 'no.json'} not found" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("env, expected", [
    ({}, ["--worker_num=2", "--local_worker_num=2"]),                              # today's single-node default
    ({"WORKER_NUM": "4"}, ["--worker_num=4", "--local_worker_num=4"]),
    ({"NODE_NUM": "2", "NODE_RANK": "1", "LOCAL_WORKER_NUM": "8", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "9000"},
     ["--node_rank=1", "--worker_num=16", "--local_worker_num=8", "--master_addr=10.0.0.1", "--master_port=9000"]),
    ({"NODE_NUM": "2", "WORKER_NUM": "6"}, ["--node_rank=0", "--worker_num=6", "--local_worker_num=3"]),
])
def test_msrun_node_settings(tmp_path, env, expected):
    result = run_script([os.path.join(SCRIPTS, "run_distribute_finetune.sh"), "msrun", "xnli"], tmp_path,
                        DRY_RUN=1, **env)
    assert result.returncode == 0, result.stderr
    [argv] = dry_commands(result)
    assert argv[0] == "msrun" and argv[1:1 + len(expected)] == expected
    assert ("--node_rank" in " ".join(argv)) == ("NODE_NUM" in env)


@pytest.mark.parametrize("env, message", [
    ({"NODE_NUM": "2", "NODE_RANK": "2"}, "NODE_RANK must be in 0..NODE_NUM-1, got NODE_RANK=2 with NODE_NUM=2"),
    ({"NODE_NUM": "2", "WORKER_NUM": "3"}, "WORKER_NUM=3 does not divide over NODE_NUM=2 nodes: set LOCAL_WORKER_NUM"),
    ({"LOCAL_WORKER_NUM": "two"}, "LOCAL_WORKER_NUM must be a non-negative integer, got 'two'"),
])
def test_msrun_node_settings_are_checked(tmp_path, env, message):
    result = run_script([os.path.join(SCRIPTS, "run_distribute_finetune.sh"), "msrun", "xnli"], tmp_path,
                        DRY_RUN=1, **env)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == f"error: {message}"


@pytest.mark.skipif(shutil.which("msrun", path=VENV_BIN + os.pathsep + os.environ["PATH"]) is None,
                    reason="msrun (MindSpore's launcher) is not installed")
def test_a_failing_worker_prints_its_error_lines_and_log_path(tmp_path):
    """A worker that stops at once (a flag it does not know): the console names its log and shows the error."""
    logs = tmp_path / "logs"
    result = run_script([os.path.join(SCRIPTS, "run_distributed_pretrain.sh"), tmp_path, "msrun"], tmp_path,
                        DEVICE_TARGET="CPU", CONFIG="tiny", LOG_DIR=logs, WORKER_NUM=1, MASTER_PORT=free_port(),
                        CLUSTER_TIME_OUT=10, EXTRA_ARGS="--no_such_flag 1")
    assert result.returncode != 0
    assert "error: msrun exited with status" in result.stderr
    assert f"  {logs / 'worker_0.log'}:" in result.stderr
    worker_lines = result.stderr.split(f"{logs / 'worker_0.log'}:", 1)[1].splitlines()
    assert any("unrecognized arguments: --no_such_flag 1" in line for line in worker_lines[:7]), result.stderr


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
