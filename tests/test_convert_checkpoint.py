"""Checkpoint migration: Paddle static release, PaddleNLP .pdparams and Hugging Face safetensors into our .ckpt.

The proof: random weights are put into a model built and run by the real framework (PaddlePaddle, or transformers on
torch), saved with that framework's own API, converted with our CLI, and our MindSpore outputs must match the
framework's within 1e-5 (float32, absolute). The reference passes run in subprocesses (tests/paddle_reference.py,
tests/hf_reference.py): paddle must not share a process with mindspore. Bad-input tests need neither framework.
"""
import importlib.util
import json
import logging
import os
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from src import convert_checkpoint
from src.checkpoint import from_pretrained, read_checkpoint, save_checkpoint
from src.convert_checkpoint import PADDLE_OPTIMIZER_STATE, PADDLE_STATIC, expected_parameters, main
from src.paddle_format import read_lod_tensor
from src.ernie_model import ErnieConfig, ErnieModel, numpy_parameters
from src.heads import ErnieForPretraining, ErnieForSequenceClassification

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
ATOL = 1e-5  # float32 forward passes of two frameworks; measured differences are ~1e-6
CONFIG = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
              hidden_act="relu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
              max_position_embeddings=24, type_vocab_size=2, initializer_range=0.02, num_labels=3)
SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


def requires(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]  # find_spec: importing paddle here would
    if missing:                                                              # break mindspore (oneDNN clash)
        pytest.skip(f"needs {', '.join(missing)} for the reference implementation")


