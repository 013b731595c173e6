"""CRF proofs: log-partition, NLL, gradients and Viterbi against brute-force enumeration of every tag path;
GRAPH-mode training; MindIR and ONNX export of `decode`."""
import itertools

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn

from src.crf import CRF, viterbi_decode_numpy

NUM_TAGS = 3


pytestmark = pytest.mark.usefixtures("graph_mode")


class Decoder(nn.Cell):
    def __init__(self, crf):
        super().__init__()
        self.crf = crf

    def construct(self, emissions, mask):
        return self.crf.decode(emissions, mask)


def make_crf(rng, num_tags=NUM_TAGS, scale=1.0):
    crf = CRF(num_tags)
    crf.transitions.set_data(Tensor(rng.normal(scale=scale, size=(num_tags, num_tags)).astype(np.float32)))
    crf.start_transitions.set_data(Tensor(rng.normal(scale=scale, size=num_tags).astype(np.float32)))
    crf.end_transitions.set_data(Tensor(rng.normal(scale=scale, size=num_tags).astype(np.float32)))
    return crf


def params(crf):
    return (crf.transitions.asnumpy().astype(np.float64), crf.start_transitions.asnumpy().astype(np.float64),
            crf.end_transitions.asnumpy().astype(np.float64))


def make_batch(rng, lengths, seq_len, num_tags=NUM_TAGS):
    """Random emissions and tags everywhere (padding included: it must not matter) and a prefix mask."""
    emissions = rng.normal(scale=2.0, size=(len(lengths), seq_len, num_tags)).astype(np.float32)
    tags = rng.integers(0, num_tags, size=(len(lengths), seq_len)).astype(np.int32)
    mask = (np.arange(seq_len)[None] < np.asarray(lengths)[:, None]).astype(np.int32)
    return emissions, tags, mask


def path_score(emissions, transitions, start, end, path):
    score = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
    return score + sum(transitions[a, b] for a, b in zip(path[:-1], path[1:]))


def enumerate_paths(emissions, transitions, start, end, length):
    """Every tag path of the first `length` positions and its score (float64)."""
    paths = list(itertools.product(range(transitions.shape[0]), repeat=length))
    scores = np.array([path_score(emissions.astype(np.float64), transitions, start, end, p) for p in paths])
    return paths, scores


def log_sum_exp(scores):
    top = scores.max()
    return top + np.log(np.exp(scores - top).sum())


# seq_len 6 gives 5 step matrices, padded to 8 inside the pairwise product; 5 gives exactly 4; 1 has none
@pytest.mark.parametrize("seq_len, lengths", [(1, [1, 1]), (2, [2, 1]), (5, [5, 1, 3, 4]), (6, [6, 2, 5])])
def test_nll_equals_brute_force_log_partition_minus_gold_score(seq_len, lengths):
    rng = np.random.default_rng(seq_len)
    crf = make_crf(rng)
    emissions, tags, mask = make_batch(rng, lengths, seq_len)
    nll = crf(Tensor(emissions), Tensor(tags), Tensor(mask)).asnumpy()
    transitions, start, end = params(crf)
    for b, length in enumerate(lengths):
        _, scores = enumerate_paths(emissions[b], transitions, start, end, length)
        gold = path_score(emissions[b].astype(np.float64), transitions, start, end, tags[b, :length])
        assert nll[b] == pytest.approx(log_sum_exp(scores) - gold, abs=1e-5)


def test_probabilities_of_all_paths_sum_to_one():
    """exp(-NLL) over every path of a length-4 sequence padded to 6 sums to 1: logZ normalises the model."""
    rng = np.random.default_rng(7)
    crf = make_crf(rng)
    paths = np.array(list(itertools.product(range(NUM_TAGS), repeat=4)), dtype=np.int32)
    emissions = np.repeat(rng.normal(scale=2.0, size=(1, 6, NUM_TAGS)).astype(np.float32), len(paths), axis=0)
    tags = np.concatenate([paths, rng.integers(0, NUM_TAGS, size=(len(paths), 2)).astype(np.int32)], axis=1)
    mask = np.repeat(np.array([[1, 1, 1, 1, 0, 0]], np.int32), len(paths), axis=0)
    nll = crf(Tensor(emissions), Tensor(tags), Tensor(mask)).asnumpy().astype(np.float64)
    assert np.exp(-nll).sum() == pytest.approx(1.0, abs=1e-5)


