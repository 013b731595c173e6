"""Task models on top of the ERNIE encoder, and the losses that train them.

Each task model holds the encoder as ``ernie`` and adds a few parameters, so its parameter names are the Hugging Face
task-model keys (``ernie.*``, ``classifier.*``, ``qa_outputs.*``, ``cls.predictions.*``, ``cls.seq_relationship.*``).
Models return logits; the ``*Loss`` cells take a dataset row in column order and return ``(loss, *metrics)`` so the
shared training step can log task metrics without a second forward pass.
"""
import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import initializer

from .crf import CRF
from .ernie_model import Dense, ErnieModel, LayerNorm, activation


class ErnieForSequenceClassification(nn.Cell):
    """Pooled [CLS] output -> dropout -> linear: ``[B, num_labels]`` logits."""

    def __init__(self, config, num_labels):
        super().__init__()
        self.num_labels = num_labels
        self.ernie = ErnieModel(config)
        self.dropout = nn.Dropout(p=config.hidden_dropout_prob)
        self.classifier = Dense(config.hidden_size, num_labels, config.initializer_range)

    def construct(self, input_ids, token_type_ids, attention_mask):
        _, pooled_output = self.ernie(input_ids, token_type_ids, attention_mask)
        return self.classifier(self.dropout(pooled_output))


class ErnieForTokenClassification(nn.Cell):
    """Per-token emissions ``[B, S, num_labels]``; with ``use_crf`` a linear-chain CRF (``crf``) scores tag paths."""

    def __init__(self, config, num_labels, use_crf=False):
        super().__init__()
        self.num_labels = num_labels
        self.use_crf = use_crf
        self.ernie = ErnieModel(config)
        self.dropout = nn.Dropout(p=config.hidden_dropout_prob)
        self.classifier = Dense(config.hidden_size, num_labels, config.initializer_range)
        if use_crf:
            self.crf = CRF(num_labels)

    def construct(self, input_ids, token_type_ids, attention_mask):
        sequence_output, _ = self.ernie(input_ids, token_type_ids, attention_mask)
        return self.classifier(self.dropout(sequence_output))


class ErnieForQuestionAnswering(nn.Cell):
    """Span extraction: ``(start_logits [B, S], end_logits [B, S])``."""

    def __init__(self, config):
        super().__init__()
        self.ernie = ErnieModel(config)
        self.dropout = nn.Dropout(p=config.hidden_dropout_prob)
        self.qa_outputs = Dense(config.hidden_size, 2, config.initializer_range)

    def construct(self, input_ids, token_type_ids, attention_mask):
        sequence_output, _ = self.ernie(input_ids, token_type_ids, attention_mask)
        logits = self.qa_outputs(self.dropout(sequence_output))
        return logits[:, :, 0], logits[:, :, 1]


