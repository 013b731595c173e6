"""src/fileio.py: JSON reading (BOM, bad bytes, bad JSON), atomic writes (permissions under the umask, cleanup on
failure, a full disk), and the removal of temporaries that a killed run left behind."""
import contextlib
import errno
import json
import logging
import os
import signal
import stat
import subprocess
import sys

import pytest

from src import fileio
from src.fileio import (NoSpaceError, read_json, remove_stale_temporaries, replaced_atomically, write_json,
                        write_text)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@contextlib.contextmanager
def small_tmpfs(folder, size):
    """A tmpfs of ``size`` mounted on ``folder`` (needs root; skips the test elsewhere)."""
    os.makedirs(folder, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); test_*_enospc_simulated cover the logic")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(folder, leave_free):
    """Writes a file that leaves about ``leave_free`` bytes free in ``folder``'s file system; returns its path."""
    filler = os.path.join(folder, "filler.bin")
    with open(filler, "wb") as f:
        f.write(b"\0" * (fileio.shutil.disk_usage(folder).free - leave_free))
    return filler


def test_read_json_accepts_bom_and_names_bad_input(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes("\ufeff{\"hidden_size\": 128, \"name\": \"中文\"}".encode("utf-8"))
    assert read_json(str(path)) == {"hidden_size": 128, "name": "中文"}
    path.write_bytes(b'{\n "a": 1,\n "b": "\xff\xfe"\n}')
    with pytest.raises(ValueError, match=r"config\.json:3: not valid UTF-8 \(invalid start byte at byte 18\)"):
        read_json(str(path))
    path.write_bytes(b'\xef\xbb\xbf{\n "b": "\xff"}')  # the offset counts the byte order mark
    with pytest.raises(ValueError, match=r"config\.json:2: not valid UTF-8 \(invalid start byte at byte 12\)"):
        read_json(str(path))
    path.write_bytes(b'{\n "a": 1,\n "b": [1, 2,]\n}')
    with pytest.raises(ValueError, match=r"config\.json:3:13: not valid JSON \(Expecting value\)"):
        read_json(str(path))
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"config\.json:1:1: not valid JSON"):
        read_json(str(path))
    with pytest.raises(FileNotFoundError, match=r"missing\.json: file not found"):
        read_json(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("mask, expected", [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_new_files_get_the_mode_open_would_give(tmp_path, mask, expected):
    with umask(mask):
        assert fileio.current_umask() == mask
        write_text(str(tmp_path / "a.txt"), "x")
        with open(tmp_path / "plain.txt", "w") as f:  # the reference: what a plain open() creates
            f.write("x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == expected
    assert stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode) == expected


def test_replacing_a_file_keeps_its_mode(tmp_path):
    path = tmp_path / "secret.json"
    path.write_text("{}")
    os.chmod(path, 0o600)
    with umask(0o022):
        write_json({"a": 1}, str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text()) == {"a": 1}
    os.chmod(path, 0o640)
    with umask(0o077):
        write_json({"a": 2}, str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    write_text(str(path), "old")
    with pytest.raises(RuntimeError, match="boom"):
        with replaced_atomically(str(path)) as tmp, open(tmp, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == ["out.txt"] and path.read_text() == "old"


def test_write_enospc_simulated(tmp_path, monkeypatch):
    """The write fails as on a full disk: one OSError naming the file, the old version kept, nothing hidden left."""
    path = tmp_path / "metrics.json"
    write_json({"v": 1}, str(path))

    def full_disk(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(NoSpaceError, match=r"metrics\.json: no space left on the device while writing it") as err:
        with replaced_atomically(str(path)) as tmp:
            full_disk(tmp)
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, OSError)
    assert str(err.value).startswith(f"{path}: no space left") and "\n" not in str(err.value)  # one line for the CLI
    assert os.listdir(tmp_path) == ["metrics.json"] and json.loads(path.read_text()) == {"v": 1}


def test_write_on_a_full_tmpfs(tmp_path):
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        path = os.path.join(disk, "big.txt")
        write_text(path, "old")
        filler = fill(disk, 64 * 1024)
        with pytest.raises(NoSpaceError, match=r"big\.txt: no space left on the device while writing it \(0\.0 MiB"):
            write_text(path, "x" * (256 * 1024))
        assert sorted(os.listdir(disk)) == ["big.txt", "filler.bin"] and open(path).read() == "old"
        os.remove(filler)
        write_text(path, "x" * (256 * 1024))
        assert os.path.getsize(path) == 256 * 1024 and os.listdir(disk) == ["big.txt"]


KILLED_WRITER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from src.fileio import replaced_atomically
with replaced_atomically(sys.argv[1], suffix=sys.argv[2]) as tmp:
    with open(tmp, "w") as f:
        f.write("partial")
    if sys.argv[2] == ".ckpt":  # what MindSpore's save_checkpoint has open while it writes
        with open(os.path.splitext(tmp)[0] + ".tmp", "wb") as f:
            f.write(b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_remove_stale_temporaries_after_kills(tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    for name, suffix in [("checkpoint_last.ckpt", ".ckpt"), ("train_log.jsonl", ""), ("model.onnx", ".onnx")]:
        result = subprocess.run([sys.executable, "-c", KILLED_WRITER.format(repo=REPO), str(out / name), suffix])
        assert result.returncode == -signal.SIGKILL
    leftovers = sorted(os.listdir(out))
    assert len(leftovers) == 4 and all(name.startswith(".") and ".partial" in name for name in leftovers)
    # Names of the version before the .partial mark, and the writers' temporary folders.
    legacy = [".checkpoint_last.ckpt.k2j_9x0a.ckpt", ".checkpoint_last.ckpt.k2j_9x0a.tmp", ".dev.json.a1b2c3d4"]
    for name in legacy:
        (out / name).write_bytes(b"x" * 10)
    (out / ".tmp-mindrecord-ab12cd34").mkdir()
    (out / ".tmp-mindrecord-ab12cd34" / "train.mindrecord").write_bytes(b"x" * 100)
    (out / "tmp-export-zz99yy88").mkdir()
    # Not temporaries of this project: kept.
    kept = [".gitignore", ".bashrc.original", "notes.txt", "model.ckpt", ".model.ckpt", "a.ckpt.tmp",
            ".x.ckpt.abcdefghi.tmp", "tmp-export-notes"]
    for name in kept:
        (out / name).write_text("keep")
    (out / "sub").mkdir()
    (out / "sub" / ".a.ckpt.abcd1234.partial.ckpt").write_text("not this folder")
    with caplog.at_level(logging.WARNING, logger="src.fileio"):
        removed = remove_stale_temporaries(str(out))
    assert sorted(os.path.basename(p) for p in removed) == sorted(
        leftovers + legacy + [".tmp-mindrecord-ab12cd34", "tmp-export-zz99yy88"])
    assert sorted(os.listdir(out)) == sorted(kept + ["sub"])
    assert sum("removed this leftover temporary" in r.getMessage() for r in caplog.records) == len(removed)
    assert remove_stale_temporaries(str(out)) == [] and remove_stale_temporaries(str(tmp_path / "none")) == []