class SummedNLL(nn.Cell):
    def __init__(self, crf):
        super().__init__()
        self.crf = crf

    def construct(self, emissions, tags, mask):
        return self.crf(emissions, tags, mask).sum()


def test_gradients_equal_brute_force_marginals():
    """dNLL/d emissions[t, j] = P(y_t = j) - [gold_t = j] and dNLL/d transitions = E[counts] - gold counts."""
    rng = np.random.default_rng(11)
    crf = make_crf(rng)
    lengths, seq_len = [4, 2, 1], 4
    emissions, tags, mask = make_batch(rng, lengths, seq_len)
    grad_fn = ms.value_and_grad(SummedNLL(crf), 0, crf.trainable_params())
    _, (grad_emissions, (grad_transitions, grad_start, grad_end)) = grad_fn(Tensor(emissions), Tensor(tags),
                                                                           Tensor(mask))
    transitions, start, end = params(crf)
    want_emissions = np.zeros(emissions.shape)
    want_transitions, want_start, want_end = np.zeros_like(transitions), np.zeros_like(start), np.zeros_like(end)
    for b, length in enumerate(lengths):
        paths, scores = enumerate_paths(emissions[b], transitions, start, end, length)
        probs = np.exp(scores - log_sum_exp(scores))
        gold = tuple(tags[b, :length])
        for path, p in itertools.chain(zip(paths, probs), [(gold, -1.0)]):
            want_start[path[0]] += p
            want_end[path[-1]] += p
            for t, y in enumerate(path):
                want_emissions[b, t, y] += p
            for a, c in zip(path[:-1], path[1:]):
                want_transitions[a, c] += p
    np.testing.assert_allclose(grad_emissions.asnumpy(), want_emissions, atol=1e-5)  # padded positions: exactly 0
    np.testing.assert_allclose(grad_transitions.asnumpy(), want_transitions, atol=1e-5)
    np.testing.assert_allclose(grad_start.asnumpy(), want_start, atol=1e-5)
    np.testing.assert_allclose(grad_end.asnumpy(), want_end, atol=1e-5)


@pytest.mark.parametrize("seq_len, lengths", [(1, [1, 1]), (5, [5, 1, 3, 4, 2]), (6, [6, 2, 5, 3])])
def test_viterbi_equals_brute_force_argmax(seq_len, lengths):
    rng = np.random.default_rng(100 + seq_len)
    crf = make_crf(rng)
    emissions, _, mask = make_batch(rng, lengths, seq_len)
    decoded = Decoder(crf)(Tensor(emissions), Tensor(mask)).asnumpy()
    assert decoded.dtype == np.int32
    host = viterbi_decode_numpy(emissions, *params(crf), lengths)
    for b, length in enumerate(lengths):
        paths, scores = enumerate_paths(emissions[b], *params(crf), length)
        best = list(paths[int(np.argmax(scores))])
        assert host[b] == best
        assert decoded[b, :length].tolist() == best
        assert not decoded[b, length:].any()


