"""Corrupt, partial and odd-but-valid inputs: checkpoint CRCs (a changed byte anywhere is reported by every loader),
checkpoint saves on a full disk, PaddleNLP .pdparams under every pickle protocol (and hostile pickles refused), and
vocabularies with trailing blank lines."""
import errno
import importlib.util
import logging
import os
import pickle
import stat
import subprocess
import sys
import time
import zlib
from collections import OrderedDict

import mindspore as ms
import numpy as np
import pytest

from src import checkpoint
from src.checkpoint import CRC_TRAILER_SIZE, from_pretrained, load_weights, read_checkpoint, save_checkpoint
from src.convert_checkpoint import export_hf
from src.ernie_model import ErnieConfig, ErnieModel
from src.fileio import NoSpaceError, remove_stale_temporaries
from src.paddle_format import read_pdparams
from src.tokenizer import load_vocab
from tests.test_fileio import REPO, fill, small_tmpfs

CONFIG = ErnieConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     max_position_embeddings=12)


def flipped(data, position, bit):
    damaged = bytearray(data)
    damaged[position] ^= 1 << bit
    return bytes(damaged)


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    """A checkpoint of a few named tensors and a counter, small enough to damage at every byte."""
    path = str(tmp_path_factory.mktemp("small") / "small.ckpt")
    save_checkpoint([{"name": "ernie.word_embeddings.embedding_table", "data": np.arange(24, dtype=np.float32)},
                     {"name": "classifier.bias", "data": np.array([1, -2, 3], dtype=np.int32)}], path,
                    append_dict={"epoch_num": 2})
    with open(path, "rb") as f:
        return path, f.read()


def test_save_writes_mindspores_crc_trailer(small_ckpt):
    """The trailer is MindSpore's: its own reader verifies it with crc_check, and its CRC is the standard CRC-32."""
    path, data = small_ckpt
    assert data[-CRC_TRAILER_SIZE:-10] == b"crc_num"
    assert int.from_bytes(data[-10:], "big") == zlib.crc32(data[:-CRC_TRAILER_SIZE])
    assert sorted(ms.load_checkpoint(path, crc_check=True)) == ["classifier.bias", "epoch_num",
                                                                 "ernie.word_embeddings.embedding_table"]
    assert checkpoint.verify_checkpoint(path) is True


def test_every_changed_bit_is_reported(small_ckpt, tmp_path):
    """Each byte of the file (header, names, dims, data, trailer) changed in one bit (all 8 bits in the trailer).

    Unchecked, MindSpore loads many of these with changed values, and aborts the process on some (measured).
    """
    _, data = small_ckpt
    damaged_path = str(tmp_path / "damaged.ckpt")
    cases = [(pos, pos % 8) for pos in range(len(data) - CRC_TRAILER_SIZE)]
    cases += [(pos, bit) for pos in range(len(data) - CRC_TRAILER_SIZE, len(data)) for bit in range(8)]
    for position, bit in cases:
        with open(damaged_path, "wb") as f:
            f.write(flipped(data, position, bit))
        with pytest.raises(ValueError, match=r"damaged\.ckpt: the checkpoint is damaged") as err:
            read_checkpoint(damaged_path)
        assert "\n" not in str(err.value)


def test_changed_bytes_reported_by_every_loader(tmp_path):
    """A tiny ERNIE checkpoint damaged at sampled places: read_checkpoint, load_weights, from_pretrained, --to_hf."""
    model_dir = tmp_path / "model"
    path = str(model_dir / "ernie.ckpt")
    save_checkpoint(ErnieModel(CONFIG), path)
    CONFIG.to_json_file(str(model_dir / "ernie_config.json"))
    with open(path, "rb") as f:
        data = f.read()
    rng = np.random.default_rng(0)
    positions = sorted(set(rng.integers(0, len(data), 400).tolist()) | {0, 1, 2, len(data) - 1, len(data) - 12})
    damaged_path = str(model_dir / "damaged.ckpt")
    target = ErnieModel(CONFIG)
    before = {p.name: p.asnumpy().copy() for p in target.get_parameters()}
    for i, position in enumerate(positions):
        with open(damaged_path, "wb") as f:
            f.write(flipped(data, position, int(rng.integers(8))))
        with pytest.raises(ValueError, match=r"damaged\.ckpt: the checkpoint is damaged"):
            read_checkpoint(damaged_path)
        with pytest.raises(ValueError, match=r"damaged\.ckpt: the checkpoint is damaged"):
            load_weights(target, damaged_path)
        if i % 40 == 0:  # each builds a model
            with pytest.raises(ValueError, match=r"damaged\.ckpt: the checkpoint is damaged"):
                from_pretrained(damaged_path)
            with pytest.raises(ValueError, match=r"damaged\.ckpt: the checkpoint is damaged"):
                export_hf(damaged_path, str(tmp_path / "hf"))
    assert all(np.array_equal(before[p.name], p.asnumpy()) for p in target.get_parameters())
    assert not os.path.exists(tmp_path / "hf")
    assert load_weights(target, path).loaded == len(before)  # the intact file still loads


