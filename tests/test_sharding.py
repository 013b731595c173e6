"""Sharded reading: each data-parallel rank reads only the MindRecord rows of its own slices of the global batches
(src.dataset.train_batches over src.data.mindrecord.MindRecordRows), and gets exactly the batches that reading every
row into memory gives; rows read per rank fall as 1/N, in one process (ranks simulated by their ids) and under msrun."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from src.data.common import InputError
from src.data.mindrecord import MindRecordRows, read_mindrecord_columns, write_mindrecord
from src.dataset import create_train_dataset, epoch_batch_indices, num_examples, steps_per_epoch, train_batches
from tests.test_distributed import MSRUN, REPO, VENV_BIN, free_port, pretrain_args, write_data

COLUMNS = ("input_ids", "label")


def write_rows(folder, total, shard_num=2):
    """``total`` rows whose input_ids encode the row number (row i: i*10, i*10+2 .. i*10+8), in ``shard_num`` files."""
    columns = {"input_ids": np.arange(total * 5).reshape(total, 5) * 2, "label": np.arange(total) % 3}
    path = str(folder / "rows.mindrecord")
    write_mindrecord(columns, path, shard_num=shard_num)
    return path


def in_memory_batches(columns, batch_size, epoch, rank, world_size, skip_batches=0):
    dataset = create_train_dataset(columns, COLUMNS, batch_size, epoch, seed=7, rank=rank, world_size=world_size,
                                   skip_batches=skip_batches)
    return [tuple(t.asnumpy() for t in batch) for batch in dataset.create_tuple_iterator(num_epochs=1)]


def sharded_batches(source, batch_size, epoch, rank, world_size, skip_batches=0):
    return [tuple(t.asnumpy() for t in batch) for batch in
            train_batches(source, COLUMNS, batch_size, epoch, seed=7, rank=rank, world_size=world_size,
                          skip_batches=skip_batches)]


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_each_rank_reads_only_its_rows_and_gets_the_in_memory_batches(tmp_path, world_size):
    total, batch_size = 103, 3  # 103 rows in 2 files; global batches of 3 x N leave a remainder out each epoch
    path = write_rows(tmp_path, total)
    columns = read_mindrecord_columns(path)  # today's reader: every row into memory, independent of MindRecordRows
    steps = steps_per_epoch(total, batch_size, world_size)
    seen = []
    for rank in range(world_size):
        source = MindRecordRows(path, COLUMNS)
        assert num_examples(source) == total and source.rows_read == 0  # the count comes from the index
        batches = sharded_batches(source, batch_size, epoch=1, rank=rank, world_size=world_size)
        expected = in_memory_batches(columns, batch_size, 1, rank, world_size)
        assert len(batches) == len(expected) == steps  # every rank the same number of steps
        for got, want in zip(batches, expected):
            for got_column, want_column in zip(got, want):
                np.testing.assert_array_equal(got_column, want_column)
        assert source.rows_read == steps * batch_size  # rows its reader yielded: ~ total / N
        seen.append(np.concatenate([b[0][:, 0] // 10 for b in batches]))  # row numbers back from the ids
    seen = np.concatenate(seen)
    # across ranks each row at most once, and exactly the rows of the one-process epoch with an N x batch
    assert len(np.unique(seen)) == len(seen) == steps * batch_size * world_size
    single = epoch_batch_indices(total, batch_size * world_size, epoch=1, seed=7)
    np.testing.assert_array_equal(np.sort(seen), np.sort(np.concatenate(single)))


def test_rows_read_per_rank_fall_as_one_over_n_and_cover_the_epoch_once(tmp_path):
    total, batch_size = 96, 4
    path = write_rows(tmp_path, total, shard_num=3)
    for world_size in (1, 2, 4):
        rows_per_rank, seen = [], []
        for rank in range(world_size):
            source = MindRecordRows(path, COLUMNS)
            batches = sharded_batches(source, batch_size, epoch=0, rank=rank, world_size=world_size)
            rows_per_rank.append(source.rows_read)
            seen += [int(i) for b in batches for i in b[0][:, 0] // 10]
        assert rows_per_rank == [total // world_size] * world_size
        assert sorted(seen) == list(range(total))  # 96 divides by every global batch: all rows, each once


def test_resume_skips_the_done_batches(tmp_path):
    path = write_rows(tmp_path, 40)
    full = sharded_batches(MindRecordRows(path, COLUMNS), 2, epoch=3, rank=1, world_size=2)
    resumed_source = MindRecordRows(path, COLUMNS)
    resumed = sharded_batches(resumed_source, 2, epoch=3, rank=1, world_size=2, skip_batches=6)
    assert len(full) == 10 and len(resumed) == 4 and resumed_source.rows_read == 8
    for got, want in zip(resumed, full[6:]):
        np.testing.assert_array_equal(got[0], want[0])


def test_bad_input_is_named(tmp_path):
    path = write_rows(tmp_path, 10, shard_num=1)
    with pytest.raises(InputError, match=r"rows.mindrecord:1: the records lack the columns \['masked_lm_ids'\]"):
        MindRecordRows(path, ("input_ids", "masked_lm_ids"))
    with pytest.raises(ValueError, match="outside its 10 rows"):
        list(MindRecordRows(path, COLUMNS).read_batches([3, 10], 2))

    def reject(batch, source):
        if batch["input_ids"].max() > 50:
            raise ValueError(f"{source}: id {batch['input_ids'].max()} too large")
    checked = MindRecordRows(path, COLUMNS, check_batch=reject)
    with pytest.raises(ValueError, match="rows.mindrecord: id 98 too large"):
        list(checked.read_batches(range(10), 5))
    assert checked.rows_read == 5  # the first batch (rows 0-4, ids up to 48) passed


def run_logged(command, env, timeout):
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return completed


@pytest.mark.skipif(MSRUN is None, reason="msrun (MindSpore's launcher) is not installed")
def test_msrun_ranks_read_half_the_rows_and_train_like_one_process(tmp_path):
    """A full epoch (64 rows, global batch 4): one process streaming its rows, two msrun workers with sharded reading
    (the default) and two reading everything (--shard_data false) end with the same weights and logged losses."""
    write_data(tmp_path)
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""), "PYTHONPATH": REPO}
    steps = ["--train_steps", "16"]
    single = run_logged([sys.executable, *pretrain_args(tmp_path, tmp_path / "single", 4), *steps,
                         "--shard_data", "true", "--progress_bar", "false"], env, 120)
    assert single.returncode == 0, single.stderr[-3000:]
    assert "rank 0 read 64 training rows of 64" in single.stderr

    worker_logs = {}
    for name, flags in (("sharded", []), ("unsharded", ["--shard_data", "false"])):
        logs = tmp_path / f"logs_{name}"
        started = time.perf_counter()
        parallel = run_logged(
            [MSRUN, "--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
             f"--log_dir={logs}", "--join=True", "--cluster_time_out=60",
             *pretrain_args(tmp_path, tmp_path / name, 2), *steps, *flags, "--distribute", "true"], env, 150)
        worker_logs[name] = [(logs / f"worker_{rank}.log").read_text(encoding="utf-8", errors="replace")
                             for rank in (0, 1)]
        assert parallel.returncode == 0, parallel.stdout[-2000:] + "".join(log[-2000:] for log in worker_logs[name])
        print(f"msrun {name}: {time.perf_counter() - started:.1f} s")
    for rank in (0, 1):
        sharded, unsharded = worker_logs["sharded"][rank], worker_logs["unsharded"][rank]
        assert "64 training examples, 16 steps per epoch (batch 2 x 2 processes" in sharded
        assert "sharded reading" in sharded and "sharded reading" not in unsharded
        assert f"rank {rank} read 32 training rows of 64" in sharded  # half the rows each: 1/N
        assert f"rank {rank} read 64 training rows of 64" in unsharded

    from src.checkpoint import read_checkpoint
    one = read_checkpoint(str(tmp_path / "single" / "ernie-1_16.ckpt"))
    records = {name: [json.loads(line) for line in open(tmp_path / name / "train_log.jsonl", encoding="utf-8")]
               for name in ("single", "sharded", "unsharded")}
    for name in ("sharded", "unsharded"):
        assert len(records[name]) == len(records["single"]) == 16
        for one_process, two_processes in zip(records["single"], records[name]):
            for key in ("loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy"):
                assert two_processes[key] == pytest.approx(one_process[key], rel=1e-5, abs=1e-6), (name, key)
        two = read_checkpoint(str(tmp_path / name / "ernie-1_16.ckpt"))
        assert sorted(two) == sorted(one)
        for weight in one:  # the tolerance of tests/test_distributed.py: observed ~2e-7, a wrong batch ~1e-3
            np.testing.assert_allclose(two[weight], one[weight], rtol=0, atol=2e-5, err_msg=f"{name} {weight}")


def test_shard_data_flag_defaults_to_sharding_mindrecord_on_several_processes():
    from src.pretrain import use_sharded_reading
    assert use_sharded_reading(None, "mindrecord", 2) and not use_sharded_reading(None, "mindrecord", 1)
    assert not use_sharded_reading(None, "tfrecord", 8) and not use_sharded_reading(None, "ernie", 8)
    assert use_sharded_reading(True, "mindrecord", 1) and not use_sharded_reading(False, "mindrecord", 8)
    with pytest.raises(ValueError, match="--shard_data true needs --data_format mindrecord"):
        use_sharded_reading(True, "tfrecord", 2)


def test_sharded_pretraining_data_checks_token_ids_against_the_vocabulary(tmp_path):
    from src.pretrain import open_sharded_data
    from src.tokenizer import ErnieTokenizer
    write_data(tmp_path)  # ids up to 104
    rows, seq_len = open_sharded_data(str(tmp_path / "data"), ErnieTokenizer(str(tmp_path / "vocab.txt")))
    assert seq_len == 24 and rows.num_rows == 64 and rows.rows_read == 0
    batch = next(iter(rows.read_batches(range(4), 4)))
    assert batch[-1].dtype == np.float32  # masked_lm_weights, stored as int32
    small = tmp_path / "small_vocab.txt"
    small.write_text("".join(line + "\n" for line in (tmp_path / "vocab.txt").read_text().splitlines()[:20]))
    with pytest.raises(ValueError, match=r"/data: token id [0-9]+ is not in the vocabulary .*small_vocab.txt"):
        open_sharded_data(str(tmp_path / "data"), ErnieTokenizer(str(small)))