def test_padding_does_not_matter():
    """Values at padded positions and extra padding change neither the NLL nor the decoded tags."""
    rng = np.random.default_rng(3)
    crf = make_crf(rng)
    lengths = [3, 1, 2]
    emissions, tags, mask = make_batch(rng, lengths, 3)
    long_emissions, long_tags, long_mask = make_batch(rng, lengths, 7)
    long_emissions[:, :3], long_tags[:, :3] = emissions, tags
    short_nll = crf(Tensor(emissions), Tensor(tags), Tensor(mask)).asnumpy()
    long_nll = crf(Tensor(long_emissions), Tensor(long_tags), Tensor(long_mask)).asnumpy()
    np.testing.assert_allclose(long_nll, short_nll, atol=1e-5)
    short_path = Decoder(crf)(Tensor(emissions), Tensor(mask)).asnumpy()
    long_path = Decoder(crf)(Tensor(long_emissions), Tensor(long_mask)).asnumpy()
    assert long_path[:, :3].tolist() == short_path.tolist() and not long_path[:, 3:].any()


def numpy_log_partition(emissions, transitions, start, end, length):
    """The sequential forward algorithm in float64."""
    alpha = start + emissions[0]
    for t in range(1, length):
        alpha = np.array([log_sum_exp(alpha + transitions[:, j]) for j in range(len(alpha))]) + emissions[t]
    return log_sum_exp(alpha + end)


def test_long_sequences_match_sequential_numpy():
    """S=256 (a real NER length) compiles quickly and agrees with the sequential float64 algorithms."""
    rng = np.random.default_rng(5)
    num_tags, seq_len, lengths = 7, 256, [256, 200, 1, 77]
    crf = make_crf(rng, num_tags)
    emissions, tags, mask = make_batch(rng, lengths, seq_len, num_tags)
    nll = crf(Tensor(emissions), Tensor(tags), Tensor(mask)).asnumpy()
    decoded = Decoder(crf)(Tensor(emissions), Tensor(mask)).asnumpy()
    host = viterbi_decode_numpy(emissions, *params(crf), lengths)
    for b, length in enumerate(lengths):
        log_z = numpy_log_partition(emissions[b].astype(np.float64), *params(crf), length)
        gold = path_score(emissions[b].astype(np.float64), *params(crf), tags[b, :length])
        # float32 sums over up to 256 positions of |score| ~ 1e3: relative 1e-6
        assert nll[b] == pytest.approx(log_z - gold, rel=1e-6, abs=1e-3)
        assert decoded[b, :length].tolist() == host[b]


class Tagger(nn.Cell):
    """Token-id embedding -> emissions -> CRF loss: the joint-training setup in miniature."""

    def __init__(self, vocab, num_tags):
        super().__init__()
        self.embedding = nn.Embedding(vocab, num_tags)
        self.crf = CRF(num_tags)

    def construct(self, ids, tags, mask):
        return self.crf(self.embedding(ids), tags, mask).mean()


def test_training_reduces_loss_and_learns_tags():
    """Token 2 is tagged I (2) inside an entity and O (0) elsewhere, so only learned transitions can tell;
    TrainOneStepCell in GRAPH mode."""
    rng = np.random.default_rng(0)
    ms.set_seed(0)
    batch, seq_len, vocab = 16, 8, 4
    ids = rng.integers(0, vocab, size=(batch, seq_len)).astype(np.int32)
    tags = np.zeros_like(ids)
    for b, t in np.ndindex(ids.shape):  # token 1 begins an entity (B = 1), token 2 continues one
        if ids[b, t] == 1:
            tags[b, t] = 1
        elif ids[b, t] == 2 and t > 0 and tags[b, t - 1] in (1, 2):
            tags[b, t] = 2
    lengths = rng.integers(3, seq_len + 1, size=batch)
    mask = (np.arange(seq_len)[None] < lengths[:, None]).astype(np.int32)
    net = Tagger(vocab, 3)
    step = nn.TrainOneStepCell(net, nn.Adam(net.trainable_params(), learning_rate=0.1))
    inputs = Tensor(ids), Tensor(tags.astype(np.int32)), Tensor(mask)
    first = float(net(*inputs).asnumpy())
    for _ in range(60):
        step(*inputs)
    last = float(net(*inputs).asnumpy())
    assert last < 0.05 * first
    emissions = net.embedding(Tensor(ids))
    decoded = Decoder(net.crf)(emissions, Tensor(mask)).asnumpy()
    np.testing.assert_array_equal(decoded, tags * mask)