def test_checkpoint_without_crc_loads_with_one_warning(tmp_path, caplog):
    path = str(tmp_path / "foreign.ckpt")
    ms.save_checkpoint([{"name": "w", "data": ms.Tensor(np.ones(3, np.float32))}], path)  # as another tool writes
    with caplog.at_level(logging.WARNING, logger="src.checkpoint"):
        for _ in range(3):
            np.testing.assert_array_equal(read_checkpoint(path)["w"], np.ones(3, np.float32))
    warnings = [r.getMessage() for r in caplog.records if "no CRC trailer" in r.getMessage()]
    assert len(warnings) == 1 and "foreign.ckpt" in warnings[0]
    caplog.clear()
    ours = str(tmp_path / "ours.ckpt")
    save_checkpoint([{"name": "w", "data": np.ones(3, np.float32)}], ours)
    with caplog.at_level(logging.WARNING):
        read_checkpoint(ours)
    assert not caplog.records


def test_cut_or_extended_checkpoints(small_ckpt, tmp_path):
    """Cut inside a tensor or the trailer, or extended: an error. Cut exactly before the trailer or after a tensor, the
    file is a valid checkpoint without a CRC: require_crc (for a run's own files) refuses it."""
    _, data = small_ckpt
    path = str(tmp_path / "cut.ckpt")
    boundaries = {CRC_TRAILER_SIZE}
    for cut in range(1, len(data)):
        with open(path, "wb") as f:
            f.write(data[:-cut])
        with pytest.raises(ValueError, match=r"cut\.ckpt: the checkpoint has no CRC trailer: it was cut short"):
            read_checkpoint(path, require_crc=True)
        try:
            read_checkpoint(path)
        except ValueError as err:
            assert str(err).startswith(path)
        else:
            boundaries.add(cut)
    # Tensor boundaries of this file: before the trailer, before the second tensor, before the counter.
    assert len(boundaries) == 3 and CRC_TRAILER_SIZE in boundaries
    for extra in (b"\0", b"x" * 17, data[-CRC_TRAILER_SIZE:]):
        with open(path, "wb") as f:
            f.write(data + extra)
        with pytest.raises(ValueError, match=r"cut\.ckpt: "):
            read_checkpoint(path)


def test_checkpoint_mode_follows_umask_or_the_replaced_file(tmp_path):
    """Not MindSpore's read-only 0400, nor a forced 0644: what open() would give, or what the old file had."""
    path = tmp_path / "model.ckpt"
    previous = os.umask(0o077)
    try:
        save_checkpoint([{"name": "w", "data": np.zeros(2, np.float32)}], str(path))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        os.chmod(path, 0o640)
        os.umask(0o022)
        save_checkpoint([{"name": "w", "data": np.ones(2, np.float32)}], str(path))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    finally:
        os.umask(previous)
    np.testing.assert_array_equal(read_checkpoint(str(path))["w"], np.ones(2, np.float32))