def run_reference(script, *args):
    result = subprocess.run([sys.executable, os.path.join(TESTS, script), *map(str, args)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{script} {args[0]} failed:\n{result.stderr[-3000:]}"


def write_vocab(path, size):
    """A ``token<TAB>id`` vocabulary with the special tokens ERNIE's tokenizer requires, ids 0..size-1."""
    tokens = list(SPECIAL_TOKENS) + [f"t{i}" for i in range(size - 5)] + ["[UNK]"]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{token}\t{i}\n" for i, token in enumerate(tokens))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """CONFIG as JSON and a padded batch (lengths 10, 7, 4) with two masked-LM positions per row."""
    root = tmp_path_factory.mktemp("convert")
    with open(root / "config.json", "w", encoding="utf-8") as f:
        json.dump(CONFIG, f)
    rng = np.random.default_rng(0)
    batch, seq_len = 3, 10
    lengths = np.array([10, 7, 4])
    mask = (np.arange(seq_len)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, CONFIG["vocab_size"], (batch, seq_len)).astype(np.int32)
    ids[:, 0] = 1
    ids *= mask
    types = ((np.arange(seq_len)[None] >= lengths[:, None] // 2) * mask).astype(np.int32)
    positions = np.array([[1, 8], [2, 6], [1, 3]], np.int32)
    np.savez(root / "inputs.npz", input_ids=ids, token_type_ids=types, attention_mask=mask,
             masked_lm_positions=positions)
    return root


def inputs_of(workdir):
    return dict(np.load(workdir / "inputs.npz"))


def ours(ckpt, inputs, model_cls=ErnieForPretraining, **kwargs):
    """Our outputs for ``inputs`` from the converted checkpoint (and its ernie_config.json)."""
    model, report = from_pretrained(str(ckpt), model_cls=model_cls, **kwargs)
    model.set_train(False)
    args = [Tensor(inputs[k], ms.int32) for k in ("input_ids", "token_type_ids", "attention_mask")]
    if model_cls is ErnieForSequenceClassification:
        return {"classifier_logits": model(*args).asnumpy()}, report
    sequence_output, pooled_output = model.ernie(*args)
    mlm_logits, nsp_logits = model(*args, Tensor(inputs["masked_lm_positions"], ms.int32))
    return {"sequence_output": sequence_output.asnumpy(), "pooled_output": pooled_output.asnumpy(),
            "mlm_logits": mlm_logits.asnumpy(), "nsp_logits": nsp_logits.asnumpy()}, report


def assert_close(actual, expected, keys, real_tokens=None):
    for key in keys:
        a, e = actual[key], expected[key]
        if real_tokens is not None and key == "sequence_output":
            a, e = a[real_tokens], e[real_tokens]
        np.testing.assert_allclose(a, e, rtol=0, atol=ATOL, err_msg=key)


# ---------------------------------------------------------------------------------------------------------------------
# Against PaddlePaddle

@pytest.fixture(scope="module")
def paddle_release(workdir):
    """ERNIE 1.0's static-graph program run and saved by Paddle (params/ with optimizer state, ernie_config.json)."""
    requires("paddle")
    out = workdir / "paddle_static"
    out.mkdir()
    run_reference("paddle_reference.py", "static", workdir / "config.json", workdir / "inputs.npz", out)
    write_vocab(out / "vocab.txt", CONFIG["vocab_size"])
    return out


@pytest.fixture(scope="module")
def paddle_static_converted(paddle_release, workdir):
    ckpt = workdir / "from_static" / "ernie.ckpt"
    assert main(["--format", "paddle_static", "--input", str(paddle_release), "--output", str(ckpt)]) == 0
    return ckpt


def test_paddle_static_encoder_matches_paddle(paddle_release, paddle_static_converted, workdir):
    inputs = inputs_of(workdir)
    reference = np.load(paddle_release / "reference.npz")
    actual, report = ours(paddle_static_converted, inputs)
    # ERNIE's static graph also masks padded query rows, so padded positions differ by design: compare real tokens.
    assert_close(actual, reference, ["sequence_output", "pooled_output"], inputs["attention_mask"].astype(bool))
    assert report.missing == []
    assert sorted(report.unexpected) == ["classifier.bias", "classifier.weight"]


def test_paddle_static_heads_match_paddle(paddle_release, paddle_static_converted, workdir):
    inputs = inputs_of(workdir)
    reference = np.load(paddle_release / "reference.npz")
    actual, _ = ours(paddle_static_converted, inputs)
    assert_close(actual, reference, ["mlm_logits", "nsp_logits"])
    classifier, report = ours(paddle_static_converted, inputs, ErnieForSequenceClassification,
                              num_labels=CONFIG["num_labels"])
    assert_close(classifier, reference, ["classifier_logits"])
    assert report.missing == []


def test_paddle_static_outputs_beside_checkpoint(paddle_release, paddle_static_converted):
    out_dir = paddle_static_converted.parent
    config = json.loads((out_dir / "ernie_config.json").read_text())
    assert config["layer_norm_eps"] == 1e-5 and config["intermediate_size"] == 4 * CONFIG["hidden_size"]
    assert config["vocab_size"] == CONFIG["vocab_size"]
    assert (out_dir / "vocab.txt").read_bytes() == (paddle_release / "vocab.txt").read_bytes()
    assert sorted(os.listdir(out_dir)) == ["ernie.ckpt", "ernie_config.json", "vocab.txt"]  # no temporary files


def test_paddle_static_report(paddle_release, workdir, caplog):
    caplog.set_level(logging.INFO)
    result = convert_checkpoint.convert("paddle_static", str(paddle_release / "params"),
                                        str(workdir / "report" / "ernie.ckpt"))
    files = os.listdir(paddle_release / "params")
    assert len(result.weights) + len(result.unused) == len(files)
    assert result.unused and all(PADDLE_OPTIMIZER_STATE.search(name) for name in result.unused)
    assert result.unfilled == []
    assert f"{len(result.unused)} optimizer-state tensors were not used" in caplog.text


def test_lod_tensor_reader_equals_paddle_loader(paddle_release, workdir):
    """Our numpy parser against Paddle's own loader (paddle.load of a save_vars directory), in a subprocess."""
    script = ("import sys, numpy as np, paddle; state = paddle.load(sys.argv[1]); "
              "np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in state.items()})")
    out = workdir / "paddle_loaded.npz"
    result = subprocess.run([sys.executable, "-c", script, str(paddle_release / "params"), str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = np.load(out)
    assert sorted(loaded.files) == sorted(os.listdir(paddle_release / "params"))
    for name in loaded.files:
        ours_array = read_lod_tensor(str(paddle_release / "params" / name))
        assert ours_array.dtype == loaded[name].dtype and np.array_equal(ours_array, loaded[name]), name


@pytest.fixture(scope="module")
def pdparams_dir(workdir):
    """PaddleNLP-style dygraph ErnieForPretraining saved with paddle.save, with the older nested model_config.json."""
    requires("paddle")
    out = workdir / "pdparams"
    out.mkdir()
    run_reference("paddle_reference.py", "pdparams", workdir / "config.json", workdir / "inputs.npz", out)
    return out


def test_pdparams_matches_paddle(pdparams_dir, workdir, caplog):
    caplog.set_level(logging.INFO)
    ckpt = workdir / "from_pdparams" / "ernie.ckpt"
    assert main(["--format", "pdparams", "--input", str(pdparams_dir / "model_state.pdparams"),
                 "--output", str(ckpt)]) == 0
    assert "1 tied copies checked equal" in caplog.text and "not used" not in caplog.text
    actual, report = ours(ckpt, inputs_of(workdir))
    # PaddleNLP masks padded keys only, as we do: every position is comparable.
    assert_close(actual, np.load(pdparams_dir / "reference.npz"),
                 ["sequence_output", "pooled_output", "mlm_logits", "nsp_logits"])
    assert report.missing == [] and report.unexpected == []


def test_converter_imports_neither_paddle_nor_torch(paddle_release, workdir):
    script = ("import sys; from src.convert_checkpoint import main; "
              "rc = main(['--format', 'paddle_static', '--input', sys.argv[1], '--output', sys.argv[2]]); "
              "loaded = {'paddle', 'torch'} & set(sys.modules); assert not loaded, loaded; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", script, str(paddle_release), str(workdir / "cli" / "e.ckpt")],
                            capture_output=True, text=True, timeout=120, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------------------------------------------------------------
# Against Hugging Face transformers

@pytest.fixture(scope="module")
def hf_dirs(workdir):
    requires("torch", "transformers")
    out = workdir / "hf"
    out.mkdir()
    run_reference("hf_reference.py", "make", workdir / "config.json", workdir / "inputs.npz", out)
    return out


@pytest.mark.parametrize("variant", ["pretraining", "encoder"])
def test_hf_matches_transformers(hf_dirs, workdir, variant):
    ckpt = workdir / f"from_hf_{variant}" / "ernie.ckpt"
    result = convert_checkpoint.convert("hf", str(hf_dirs / variant), str(ckpt))
    assert result.unused == []
    actual, report = ours(ckpt, inputs_of(workdir))
    reference = np.load(hf_dirs / "reference.npz")
    assert_close(actual, reference, ["sequence_output", "pooled_output"])
    if variant == "pretraining":  # ErnieForPreTraining keys (ernie.*, cls.*)
        assert_close(actual, reference, ["mlm_logits", "nsp_logits"])
        assert result.unfilled == [] and report.missing == []
    else:  # a bare ErnieModel: keys without the ernie. prefix, no heads
        assert result.unfilled == [name for name in expected_parameters(ErnieConfig.from_dict(CONFIG))
                                   if name.startswith("cls.")]


def randomized(model, seed):
    rng = np.random.default_rng(seed)
    for param in model.get_parameters():
        shape = param.shape
        centre = 1.0 if "LayerNorm.weight" in param.name else 0.0
        scale = 0.2 if len(shape) == 1 else 1 / np.sqrt(shape[-1])
        param.set_data(Tensor((centre + scale * rng.standard_normal(shape)).astype(np.float32)))
    return model


def test_to_hf_loads_in_transformers_with_same_outputs(workdir):
    """Our random weights -> --to_hf -> transformers' ErnieForPreTraining / ErnieModel give our outputs."""
    requires("torch", "transformers")
    config = ErnieConfig.from_dict(CONFIG)
    ckpt_dir = workdir / "ours"
    ckpt_dir.mkdir()
    save_checkpoint(randomized(ErnieForPretraining(config), 4), str(ckpt_dir / "ernie.ckpt"),
                    append_dict={"global_step": 7})
    config.to_json_file(str(ckpt_dir / "ernie_config.json"))
    hf_dir = workdir / "to_hf"
    assert main(["--to_hf", "--input", str(ckpt_dir / "ernie.ckpt"), "--output", str(hf_dir)]) == 0
    assert sorted(os.listdir(hf_dir)) == ["config.json", "model.safetensors"]
    run_reference("hf_reference.py", "run", hf_dir, workdir / "inputs.npz", workdir / "to_hf_outputs.npz")
    reference = np.load(workdir / "to_hf_outputs.npz")
    assert list(reference["missing"]) == [] and list(reference["unexpected"]) == []
    actual, _ = ours(ckpt_dir / "ernie.ckpt", inputs_of(workdir))
    assert_close(actual, reference, ["sequence_output", "pooled_output", "mlm_logits", "nsp_logits"])
    encoder = {"sequence_output": reference["encoder_sequence_output"],
               "pooled_output": reference["encoder_pooled_output"]}
    assert_close(actual, encoder, ["sequence_output", "pooled_output"])


# ---------------------------------------------------------------------------------------------------------------------
# Tables and bad input (no reference framework needed)

def test_expected_parameters_are_the_models():
    config = ErnieConfig.from_dict(CONFIG)
    model_shapes = {name: tuple(value.shape) for name, value in numpy_parameters(ErnieForPretraining(config)).items()}
    assert expected_parameters(config) == model_shapes


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def write_lod_tensor(path, array):
    """Paddle's LoDTensor file layout (feasibility notes §5), for float32 arrays."""
    desc = b"\x08\x05" + b"".join(b"\x10" + _varint(dim) for dim in array.shape)
    with open(path, "wb") as f:
        f.write(struct.pack("<IQIi", 0, 0, 0, len(desc)) + desc + array.astype("<f4").tobytes())


def fake_release(root, num_layers=2, overrides=None, vocab_size=None):
    """A params/ directory in ERNIE's release names, written with numpy, plus ernie_config.json and vocab.txt."""
    config = ErnieConfig.from_dict(dict(CONFIG, num_hidden_layers=num_layers))
    shapes = expected_parameters(config)
    params = root / "params"
    params.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for source, target, transposed in PADDLE_STATIC:
        if target.startswith(("classifier", "qa_outputs")):
            continue
        for i in range(num_layers) if "{i}" in source else [None]:
            shape = shapes[target.format(i=i)]
            name = source.format(i=i)
            shape = (overrides or {}).get(name, shape[::-1] if transposed else shape)
            write_lod_tensor(params / name, rng.standard_normal(shape).astype(np.float32))
    with open(root / "ernie_config.json", "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in CONFIG.items() if k not in ("intermediate_size", "num_labels")}, f)
    write_vocab(root / "vocab.txt", vocab_size or CONFIG["vocab_size"])
    return root


def run_cli(capsys, *args):
    code = main(list(map(str, args)))
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code, err, *fragments):
    assert code == 1
    assert err.startswith("error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_numpy_written_release_round_trips(tmp_path):
    """The writer above and our reader agree, and the mapping transposes exactly the fc weights."""
    root = fake_release(tmp_path / "release")
    result = convert_checkpoint.convert("paddle_static", str(root), str(tmp_path / "out" / "ernie.ckpt"))
    stored = read_checkpoint(str(tmp_path / "out" / "ernie.ckpt"))
    assert set(stored) == set(result.weights) and result.unused == [] and result.unfilled == []
    word = read_lod_tensor(str(root / "params" / "word_embedding"))
    query = read_lod_tensor(str(root / "params" / "encoder_layer_1_multi_head_att_query_fc.w_0"))
    np.testing.assert_array_equal(stored["ernie.embeddings.word_embeddings.weight"], word)
    np.testing.assert_array_equal(stored["ernie.encoder.layer.1.attention.self.query.weight"], query.T)


def test_truncated_parameter_file(tmp_path, capsys):
    root = fake_release(tmp_path / "release")
    victim = root / "params" / "encoder_layer_0_ffn_fc_0.w_0"
    victim.write_bytes(victim.read_bytes()[:-7])
    out = tmp_path / "out" / "ernie.ckpt"
    code, err = run_cli(capsys, "--format", "paddle_static", "--input", root, "--output", out)
    assert_one_line_error(code, err, str(victim), "truncated")
    assert not out.parent.exists()


def test_not_a_tensor_file(tmp_path, capsys):
    root = fake_release(tmp_path / "release")
    (root / "params" / "README").write_text("these are ERNIE's weights\n")
    code, err = run_cli(capsys, "--format", "paddle_static", "--input", root, "--output", tmp_path / "o" / "e.ckpt")
    assert_one_line_error(code, err, "README", "not a Paddle LoDTensor file")


def test_unknown_format(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--format", "onnx", "--input", str(tmp_path), "--output", str(tmp_path / "e.ckpt")])
    assert exit_info.value.code == 2 and "invalid choice: 'onnx'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown format 'onnx'"):
        convert_checkpoint.convert("onnx", str(tmp_path), str(tmp_path / "e.ckpt"))


def test_shape_mismatch_writes_nothing(tmp_path, capsys):
    root = fake_release(tmp_path / "release", overrides={"pos_embedding": (25, 32)})
    out = tmp_path / "out" / "ernie.ckpt"
    code, err = run_cli(capsys, "--format", "paddle_static", "--input", root, "--output", out)
    assert_one_line_error(code, err, "pos_embedding", "(25, 32)", "(24, 32)", "ernie_config.json")
    assert not out.parent.exists()


def test_layer_count_disagrees_with_config(tmp_path, capsys):
    root = fake_release(tmp_path / "release", num_layers=3)  # config says 2
    out = tmp_path / "out" / "ernie.ckpt"
    code, err = run_cli(capsys, "--format", "paddle_static", "--input", root, "--output", out)
    assert_one_line_error(code, err, "layers [0, 1, 2]", "num_hidden_layers=2")
    assert not out.parent.exists()


def test_missing_input_dir(tmp_path, capsys):
    missing = tmp_path / "ERNIE_1.0_max-len-512"
    code, err = run_cli(capsys, "--format", "paddle_static", "--input", missing, "--output", tmp_path / "e.ckpt")
    assert_one_line_error(code, err, str(missing), "not found")


def test_vocab_larger_than_embedding(tmp_path, capsys):
    root = fake_release(tmp_path / "release", vocab_size=CONFIG["vocab_size"] + 1)
    out = tmp_path / "out" / "ernie.ckpt"
    code, err = run_cli(capsys, "--format", "paddle_static", "--input", root, "--output", out)
    assert_one_line_error(code, err, str(root / "vocab.txt"), f"vocab_size={CONFIG['vocab_size']}")
    assert not out.parent.exists()


@pytest.mark.real_data
def test_real_ernie_vocab_fits_config_vocab_size(tmp_path, ernie_vocab, shared_data):
    """ERNIE 1.0's vocab.txt (17,964 lines) with its real config (vocab_size 18000): the embedding is not shrunk."""
    config_path = os.path.join(shared_data, "ernie_1.0", "ernie_config.json")
    config = convert_checkpoint.read_source_config(config_path)
    assert config.vocab_size == 18000 and config.layer_norm_eps == 1e-5 and config.intermediate_size == 3072
    convert_checkpoint._check_vocab(ernie_vocab, config, config_path)
    config.vocab_size = 17963
    with pytest.raises(ValueError, match="17963"):
        convert_checkpoint._check_vocab(ernie_vocab, config, config_path)


def test_invalid_config_error_names_the_file(tmp_path):
    path = tmp_path / "ernie_config.json"
    path.write_text(json.dumps(dict(CONFIG, num_attention_heads=5)))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: hidden_size 32 is not a multiple"):
        convert_checkpoint.read_source_config(str(path))


def _hf_dir(root, weights, **config_overrides):
    from safetensors.numpy import save_file
    root.mkdir(parents=True)
    save_file(weights, str(root / "model.safetensors"), metadata={"format": "pt"})
    with open(root / "config.json", "w", encoding="utf-8") as f:
        json.dump(dict(CONFIG, model_type="ernie", layer_norm_eps=1e-5, **config_overrides), f)
    return root


def test_hf_ernie3_task_type_embeddings_refused(tmp_path, capsys):
    config = ErnieConfig.from_dict(CONFIG)
    weights = {name: np.zeros(shape, np.float32) for name, shape in expected_parameters(config).items()}
    weights["ernie.embeddings.task_type_embeddings.weight"] = np.zeros((3, 32), np.float32)
    root = _hf_dir(tmp_path / "ernie3", weights)
    code, err = run_cli(capsys, "--format", "hf", "--input", root, "--output", tmp_path / "o" / "e.ckpt")
    assert_one_line_error(code, err, "task_type_embeddings", "not ERNIE 1.0")


def test_hf_untied_decoder_refused(tmp_path, capsys):
    config = ErnieConfig.from_dict(CONFIG)
    weights = {name: np.zeros(shape, np.float32) for name, shape in expected_parameters(config).items()}
    weights["cls.predictions.decoder.weight"] = np.ones((64, 32), np.float32)
    root = _hf_dir(tmp_path / "untied", weights)
    code, err = run_cli(capsys, "--format", "hf", "--input", root, "--output", tmp_path / "o" / "e.ckpt")
    assert_one_line_error(code, err, "cls.predictions.decoder.weight", "ties")


def test_hf_pytorch_bin_only(tmp_path, capsys):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "pytorch_model.bin").write_bytes(b"torch zip")
    (tmp_path / "hf" / "config.json").write_text(json.dumps(CONFIG))
    code, err = run_cli(capsys, "--format", "hf", "--input", tmp_path / "hf", "--output", tmp_path / "o" / "e.ckpt")
    assert_one_line_error(code, err, "pytorch_model.bin", "safetensors")


def test_pdparams_flat_config_and_no_code_execution(tmp_path, capsys):
    """A flat (newer PaddleNLP) config.json is read, its layer_norm_eps kept; a pickle naming os.system is refused."""
    (tmp_path / "config.json").write_text(json.dumps(dict(CONFIG, layer_norm_eps=1e-12)))
    config = convert_checkpoint.read_source_config(str(tmp_path / "config.json"))
    assert config.layer_norm_eps == 1e-12 and config.num_hidden_layers == 2

    class Exploit:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    with open(tmp_path / "model_state.pdparams", "wb") as f:
        pickle.dump({"ernie.embeddings.word_embeddings.weight": Exploit()}, f)
    code, err = run_cli(capsys, "--format", "pdparams", "--input", tmp_path, "--output", tmp_path / "o" / "e.ckpt")
    assert_one_line_error(code, err, "model_state.pdparams", "refusing to load")
    assert "pwned" not in capsys.readouterr().out


def test_pdparams_written_under_numpy2_and_truncated(tmp_path):
    """numpy 2 pickles name numpy._core (protocol 3 writes module names as text lines: the rename is a byte replace)."""
    weights = {"ernie.embeddings.word_embeddings.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    data = pickle.dumps(weights, protocol=3).replace(b"numpy.core.", b"numpy._core.")
    assert b"numpy._core.multiarray" in data
    (tmp_path / "new.pdparams").write_bytes(data)
    loaded = convert_checkpoint.read_pdparams(str(tmp_path / "new.pdparams"))
    np.testing.assert_array_equal(loaded["ernie.embeddings.word_embeddings.weight"],
                                  weights["ernie.embeddings.word_embeddings.weight"])
    (tmp_path / "cut.pdparams").write_bytes(pickle.dumps(weights, protocol=4)[:-20])
    with pytest.raises(ValueError, match="cut.pdparams: not a .pdparams pickle of numpy arrays, or truncated"):
        convert_checkpoint.read_pdparams(str(tmp_path / "cut.pdparams"))


def test_to_hf_skips_training_state_and_bare_keys(tmp_path):
    """A bare-encoder checkpoint with optimizer state exports as ernie.* keys and nothing else."""
    from safetensors.numpy import load_file
    config = ErnieConfig.from_dict(CONFIG)
    model = ErnieModel(config)
    state = [{"name": "adam_m." + p.name, "data": p.asnumpy()} for p in model.get_parameters()]
    save_checkpoint([{"name": p.name, "data": p.asnumpy()} for p in model.get_parameters()] + state,
                    str(tmp_path / "ernie.ckpt"), append_dict={"global_step": 3, "accuracy": 0.5})
    config.to_json_file(str(tmp_path / "ernie_config.json"))
    result = convert_checkpoint.export_hf(str(tmp_path / "ernie.ckpt"), str(tmp_path / "hf"))
    exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert sorted(exported) == sorted("ernie." + p.name for p in model.get_parameters())
    assert result.unused == []
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["architectures"] == ["ErnieModel"] and hf_config["layer_norm_eps"] == 1e-5


def test_migrate_script_from_another_directory(tmp_path):
    fake_release(tmp_path / "release")
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "migrate_pretrained_models.sh"), "release",
                             "converted/ernie.ckpt"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHON=sys.executable))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "converted")) == ["ernie.ckpt", "ernie_config.json", "vocab.txt"]
