"""The losses that train the task models of ``heads.py``.

Each ``*Loss`` cell takes the model's inputs (input ids, token types, attention mask) then the labels, and returns
``(loss, *metrics)``, so the shared training step
can log task metrics (correct-prediction counts) without a second forward pass.
"""
import mindspore as ms
from mindspore import nn, ops


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

    def construct(self, input_ids, token_type_ids, attention_mask, label_ids):
        logits = self.model(input_ids, token_type_ids, attention_mask)
        loss = self.cross_entropy(logits, label_ids)
        return loss, _correct_count(logits, label_ids, ops.ones_like(ops.cast(label_ids, ms.float32)))


class TokenClassificationLoss(nn.Cell):
    """Token cross-entropy averaged over real tokens (padding excluded), or the CRF's mean negative log-likelihood;
    also returns the correct tag predictions and the number of real tokens in the batch."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)
        self.model = model
        self.use_crf = model.use_crf
        self.cross_entropy = nn.CrossEntropyLoss(reduction="none")
        self.token_count = GlobalCount()

    def construct(self, input_ids, token_type_ids, attention_mask, label_ids):
        emissions = self.model(input_ids, token_type_ids, attention_mask)
        weights = ops.cast(attention_mask, ms.float32)
        if self.use_crf:
            loss = ops.reduce_mean(self.model.crf(emissions, label_ids, attention_mask))
        else:
            num_labels = emissions.shape[-1]
            token_loss = self.cross_entropy(ops.reshape(emissions, (-1, num_labels)), ops.reshape(label_ids, (-1,)))
            loss = ops.reduce_sum(token_loss * ops.reshape(weights, (-1,))) / ops.maximum(
                self.token_count(ops.reduce_sum(weights)), 1.0)
        return loss, _correct_count(emissions, label_ids, weights), ops.reduce_sum(weights)


class QuestionAnsweringLoss(nn.Cell):
    """Mean of the start- and end-position cross-entropies."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)
        self.model = model
        self.cross_entropy = nn.CrossEntropyLoss()

    def construct(self, input_ids, token_type_ids, attention_mask, start_positions, end_positions):
        start_logits, end_logits = self.model(input_ids, token_type_ids, attention_mask)
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

    def construct(self, input_ids, token_type_ids, attention_mask, next_sentence_labels, masked_lm_positions,
                  masked_lm_ids, masked_lm_weights):
        mlm_logits, nsp_logits = self.model(input_ids, token_type_ids, attention_mask, masked_lm_positions)
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
