"""HCCL rank tables: read and check one, and plan the processes this server starts.

A rank table (format 1.0, what Ascend's hccl_tools writes) lists every server of the job and its devices:
``{"version": "1.0", "server_count": "2", "server_list": [{"server_id": "10.0.0.1", "device": [{"device_id": "0",
"device_ip": "...", "rank_id": "0"}, ...]}, ...], "status": "completed"}``. The launcher in scripts/_common.sh starts
one process per device of this server with RANK_TABLE_FILE, RANK_SIZE (the whole table's device count: the world
size), RANK_ID and DEVICE_ID from it; this module computes those values and refuses an inconsistent table before any
process starts.

CLI (what the launcher calls): ``python -m src.rank_table TABLE [--server_id ID] [--require_device Ascend]`` prints
the world size on the first line, then ``RANK_ID DEVICE_ID`` for each process this server starts; a bad table or an
unavailable device prints one ``error: ...`` line and exits 1.
"""
import argparse
import json
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class LaunchPlan:
    world_size: int              # devices in the whole table: every process's RANK_SIZE
    processes: tuple             # (rank_id, device_id) of each process this server starts, in table order


def _as_int(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
    return int(value)


def read_rank_table(path):
    """``[(server_id, [(rank_id, device_id), ...]), ...]`` from the table at ``path``, checked: unique server ids,
    unique device ids within a server, rank ids exactly 0..N-1 once each, ``server_count`` (when present) equal to the
    servers listed. Raises FileNotFoundError or ValueError naming the file and the key."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            table = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"rank table {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON rank table ({err})") from None
    if not isinstance(table, dict) or not isinstance(table.get("server_list"), list) or not table["server_list"]:
        hint = " (the pre-1.0 'group_list' layout is not supported: write a version 1.0 table)" \
            if isinstance(table, dict) and "group_list" in table else ""
        raise ValueError(f"{path}: 'server_list' must be a non-empty list of servers{hint}")
    if table.get("status", "completed") != "completed":
        raise ValueError(f"{path}: 'status' is {table['status']!r}, not 'completed' (the table is still being built)")
    servers, server_ids, rank_owner = [], set(), {}
    for index, server in enumerate(table["server_list"]):
        where = f"{path}: server_list[{index}]"
        if not isinstance(server, dict) or not isinstance(server.get("device"), list) or not server["device"]:
            raise ValueError(f"{where}: 'device' must be a non-empty list")
        server_id = str(server.get("server_id", "")).strip()
        if not server_id:
            raise ValueError(f"{where}: 'server_id' is missing")
        if server_id in server_ids:
            raise ValueError(f"{where}: server_id {server_id} is listed twice")
        server_ids.add(server_id)
        devices, device_ids = [], set()
        for d_index, device in enumerate(server["device"]):
            d_where = f"{where}.device[{d_index}]"
            if not isinstance(device, dict):
                raise ValueError(f"{d_where} must be an object with device_id and rank_id")
            device_id = _as_int(device.get("device_id"), f"{d_where}.device_id")
            rank_id = _as_int(device.get("rank_id"), f"{d_where}.rank_id")
            if device_id in device_ids:
                raise ValueError(f"{d_where}: device_id {device_id} appears twice on server {server_id}")
            if rank_id in rank_owner:
                raise ValueError(f"{d_where}: rank_id {rank_id} is already used by {rank_owner[rank_id]}")
            device_ids.add(device_id)
            rank_owner[rank_id] = d_where[len(path) + 2:]
            devices.append((rank_id, device_id))
        servers.append((server_id, devices))
    world_size = len(rank_owner)
    missing = sorted(set(range(world_size)) - set(rank_owner))
    if missing:
        raise ValueError(f"{path}: rank ids must be 0..{world_size - 1} (one per device); missing {missing}, "
                         f"found {sorted(set(rank_owner) - set(range(world_size)))}")
    if "server_count" in table and _as_int(table["server_count"], f"{path}: server_count") != len(servers):
        raise ValueError(f"{path}: server_count is {table['server_count']} but server_list has {len(servers)} servers")
    return servers


def plan_local_processes(path, server_id=""):
    """The LaunchPlan for the server ``server_id`` of the table at ``path``; ``server_id`` may be empty only when
    the table lists one server."""
    servers = read_rank_table(path)
    server_id = (server_id or "").strip()
    if not server_id:
        if len(servers) > 1:
            raise ValueError(f"{path} lists {len(servers)} servers ({', '.join(s for s, _ in servers)}): set "
                             "SERVER_ID to this server's server_id")
        server_id = servers[0][0]
    local = [devices for sid, devices in servers if sid == server_id]
    if not local:
        raise ValueError(f"{path}: this server ({server_id}, from SERVER_ID) is not in the table; its servers are "
                         f"{', '.join(s for s, _ in servers)}")
    return LaunchPlan(world_size=sum(len(devices) for _, devices in servers), processes=tuple(local[0]))


def device_available(device_target):
    """Whether MindSpore can run on ``device_target`` here (the installed package and the machine)."""
    # MindSpore logs its failed plugin loads as WARNINGs; the one-line answer is ours (GLOG_v=3: errors only)
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms
    try:
        return bool(ms.hal.is_available(device_target))
    except (RuntimeError, ValueError):
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check an HCCL rank table; print the world size, then "
                                                 "'RANK_ID DEVICE_ID' of each process this server starts.")
    parser.add_argument("rank_table")
    parser.add_argument("--server_id", default="", help="this server's server_id (needed when the table has several)")
    parser.add_argument("--require_device", default="", help="also check that this device target is available")
    args = parser.parse_args(argv)
    try:
        plan = plan_local_processes(args.rank_table, args.server_id)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    if args.require_device and not device_available(args.require_device):
        sys.exit(f"error: device target {args.require_device} not available on this machine (the installed "
                 f"MindSpore package or the machine has no {args.require_device} support), so the rank table "
                 f"{args.rank_table} cannot be used here; use msrun (pass msrun instead of the rank table) or "
                 "DEVICE_TARGET=CPU")
    print(plan.world_size)
    for rank_id, device_id in plan.processes:
        print(rank_id, device_id)


if __name__ == "__main__":
    main()
