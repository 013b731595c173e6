"""Task heads against Hugging Face transformers (PyTorch) with the same weights: an independent implementation."""
import numpy as np
import pytest
import mindspore as ms

from src.ernie_model import load_config
from src.heads import (ErnieForPretraining, ErnieForQuestionAnswering, ErnieForSequenceClassification,
                       ErnieForTokenClassification)
from src.losses import TokenClassificationLoss

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-5  # float32, absolute, on logits of magnitude ~1


def tiny_config():
    return load_config("tiny", vocab_size=60, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def hf_model(cls, config, **kwargs):
    hf_config = transformers.ErnieConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act, max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size, layer_norm_eps=config.layer_norm_eps, use_task_id=False,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **kwargs)
    torch.manual_seed(0)
    model = cls(hf_config).eval()
    with torch.no_grad():  # non-zero biases so that a missing bias would show
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.1)
    return model


def copy_weights(ours, theirs):
    state = theirs.state_dict()
    for parameter in ours.get_parameters():
        if parameter.name.startswith("ernie.pooler.") and parameter.name not in state:
            continue  # HF token/QA models have no pooler; ours keeps it (unused) so pretrained weights always fit
        parameter.set_data(ms.Tensor(state[parameter.name].numpy()))


def inputs(batch=3, seq_len=12, vocab=60):
    rng = np.random.default_rng(1)
    ids = rng.integers(4, vocab, (batch, seq_len)).astype(np.int32)
    types = (np.arange(seq_len) >= seq_len // 2).astype(np.int32)[None].repeat(batch, 0)
    mask = np.ones((batch, seq_len), np.int32)
    mask[1, 8:] = 0
    return ids, types, mask


def run_both(ours, theirs, *extra):
    ids, types, mask = inputs()
    ours.set_train(False)
    out = ours(ms.Tensor(ids), ms.Tensor(types), ms.Tensor(mask), *(ms.Tensor(e) for e in extra))
    with torch.no_grad():
        ref = theirs(input_ids=torch.tensor(ids).long(), token_type_ids=torch.tensor(types).long(),
                     attention_mask=torch.tensor(mask).long())
    return mask, out, ref


def test_sequence_classification_matches_transformers():
    config = tiny_config()
    ours = ErnieForSequenceClassification(config, 3)
    theirs = hf_model(transformers.ErnieForSequenceClassification, config, num_labels=3)
    copy_weights(ours, theirs)
    _, logits, ref = run_both(ours, theirs)
    np.testing.assert_allclose(logits.asnumpy(), ref.logits.numpy(), atol=TOLERANCE)


def test_token_classification_matches_transformers():
    config = tiny_config()
    ours = ErnieForTokenClassification(config, 7)
    theirs = hf_model(transformers.ErnieForTokenClassification, config, num_labels=7)
    copy_weights(ours, theirs)
    mask, logits, ref = run_both(ours, theirs)
    real = mask.astype(bool)
    np.testing.assert_allclose(logits.asnumpy()[real], ref.logits.numpy()[real], atol=TOLERANCE)


def test_question_answering_matches_transformers():
    config = tiny_config()
    ours = ErnieForQuestionAnswering(config)
    theirs = hf_model(transformers.ErnieForQuestionAnswering, config)
    copy_weights(ours, theirs)
    mask, (start, end), ref = run_both(ours, theirs)
    real = mask.astype(bool)
    np.testing.assert_allclose(start.asnumpy()[real], ref.start_logits.numpy()[real], atol=TOLERANCE)
    np.testing.assert_allclose(end.asnumpy()[real], ref.end_logits.numpy()[real], atol=TOLERANCE)


def test_pretraining_heads_match_transformers_with_tied_decoder():
    config = tiny_config()
    ours = ErnieForPretraining(config)
    theirs = hf_model(transformers.ErnieForPreTraining, config)
    copy_weights(ours, theirs)
    positions = np.array([[1, 3, 5], [0, 2, 7], [4, 4, 11]], np.int32)
    _, (mlm_logits, nsp_logits), ref = run_both(ours, theirs, positions)
    expected_mlm = np.take_along_axis(ref.prediction_logits.numpy(), positions[..., None].astype(np.int64), axis=1)
    np.testing.assert_allclose(mlm_logits.asnumpy(), expected_mlm, atol=TOLERANCE)
    np.testing.assert_allclose(nsp_logits.asnumpy(), ref.seq_relationship_logits.numpy(), atol=TOLERANCE)
    names = {p.name for p in ours.get_parameters()}
    assert "cls.predictions.bias" in names and not any("decoder" in n for n in names)  # decoder is the tied table


def test_token_loss_ignores_padding():
    config = tiny_config()
    model = ErnieForTokenClassification(config, 5)
    loss_cell = TokenClassificationLoss(model)
    model.set_train(False)
    ids, types, mask = inputs()
    labels = np.random.default_rng(2).integers(0, 5, ids.shape).astype(np.int32)
    loss, correct, tokens = loss_cell(ms.Tensor(ids), ms.Tensor(types), ms.Tensor(mask), ms.Tensor(labels))
    logits = model(ms.Tensor(ids), ms.Tensor(types), ms.Tensor(mask)).asnumpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    token_nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    expected = (token_nll * mask).sum() / mask.sum()
    assert abs(float(loss.asnumpy()) - expected) < 1e-5
    assert float(correct.asnumpy()) == ((logits.argmax(-1) == labels) * mask).sum()
    assert float(tokens.asnumpy()) == mask.sum()
    labels_changed_in_padding = labels.copy()
    labels_changed_in_padding[mask == 0] = 0
    loss_again, _, _ = loss_cell(ms.Tensor(ids), ms.Tensor(types), ms.Tensor(mask),
                                 ms.Tensor(labels_changed_in_padding))
    assert float(loss_again.asnumpy()) == pytest.approx(float(loss.asnumpy()), abs=1e-7)