def test_parameter_names_under_a_parent_cell():
    names = [p.name for p in Tagger(4, 3).crf.get_parameters()]
    assert names == ["crf.transitions", "crf.start_transitions", "crf.end_transitions"]


def test_bad_shapes_raise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a failed graph compile writes rank_0/om/analyze_fail.ir into the working directory
    crf = CRF(NUM_TAGS)
    emissions = Tensor(np.zeros((2, 4, NUM_TAGS + 1), np.float32))
    mask = Tensor(np.ones((2, 4), np.int32))
    with pytest.raises(ValueError, match="emissions must be"):
        Decoder(crf)(emissions, mask)
    with pytest.raises(ValueError, match="mask must be"):
        crf(Tensor(np.zeros((2, 4, NUM_TAGS), np.float32)), Tensor(np.zeros((2, 4), np.int32)),
            Tensor(np.ones((2, 3), np.int32)))
    with pytest.raises(ValueError, match="num_tags"):
        CRF(0)
    with pytest.raises(ValueError, match="lengths"):
        viterbi_decode_numpy(np.zeros((2, 4, 3)), np.zeros((3, 3)), np.zeros(3), np.zeros(3), [4, 0])
    with pytest.raises(ValueError, match="do not match"):
        viterbi_decode_numpy(np.zeros((2, 4, 3)), np.zeros((2, 2)), np.zeros(3), np.zeros(3), [4, 1])


def export_inputs(rng):
    lengths = [6, 1, 4]
    emissions, _, mask = make_batch(rng, lengths, 6)
    return emissions, mask, lengths


def assert_same_paths(decoded, crf, emissions, lengths):
    host = viterbi_decode_numpy(emissions, *params(crf), lengths)
    assert decoded.dtype == np.int32
    for b, length in enumerate(lengths):
        assert decoded[b, :length].tolist() == host[b] and not decoded[b, length:].any()


def test_decode_exports_to_mindir(tmp_path):
    rng = np.random.default_rng(21)
    net = Decoder(make_crf(rng))
    net.set_train(False)
    emissions, mask, lengths = export_inputs(rng)
    ms.export(net, Tensor(emissions), Tensor(mask), file_name=str(tmp_path / "decode"), file_format="MINDIR")
    loaded = nn.GraphCell(ms.load(str(tmp_path / "decode.mindir")))
    assert_same_paths(loaded(Tensor(emissions), Tensor(mask)).asnumpy(), net.crf, emissions, lengths)


def test_decode_exports_to_mindir_with_dynamic_batch(tmp_path):
    rng = np.random.default_rng(22)
    net = Decoder(make_crf(rng))
    net.set_train(False)
    ms.export(net, Tensor(shape=[None, 6, NUM_TAGS], dtype=ms.float32), Tensor(shape=[None, 6], dtype=ms.int32),
              file_name=str(tmp_path / "decode"), file_format="MINDIR")
    loaded = nn.GraphCell(ms.load(str(tmp_path / "decode.mindir")))
    emissions, mask, lengths = export_inputs(rng)
    assert_same_paths(loaded(Tensor(emissions), Tensor(mask)).asnumpy(), net.crf, emissions, lengths)
    assert_same_paths(loaded(Tensor(emissions[:1]), Tensor(mask[:1])).asnumpy(), net.crf, emissions[:1], lengths[:1])


def test_decode_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(23)
    net = Decoder(make_crf(rng))
    net.set_train(False)
    emissions, mask, lengths = export_inputs(rng)
    ms.export(net, Tensor(emissions), Tensor(mask), file_name=str(tmp_path / "decode"), file_format="ONNX")
    session = ort.InferenceSession(str(tmp_path / "decode.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["emissions", "mask"]
    decoded = session.run(None, {"emissions": emissions, "mask": mask})[0]
    assert_same_paths(decoded, net.crf, emissions, lengths)