class ErniePredictionHeadTransform(nn.Cell):
    def __init__(self, config):
        super().__init__()
        self.dense = Dense(config.hidden_size, config.hidden_size, config.initializer_range)
        self.transform_act_fn = activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)

    def construct(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class ErnieLMPredictionHead(nn.Cell):
    """Masked-LM head; the decoder is the word-embedding table (tied, as in ERNIE) plus its own bias."""

    def __init__(self, config):
        super().__init__()
        self.transform = ErniePredictionHeadTransform(config)
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")
        self.decoder = ops.MatMul(transpose_b=True)

    def construct(self, hidden_states, word_embeddings):
        batch, positions, hidden = hidden_states.shape
        flat = ops.reshape(self.transform(hidden_states), (batch * positions, hidden))
        logits = self.decoder(flat, word_embeddings) + self.bias
        return ops.reshape(logits, (batch, positions, -1))


class ErniePreTrainingHeads(nn.Cell):
    def __init__(self, config):
        super().__init__()
        self.predictions = ErnieLMPredictionHead(config)
        self.seq_relationship = Dense(config.hidden_size, 2, config.initializer_range)


class ErnieForPretraining(nn.Cell):
    """``(mlm_logits [B, P, vocab], nsp_logits [B, 2])`` for the masked positions ``masked_lm_positions [B, P]``."""

    def __init__(self, config):
        super().__init__()
        self.ernie = ErnieModel(config)
        self.cls = ErniePreTrainingHeads(config)

    def construct(self, input_ids, token_type_ids, attention_mask, masked_lm_positions):
        sequence_output, pooled_output = self.ernie(input_ids, token_type_ids, attention_mask)
        index = ops.broadcast_to(ops.expand_dims(masked_lm_positions, -1),
                                 (masked_lm_positions.shape[0], masked_lm_positions.shape[1], sequence_output.shape[2]))
        masked_output = ops.gather_elements(sequence_output, 1, index)
        mlm_logits = self.cls.predictions(masked_output, self.ernie.embeddings.word_embeddings.weight)
        return mlm_logits, self.cls.seq_relationship(pooled_output)


class GlobalCount(nn.Cell):
    """A per-rank count of loss terms turned into the data-parallel mean count (sum over ranks / ranks).

    Per-token losses divide by it: each rank's loss is then its share of the full batch's mean, so averaging the ranks'
    gradients gives exactly the gradient of a one-process run on the full batch, whatever each rank's count.
    """

    def __init__(self):
        super().__init__()
        parallel = ms.get_auto_parallel_context("parallel_mode") == ms.ParallelMode.DATA_PARALLEL
        self.world_size = ms.communication.get_group_size() if parallel else 1
        self.all_reduce = ops.AllReduce() if self.world_size > 1 else None

    def construct(self, count):
        if self.world_size > 1:
            return self.all_reduce(ops.stop_gradient(count)) / self.world_size
        return count


def _correct_count(logits, labels, weights):
    predictions = ops.cast(ops.Argmax(axis=-1, output_type=ms.int32)(logits), ms.int32)
    return ops.reduce_sum(ops.cast(ops.equal(predictions, labels), ms.float32) * weights)


class SequenceClassificationLoss(nn.Cell):
    """Mean cross-entropy; also returns the number of correct predictions in the batch."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)
        self.model = model
        self.cross_entropy = nn.CrossEntropyLoss()

    def construct(self, input_ids, input_mask, segment_ids, label_ids):
        logits = self.model(input_ids, segment_ids, input_mask)
        loss = self.cross_entropy(logits, label_ids)
        return loss, _correct_count(logits, label_ids, ops.ones_like(ops.cast(label_ids, ms.float32)))


class TokenClassificationLoss(nn.Cell):
    """Token cross-entropy averaged over real tokens (padding excluded), or the CRF's mean negative log-likelihood."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)
        self.model = model
        self.use_crf = model.use_crf
        self.cross_entropy = nn.CrossEntropyLoss(reduction="none")
        self.token_count = GlobalCount()

    def construct(self, input_ids, input_mask, segment_ids, label_ids):
        emissions = self.model(input_ids, segment_ids, input_mask)
        weights = ops.cast(input_mask, ms.float32)
        if self.use_crf:
            loss = ops.reduce_mean(self.model.crf(emissions, label_ids, input_mask))
        else:
            num_labels = emissions.shape[-1]
            token_loss = self.cross_entropy(ops.reshape(emissions, (-1, num_labels)), ops.reshape(label_ids, (-1,)))
            loss = ops.reduce_sum(token_loss * ops.reshape(weights, (-1,))) / ops.maximum(
                self.token_count(ops.reduce_sum(weights)), 1.0)
        return loss, _correct_count(emissions, label_ids, weights)


class QuestionAnsweringLoss(nn.Cell):
    """Mean of the start- and end-position cross-entropies."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)
        self.model = model
        self.cross_entropy = nn.CrossEntropyLoss()

    def construct(self, input_ids, input_mask, segment_ids, start_positions, end_positions):
        start_logits, end_logits = self.model(input_ids, segment_ids, input_mask)
        loss = (self.cross_entropy(start_logits, start_positions) + self.cross_entropy(end_logits, end_positions)) / 2
        ones = ops.ones_like(ops.cast(start_positions, ms.float32))
        return loss, _correct_count(start_logits, start_positions, ones) + _correct_count(end_logits, end_positions, ones)


class PretrainingLoss(nn.Cell):
    """Masked-LM cross-entropy over the weighted (real) predictions plus next-sentence cross-entropy.

    Returns ``(loss, mlm_loss, nsp_loss, mlm_correct, mlm_count, nsp_correct)``.
    """

    def __init__(self, model):
        super().__init__(auto_prefix=False)
        self.model = model
        self.cross_entropy = nn.CrossEntropyLoss(reduction="none")
        self.nsp_cross_entropy = nn.CrossEntropyLoss()
        self.prediction_count = GlobalCount()

    def construct(self, input_ids, input_mask, segment_ids, next_sentence_labels, masked_lm_positions,
                  masked_lm_ids, masked_lm_weights):
        mlm_logits, nsp_logits = self.model(input_ids, segment_ids, input_mask, masked_lm_positions)
        vocab_size = mlm_logits.shape[-1]
        weights = ops.reshape(ops.cast(masked_lm_weights, ms.float32), (-1,))
        token_loss = self.cross_entropy(ops.reshape(mlm_logits, (-1, vocab_size)), ops.reshape(masked_lm_ids, (-1,)))
        mlm_count = ops.reduce_sum(weights)
        mlm_loss = ops.reduce_sum(token_loss * weights) / (self.prediction_count(mlm_count) + 1e-5)
        nsp_loss = self.nsp_cross_entropy(nsp_logits, next_sentence_labels)
        mlm_correct = _correct_count(ops.reshape(mlm_logits, (-1, vocab_size)), ops.reshape(masked_lm_ids, (-1,)),
                                     weights)
        nsp_correct = _correct_count(nsp_logits, next_sentence_labels,
                                     ops.ones_like(ops.cast(next_sentence_labels, ms.float32)))
        return mlm_loss + nsp_loss, mlm_loss, nsp_loss, mlm_correct, mlm_count, nsp_correct