def test_save_enospc_simulated(tmp_path, monkeypatch):
    """MindSpore's writer fails after it created its .tmp file, as on a full disk: nothing hidden is left."""
    path = str(tmp_path / "checkpoint_last.ckpt")
    save_checkpoint([{"name": "w", "data": np.zeros(4, np.float32)}], path)

    def full_disk(save_obj, name, **kwargs):
        with open(os.path.splitext(name)[0] + ".tmp", "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.ms, "save_checkpoint", full_disk)
    with pytest.raises(NoSpaceError, match=r"checkpoint_last\.ckpt: no space left on the device while writing it"):
        save_checkpoint([{"name": "w", "data": np.ones(4, np.float32)}], path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["checkpoint_last.ckpt"]
    np.testing.assert_array_equal(read_checkpoint(path)["w"], np.zeros(4, np.float32))


def test_save_on_a_full_tmpfs(tmp_path):
    """Runs out of space in MindSpore's own writer, and in the check before it; succeeds after space is freed."""
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        path = os.path.join(disk, "checkpoint_last.ckpt")
        save_checkpoint([{"name": "w", "data": np.zeros(4, np.float32)}], path)
        filler = fill(disk, 64 * 1024)
        free = checkpoint.shutil.disk_usage(disk).free
        # Passes the size check (the data fits) but not the protobuf framing and CRC trailer around it.
        just_too_big = [{"name": "w", "data": np.ones(free - 8, np.uint8)}]
        with pytest.raises(NoSpaceError, match=r"checkpoint_last\.ckpt: no space left on the device while writing it"):
            save_checkpoint(just_too_big, path)
        assert sorted(os.listdir(disk)) == ["checkpoint_last.ckpt", "filler.bin"]
        with pytest.raises(NoSpaceError, match=r"checkpoint_last\.ckpt: no space left on the device while writing it"):
            save_checkpoint([{"name": "w", "data": np.ones(2 * free, np.uint8)}], path)
        assert sorted(os.listdir(disk)) == ["checkpoint_last.ckpt", "filler.bin"]
        np.testing.assert_array_equal(read_checkpoint(path)["w"], np.zeros(4, np.float32))
        os.remove(filler)
        save_checkpoint(just_too_big, path)
        np.testing.assert_array_equal(read_checkpoint(path)["w"], just_too_big[0]["data"])
        assert os.listdir(disk) == ["checkpoint_last.ckpt"]


KILLED_SAVE = """
import sys
import numpy as np
sys.path.insert(0, {repo!r})
from src.checkpoint import save_checkpoint
save_checkpoint([{{"name": "w", "data": np.ones(32 * 2 ** 20, np.float32)}}], sys.argv[1])  # 128 MiB
"""


def test_kill_during_save_then_cleanup(tmp_path):
    """SIGKILL while MindSpore writes: the previous checkpoint is intact and the next start removes the leftovers."""
    path = tmp_path / "checkpoint_last.ckpt"
    save_checkpoint([{"name": "w", "data": np.zeros(4, np.float32)}], str(path))
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVE.format(repo=REPO), str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not any(name.endswith(".partial.tmp") for name in os.listdir(tmp_path)):
        assert child.poll() is None, "the save finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    child.kill()
    child.wait()
    leftovers = sorted(name for name in os.listdir(tmp_path) if name != "checkpoint_last.ckpt")
    assert leftovers and all(name.startswith(".checkpoint_last.ckpt.") for name in leftovers)
    np.testing.assert_array_equal(read_checkpoint(str(path))["w"], np.zeros(4, np.float32))
    removed = remove_stale_temporaries(str(tmp_path))
    assert sorted(os.path.basename(name) for name in removed) == leftovers
    assert os.listdir(tmp_path) == ["checkpoint_last.ckpt"]


def pdparams_state():
    rng = np.random.default_rng(1)
    return OrderedDict([
        ("ernie.embeddings.word_embeddings.weight", rng.standard_normal((7, 4)).astype(np.float32)),
        ("ernie.encoder.layers.0.linear1.bias", np.arange(5, dtype=np.float64)),
        ("ernie.fortran", np.asfortranarray(rng.standard_normal((3, 2)).astype(np.float16))),
        ("ernie.strided", np.arange(20, dtype=np.int64)[::3]),
        ("ernie.empty", np.zeros((0, 4), np.float32)),
        ("ernie.bytes", np.array([0, 255, 7], np.uint8)),
        ("StructuredToParameterName@@", {"word_embeddings.weight": "embedding_0.w_0"}),
    ])


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_pdparams_every_pickle_protocol(tmp_path, protocol):
    state = pdparams_state()
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(pickle.dumps(state, protocol=protocol))
    loaded = read_pdparams(str(path))
    assert list(loaded) == [name for name in state if name != "StructuredToParameterName@@"]
    for name, value in loaded.items():
        assert value.dtype == state[name].dtype
        np.testing.assert_array_equal(value, state[name])


def test_pdparams_written_by_paddle(tmp_path):
    """paddle.save under each protocol it supports (2 to 4), in a subprocess: paddle must not meet mindspore."""
    if importlib.util.find_spec("paddle") is None:
        pytest.skip("needs paddle")
    script = ("import sys, numpy as np, paddle\n"
              "state = {'w': paddle.to_tensor(np.arange(6, dtype='float32').reshape(2, 3)),"
              " 'b': paddle.to_tensor(np.array([1, 2], dtype='int64'))}\n"
              "for protocol in (2, 3, 4):\n"
              "    paddle.save(state, f'{sys.argv[1]}/p{protocol}.pdparams', protocol=protocol)\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for protocol in (2, 3, 4):
        loaded = read_pdparams(str(tmp_path / f"p{protocol}.pdparams"))
        np.testing.assert_array_equal(loaded["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
        np.testing.assert_array_equal(loaded["b"], np.array([1, 2], np.int64))


class RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class EvalsText:
    def __reduce__(self):
        return eval, ("__import__('os').system('touch hacked')",)


def hostile_pickles(marker):
    """Pickles that would run code, or reach past the allowed reconstructors, if unpickled freely."""
    yield "os.system", pickle.dumps({"w": RunsCommand(f"touch {marker}")}, protocol=2)
    yield "os.system", pickle.dumps({"w": RunsCommand(f"touch {marker}")}, protocol=5)
    yield "builtins.eval", pickle.dumps({"w": EvalsText()}, protocol=4)
    # _codecs.encode is allowed for latin1 text only; another codec would be a step towards more.
    yield "codec 'rot13'", (b"\x80\x02}q\x00X\x01\x00\x00\x00wc_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00"
                            b"\x00rot13\x86R\x73.")
    # bytes() with an argument (only b"" is pickled as a bare bytes() call).
    yield "bytes", b"\x80\x02}q\x00X\x01\x00\x00\x00wc__builtin__\nbytes\nJ\x00\x00\x00\x10\x85R\x73."


def test_pdparams_refuses_code(tmp_path):
    marker = tmp_path / "ran"
    for what, data in hostile_pickles(marker):
        path = tmp_path / "evil.pdparams"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=r"evil\.pdparams: refusing"):
            read_pdparams(str(path))
        assert not marker.exists(), what
    objects = tmp_path / "objects.pdparams"
    objects.write_bytes(pickle.dumps({"w": np.array([1, "a"], dtype=object)}, protocol=4))
    with pytest.raises(ValueError, match=r"objects\.pdparams: entry 'w' is an array of Python objects"):
        read_pdparams(str(objects))
    out_of_band = tmp_path / "oob.pdparams"
    out_of_band.write_bytes(pickle.dumps({"w": np.arange(3.0)}, protocol=5, buffer_callback=lambda buffer: False))
    with pytest.raises(ValueError, match=r"oob\.pdparams: not a \.pdparams pickle of numpy arrays"):
        read_pdparams(str(out_of_band))


@pytest.mark.parametrize("ending", ["\n", "\n\n", "\n\n\n", "\r\n\r\n", "\n \n", ""])
def test_vocab_trailing_blank_lines(tmp_path, ending):
    for text in ("[PAD]\n[CLS]\n[SEP]", "[PAD]\t0\n[CLS]\t1\n[SEP]\t2"):
        path = tmp_path / "vocab.txt"
        path.write_bytes(("\ufeff" + text + ending).encode("utf-8"))
        assert load_vocab(str(path)) == {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2}


@pytest.mark.parametrize("text, line", [("[PAD]\n\n[CLS]\n", 2), ("[PAD]\n[CLS]\n\n\n[SEP]\n\n", 3),
                                        ("\n[PAD]\n", 1), ("[PAD]\t0\n\t\n[CLS]\t1\n", 2)])
def test_vocab_blank_line_inside_is_an_error(tmp_path, text, line):
    path = tmp_path / "vocab.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"vocab\.txt:{line}: token '' is empty: blank lines are allowed only at"):
        load_vocab(str(path))
